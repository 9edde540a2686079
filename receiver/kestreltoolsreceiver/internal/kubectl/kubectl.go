// Package kubectl runs the read-only kubectl commands in-process with k8s.io/kubectl's own
// commands and libraries, as the cloud's identity: every API call goes through
// internal/kubeclient's guarded, scrubbing transport. Each run builds its own command tree,
// factory and client getter, so concurrent runs share no mutable state; kubectl's fatal
// error handler, which exits the process by default, is replaced once by one that ends only
// the command that called it.
package kubectl // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubectl"

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/cmd/apiresources"
	"k8s.io/kubectl/pkg/cmd/auth"
	"k8s.io/kubectl/pkg/cmd/clusterinfo"
	"k8s.io/kubectl/pkg/cmd/describe"
	"k8s.io/kubectl/pkg/cmd/events"
	"k8s.io/kubectl/pkg/cmd/explain"
	"k8s.io/kubectl/pkg/cmd/get"
	"k8s.io/kubectl/pkg/cmd/logs"
	"k8s.io/kubectl/pkg/cmd/rollout"
	"k8s.io/kubectl/pkg/cmd/top"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/cmd/version"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/kubectl/pkg/scheme"
	"sigs.k8s.io/yaml"

	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubeclient"
	// Leaves kubectl's texts untranslated: no message catalog parsed at every start.
	_ "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubectl/untranslated"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/shell"
)

// fatal is what kubectl's fatal handler panics with; Run recovers it on the command's
// goroutine and turns it into the exit code.
type fatal struct {
	msg  string
	code int
}

var installOnce sync.Once

// installFatalHandlers replaces the two process-wide exits kubectl's code can reach:
// cmdutil's fatal error handler (every kubectl command ends errors with CheckErr, which
// calls os.Exit) and klog's OsExit (klog.Fatal, e.g. in `get --sort-by`). Both now panic;
// on a command's goroutine Run recovers the panic and only that command ends. Elsewhere in
// the process klog.Fatal still ends the process, as it did before.
func installFatalHandlers() {
	installOnce.Do(func() {
		cmdutil.BehaviorOnFatal(func(msg string, code int) { panic(fatal{msg: msg, code: code}) })
		klog.OsExit = func(code int) { panic(fatal{msg: "kubectl: fatal error", code: code}) }
	})
}

// Runner runs kubectl commands.
type Runner struct {
	client *kubeclient.Client
	// grace is how long Run waits, after the deadline, for a command to notice it.
	grace time.Duration
}

// New returns a runner whose commands read through client.
func New(client *kubeclient.Client) *Runner {
	installFatalHandlers()
	return &Runner{client: client, grace: 5 * time.Second}
}

// Run runs one validated kubectl command and returns its exit code.
func (r *Runner) Run(ctx context.Context, cmd shell.Command, stdout, stderr io.Writer) int {
	done := make(chan int, 1)
	go func() { done <- r.execute(ctx, cmd, stdout, stderr) }()
	select {
	case code := <-done:
		return code
	case <-ctx.Done():
	}
	// Every API call of the command now fails at once, so it ends promptly.
	select {
	case code := <-done:
		return code
	case <-time.After(r.grace):
		fmt.Fprintf(stderr, "kubectl %s did not stop within %v of the deadline\n", cmd.Verb, r.grace)
		return shell.ExitTimeout
	}
}

