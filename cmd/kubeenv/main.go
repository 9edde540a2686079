// Command kubeenv builds and runs a real etcd + kube-apiserver + kube-controller-manager on
// loopback, for trying the collector against Kubernetes and for CI.
//
//	kubeenv build [--check]                          build the binaries once per machine; print their dir
//	kubeenv up --dir DIR [--detach]                  start; print "export KUBECONFIG=DIR/kubeconfig"
//	kubeenv status --dir DIR                         exit 0 only if the environment in DIR is healthy
//	kubeenv down --dir DIR                           stop an environment started with --detach
//	kubeenv apply [--kubeconfig F] -f PATH...        server-side apply YAML manifests (no kubectl needed)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

const usage = `usage:
  kubeenv build [--check]                         build etcd, kube-apiserver and kube-controller-manager (cached); print their directory
                                                  --check: build nothing; fail if they are not cached yet
  kubeenv up --dir DIR [--detach] [--no-controller-manager] [--ready-timeout D]
                                                  start on loopback, write DIR/kubeconfig; run until SIGINT/SIGTERM,
                                                  or with --detach leave the processes running and return
  kubeenv status --dir DIR                        show the processes started in DIR; fail unless all run and
                                                  the apiserver is ready
  kubeenv down --dir DIR                          stop what "up --detach" started in DIR
  kubeenv apply [--kubeconfig FILE] [--field-manager NAME] -f PATH [-f PATH...]
                                                  server-side apply every object in the YAML/JSON files (a directory:
                                                  its *.yaml, *.yml and *.json files by name); namespaces go first
`

// paths is a repeatable string flag.
type paths []string

func (p *paths) String() string     { return strings.Join(*p, ",") }
func (p *paths) Set(v string) error { *p = append(*p, v); return nil }

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("kubeenv: missing command")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	// One flag set per command, so that a flag another command owns is an error here.
	fs := flag.NewFlagSet("kubeenv "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	parse := func() error {
		if err := fs.Parse(args[1:]); err != nil {
			return fmt.Errorf("kubeenv: %w", err)
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("kubeenv: unexpected arguments: %v", fs.Args())
		}
		return nil
	}
	dirFlag := func() *string {
		return fs.String("dir", "", "directory for the environment's credentials, data, logs, pid files and kubeconfig")
	}
	needDir := func(dir string) error {
		if dir == "" {
			return fmt.Errorf("kubeenv: %s needs --dir", args[0])
		}
		return nil
	}

	var err error
	switch args[0] {
	case "build":
		check := fs.Bool("check", false, "build nothing; fail if the binaries are not cached")
		if err = parse(); err == nil {
			err = build(ctx, *check, stdout, stderr)
		}
	case "up":
		dir := dirFlag()
		detach := fs.Bool("detach", false, "leave the processes running (stop them with kubeenv down)")
		noKCM := fs.Bool("no-controller-manager", false, "run only etcd and kube-apiserver")
		readyTimeout := fs.Duration("ready-timeout", time.Minute, "how long each process may take to become ready")
		if err = parse(); err == nil {
			if err = needDir(*dir); err == nil {
				err = up(ctx, kubeenv.Options{Dir: *dir, BuildLog: stderr, NoControllerManager: *noKCM, ReadyTimeout: *readyTimeout, Detach: *detach}, stdout, stderr)
			}
		}
	case "status":
		dir := dirFlag()
		if err = parse(); err == nil {
			if err = needDir(*dir); err == nil {
				err = status(ctx, *dir, stdout)
			}
		}
	case "down":
		dir := dirFlag()
		if err = parse(); err == nil {
			if err = needDir(*dir); err == nil {
				err = kubeenv.StopDir(*dir)
			}
		}
	case "apply":
		kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
		manager := fs.String("field-manager", "kubeenv", "server-side apply field manager")
		var files paths
		fs.Var(&files, "f", "manifest file or directory (repeatable)")
		if err = parse(); err == nil {
			if len(files) == 0 {
				err = errors.New("kubeenv: apply needs -f FILE or -f DIR")
			} else {
				err = apply(ctx, *kubeconfig, *manager, files, stdout)
			}
		}
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("kubeenv: unknown command %q", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func build(ctx context.Context, check bool, stdout, stderr io.Writer) error {
	if check {
		dir, cached, err := kubeenv.BinariesCached()
		if err != nil {
			return err
		}
		if !cached {
			return fmt.Errorf("kubeenv: etcd, kube-apiserver and kube-controller-manager are not built yet (they go to %s)", dir)
		}
		fmt.Fprintln(stdout, dir)
		return nil
	}
	assets, err := kubeenv.EnsureBinaries(ctx, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, assets)
	return nil
}

func up(ctx context.Context, opts kubeenv.Options, stdout, stderr io.Writer) error {
	start := time.Now()
	env, err := kubeenv.Start(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "kubeenv: %s ready in %v; logs in %s\n", env.Host(), time.Since(start).Round(time.Millisecond), env.Dir())
	fmt.Fprintf(stdout, "export KUBECONFIG=%s\n", env.Kubeconfig())
	if opts.Detach {
		fmt.Fprintf(stderr, "kubeenv: stop it with: kubeenv down --dir %s\n", env.Dir())
		return nil
	}
	<-ctx.Done()
	fmt.Fprintln(stderr, "kubeenv: stopping")
	env.Stop()
	return nil
}