func (r *Runner) execute(ctx context.Context, c shell.Command, stdout, stderr io.Writer) (code int) {
	defer func() {
		if p := recover(); p != nil {
			if f, ok := p.(fatal); ok {
				if f.msg != "" {
					fmt.Fprint(stderr, strings.TrimSuffix(f.msg, "\n")+"\n")
				}
				code = max(f.code, 1)
				return
			}
			fmt.Fprintf(stderr, "internal error in kubectl %s: %v\n", c.Verb, p)
			klog.ErrorS(nil, "kubectl command panicked", "verb", c.Verb, "panic", p, "stack", string(debug.Stack()))
			code = 1
		}
	}()
	g := &getter{cfg: r.client.Config(ctx, stderr)}
	f := cmdutil.NewFactory(g)
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: stdout, ErrOut: stderr}
	root := &cobra.Command{Use: "kubectl", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVarP(&g.namespace, "namespace", "n", "", "namespace")
	// kubectl's own root flag, which version looks up (nil without it); shell.Parse admits
	// neither it nor any other root flag but -n.
	root.PersistentFlags().Bool("warnings-as-errors", false, "")
	root.AddCommand(command(ctx, c.Verb, f, streams))
	root.SetArgs(c.Args)
	root.SetIn(streams.In)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

// command builds the cobra command of one verb: kubectl's own where it cannot reach a
// process-wide exit or signal handler, else a command of ours on kubectl's libraries.
func command(ctx context.Context, verb string, f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	switch verb {
	case "get":
		return get.NewCmdGet("kubectl", f, streams)
	case "describe":
		return describe.NewCmdDescribe("kubectl", f, streams)
	case "top":
		return top.NewCmdTop(f, streams)
	case "events":
		return events.NewCmdEvents(f, streams)
	case "explain":
		return explain.NewCmdExplain("kubectl", f, streams)
	case "api-resources":
		return apiresources.NewCmdAPIResources(f, streams)
	case "api-versions":
		return apiresources.NewCmdAPIVersions(f, streams)
	case "version":
		return versionCommand(f, streams)
	case "cluster-info":
		return clusterinfo.NewCmdClusterInfo(f, streams)
	case "logs":
		return logsCommand(ctx, f, streams)
	case "auth can-i":
		parent := &cobra.Command{Use: "auth"}
		parent.AddCommand(canICommand(f, streams))
		return parent
	case "rollout history":
		parent := &cobra.Command{Use: "rollout"}
		parent.AddCommand(rollout.NewCmdRolloutHistory(f, streams))
		return parent
	case "rollout status":
		parent := &cobra.Command{Use: "rollout"}
		parent.AddCommand(rolloutStatusCommand(ctx, f, streams))
		return parent
	}
	// shell.Parse admits only the verbs above.
	panic(fatal{msg: "kubectl " + verb + " is not implemented", code: 1})
}

// versionCommand is kubectl version with the version of the kubectl libraries compiled in
// as the client's: kubectl's own command reads it from linker flags the collector's build
// does not set, and its version-skew check then fails on the placeholder it finds.
func versionCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:  "version",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			dc, err := f.ToDiscoveryClient()
			if err != nil {
				return err
			}
			server, err := dc.ServerVersion()
			if err != nil {
				return err
			}
			v := version.Version{ClientVersion: clientVersion(), ServerVersion: server}
			var b []byte
			switch output {
			case "json":
				b, err = json.MarshalIndent(&v, "", "  ")
			case "yaml":
				b, err = yaml.Marshal(&v)
			default:
				b = fmt.Appendf(nil, "Client Version: %s\nServer Version: %s", v.ClientVersion.GitVersion, server.GitVersion)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(streams.Out, strings.TrimSuffix(string(b), "\n"))
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json or yaml")
	return cmd
}

// clientVersion is the Kubernetes release of the k8s.io/kubectl module built in (v0.X.Y is
// Kubernetes v1.X.Y).
func clientVersion() *apimachineryversion.Info {
	v := &apimachineryversion.Info{GitVersion: "unknown", GoVersion: runtime.Version(), Compiler: runtime.Compiler,
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "k8s.io/kubectl" && strings.HasPrefix(d.Version, "v0.") {
				v.GitVersion = "v1." + strings.TrimPrefix(d.Version, "v0.")
				v.Major, v.Minor, _ = strings.Cut(strings.TrimPrefix(v.GitVersion, "v"), ".")
				v.Minor, _, _ = strings.Cut(v.Minor, ".")
			}
		}
	}
	return v
}

// canICommand is kubectl auth can-i without its os.Exit(1) for "no": the answer "no" is
// exit code 1 here too.
func canICommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &auth.CanIOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use: "can-i VERB [TYPE | TYPE/NAME | NONRESOURCEURL]",
		Run: func(_ *cobra.Command, args []string) {
			cmdutil.CheckErr(o.Complete(f, args))
			cmdutil.CheckErr(o.Validate())
			if o.List {
				cmdutil.CheckErr(o.RunAccessList())
				return
			}
			allowed, err := o.RunAccessCheck()
			cmdutil.CheckErr(err)
			if !allowed {
				panic(fatal{code: 1})
			}
		},
	}
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "")
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "")
	cmd.Flags().StringVar(&o.Subresource, "subresource", "", "")
	cmd.Flags().BoolVar(&o.List, "list", false, "")
	cmd.Flags().BoolVar(&o.NoHeaders, "no-headers", false, "")
	return cmd
}

// logsCommand is kubectl logs without its signal handler (it would exit the process on
// SIGTERM) and without follow (refused by the validator): the logs are read one after the
// other under the request's context.
func logsCommand(ctx context.Context, f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := logs.NewLogsOptions(streams)
	cmd := &cobra.Command{
		Use: "logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]",
		Run: func(cmd *cobra.Command, args []string) {
			cmdutil.CheckErr(o.Complete(f, cmd, args))
			cmdutil.CheckErr(o.Validate())
			var requests map[corev1.ObjectReference]rest.ResponseWrapper
			var err error
			if o.AllPods {
				requests, err = o.AllPodLogsForObject(o.RESTClientGetter, o.Object, o.Options, o.GetPodTimeout, o.AllContainers)
			} else {
				requests, err = o.LogsForObject(o.RESTClientGetter, o.Object, o.Options, o.GetPodTimeout, o.AllContainers)
			}
			cmdutil.CheckErr(err)
			for ref, req := range requests {
				out := streams.Out
				if o.Prefix {
					out = &prefixWriter{prefix: fmt.Sprintf("[pod/%s/%s] ", ref.Name, containerOf(ref.FieldPath)), w: streams.Out, start: true}
				}
				if err := o.ConsumeRequestFn(ctx, req, out); err != nil {
					if !o.IgnoreLogErrors {
						cmdutil.CheckErr(err)
					}
					fmt.Fprintf(streams.ErrOut, "error: %v\n", err)
				}
			}
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// rolloutStatusCommand is kubectl rollout status on kubectl's status viewers, polling
// instead of watching under a process-wide signal handler: it prints the status and, with
// --watch (the default), repeats until the rollout is done or the deadline passes.
func rolloutStatusCommand(ctx context.Context, f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	var (
		watch    = true
		timeout  time.Duration
		revision int64
		selector string
	)
	cmd := &cobra.Command{
		Use: "status (TYPE NAME | TYPE/NAME) [flags]",
		Run: func(_ *cobra.Command, args []string) {
			ns, _, err := f.ToRawKubeConfigLoader().Namespace()
			cmdutil.CheckErr(err)
			dyn, err := f.DynamicClient()
			cmdutil.CheckErr(err)
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			r := f.NewBuilder().
				WithScheme(scheme.Scheme, scheme.Scheme.PrioritizedVersionsAllGroups()...).
				NamespaceParam(ns).DefaultNamespace().
				LabelSelectorParam(selector).
				ResourceTypeOrNameArgs(true, args...).
				ContinueOnError().Latest().Flatten().Do()
			cmdutil.CheckErr(r.Err())
			found := false
			cmdutil.CheckErr(r.Visit(func(info *resource.Info, _ error) error {
				found = true
				viewer, err := polymorphichelpers.StatusViewerFn(info.Mapping)
				if err != nil {
					return err
				}
				last := ""
				for {
					obj, err := dyn.Resource(info.Mapping.Resource).Namespace(info.Namespace).Get(ctx, info.Name, metav1.GetOptions{})
					if err != nil {
						return err
					}
					status, done, err := viewer.Status(obj, revision)
					if err != nil {
						return err
					}
					if status != last {
						fmt.Fprint(streams.Out, status)
						last = status
					}
					if done || !watch {
						return nil
					}
					select {
					case <-ctx.Done():
						return fmt.Errorf("timed out waiting for the rollout of %s/%s", info.Mapping.Resource.Resource, info.Name)
					case <-time.After(2 * time.Second):
					}
				}
			}))
			if !found {
				fmt.Fprintf(streams.Out, "No resources found in %s namespace.\n", ns)
			}
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", watch, "")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "")
	cmd.Flags().Int64Var(&revision, "revision", 0, "")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "")
	return cmd
}

// getter is one command's genericclioptions.RESTClientGetter: the request's guarded
// configuration, discovery cached in memory for this command only, and the namespace of -n.
type getter struct {
	cfg       *rest.Config
	namespace string

	once   sync.Once
	disc   discovery.CachedDiscoveryInterface
	mapper meta.RESTMapper
	err    error
}

func (g *getter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

func (g *getter) init() {
	g.once.Do(func() {
		dc, err := discovery.NewDiscoveryClientForConfig(rest.CopyConfig(g.cfg))
		if err != nil {
			g.err = err
			return
		}
		g.disc = memory.NewMemCacheClient(dc)
		g.mapper = restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(g.disc), g.disc, nil)
	})
}

func (g *getter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	g.init()
	return g.disc, g.err
}

func (g *getter) ToRESTMapper() (meta.RESTMapper, error) {
	g.init()
	return g.mapper, g.err
}

func (g *getter) ToRawKubeConfigLoader() clientcmd.ClientConfig { return (*loader)(g) }

// loader answers kubectl's kubeconfig questions from the getter: no kubeconfig file, no
// environment, only the namespace of -n (default "default").
type loader getter

func (l *loader) RawConfig() (clientcmdapi.Config, error) { return clientcmdapi.Config{}, nil }

func (l *loader) ClientConfig() (*rest.Config, error) { return rest.CopyConfig(l.cfg), nil }

func (l *loader) Namespace() (string, bool, error) {
	if l.namespace == "" {
		return "default", false, nil
	}
	return l.namespace, true, nil
}

func (l *loader) ConfigAccess() clientcmd.ConfigAccess { return nil }
