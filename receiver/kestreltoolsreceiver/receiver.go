package kestreltoolsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/apiread"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/changerequest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/dryrun"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/hubble"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/argocd"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/datadog"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/flux"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/karpenter"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/rollouts"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubeclient"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubectl"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/limit"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/restart"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/shell"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/ssa"
)

const (
	// envelopeHeadroom is kept free of tool output in every response: the envelope, the
	// result messages and their error texts.
	envelopeHeadroom = 64 << 10
	// perItemOverhead is reserved per path or command for its echo and error message.
	perItemOverhead = 2 << 10
	// maxItems bounds the paths or commands of one request.
	maxItems = 128
	// maxResultMessage keeps Datadog's answer within a ChangeRequest result's message.
	maxResultMessage = 8000
	// namespaceFile holds the collector's namespace in a pod.
	namespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

type toolsReceiver struct {
	set  receiver.Settings
	cfg  *Config
	next consumer.Logs
	tb   *metadata.TelemetryBuilder

	trail   *audit.Trail
	limiter *limit.Limiter
	relay   *grpc.ClientConn
	budget  int

	// ctx ends the handlers still running at shutdown; wg waits for them, and closed keeps
	// late ones from starting.
	mu         sync.Mutex
	closed     bool
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	unregister []func()

	changes *changerequest.Controller
	restart *restart.Tool
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*toolsReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &toolsReceiver{set: set, cfg: cfg, next: next, tb: tb}, nil
}

// Identity returns the Kubernetes user name the cloud's reads run as ("" for the
// collector's own identity), or an error naming what is missing.
func (cfg *Config) identity() (string, error) {
	return cfg.serviceAccountUser(cfg.Identity.ServiceAccount)
}

// serviceAccountUser is the user name of the ServiceAccount sa in identity::namespace when
// identity::impersonate is on, else "".
func (cfg *Config) serviceAccountUser(sa string) (string, error) {
	if !cfg.Identity.Impersonate {
		return "", nil
	}
	ns, err := cfg.namespace()
	if err != nil {
		return "", err
	}
	return "system:serviceaccount:" + ns + ":" + sa, nil
}

// namespace is identity::namespace, else the collector's own.
func (cfg *Config) namespace() (string, error) {
	ns := cfg.Identity.Namespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		if b, err := os.ReadFile(namespaceFile); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	}
	if ns == "" {
		return "", errors.New("identity::namespace is not set and the collector's own namespace is unknown (no POD_NAMESPACE, not in a pod)")
	}
	return ns, nil
}

func (r *toolsReceiver) Start(ctx context.Context, host component.Host) error {
	ext, ok := host.GetExtensions()[r.cfg.Connection]
	if !ok {
		return fmt.Errorf("connection %q is not among the configured extensions: the cloud's requests arrive through it", r.cfg.Connection)
	}
	provider, ok := ext.(cloudconn.Provider)
	if !ok {
		return fmt.Errorf("extension %q does not provide a Kestrel Cloud connection", r.cfg.Connection)
	}
	conn := provider.Connection()
	r.budget = conn.MaxMessageBytes() - envelopeHeadroom
	user, err := r.cfg.identity()
	if err != nil {
		return err
	}
	rc, err := r.cfg.Kubernetes.RestConfig()
	if err != nil {
		return err
	}
	client, err := kubeclient.New(rc, user, r.cfg.Limits.MaxReadBytes)
	if err != nil {
		return err
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.trail = audit.New(r.set.Logger, r.count(r.tb.KestrelToolsCalls), r.count(r.tb.KestrelToolsAuditDropped), r.next)
	r.limiter = limit.New(r.cfg.Limits.MaxConcurrent, r.cfg.Limits.MaxWaiting, r.cfg.Limits.Wait)

	if r.cfg.KubernetesAPI.Enabled {
		a := r.cfg.KubernetesAPI
		tool := apiread.New(apiread.Config{DefaultTimeout: a.DefaultTimeout, MaxTimeout: a.MaxTimeout,
			MaxResultBytes: a.MaxResultBytes, MaxResponseBytes: a.MaxResponseBytes}, client, r.trail)
		h := r.handler(apiread.Name, client.Identity(),
			func(m proto.Message) []string { return m.(*cloudv1.KubernetesAPIRequest).GetApiPaths() },
			func(ctx context.Context, m proto.Message, budget int) proto.Message {
				return tool.Serve(ctx, m.(*cloudv1.KubernetesAPIRequest), budget)
			},
			func(m proto.Message, msg string) proto.Message {
				return &cloudv1.KubernetesAPIResponse{RequestId: m.(*cloudv1.KubernetesAPIRequest).GetRequestId(), GlobalErrorMessage: msg}
			})
		if err := r.register(conn, &cloudv1.KubernetesAPIRequest{}, h); err != nil {
			return err
		}
	}
	if r.cfg.Shell.Enabled {
		s := r.cfg.Shell
		if relay := s.HubbleRelay.Get(); relay != nil {
			if r.relay, err = relay.ToClientConn(ctx, host.GetExtensions(), r.set.TelemetrySettings); err != nil {
				return fmt.Errorf("shell::hubble_relay: %w", err)
			}
		}
		tool := shell.New(shell.Config{Allowed: s.Allow, DefaultTimeout: s.DefaultTimeout, MaxTimeout: s.MaxTimeout,
			MaxCommandBytes: s.MaxCommandBytes, MaxOutputBytes: s.MaxOutputBytes},
			map[string]shell.Runner{"kubectl": kubectl.New(client), "hubble": hubble.New(r.relay)},
			client.Identity(), r.trail)
		h := r.handler(shell.Name, client.Identity(),
			func(m proto.Message) []string { return m.(*cloudv1.ShellCommandRequest).GetCommands() },
			func(ctx context.Context, m proto.Message, budget int) proto.Message {
				return tool.Serve(ctx, m.(*cloudv1.ShellCommandRequest), budget)
			},
			func(m proto.Message, msg string) proto.Message {
				return &cloudv1.ShellCommandResponse{RequestId: m.(*cloudv1.ShellCommandRequest).GetRequestId(), GlobalErrorMessage: msg}
			})
		if err := r.register(conn, &cloudv1.ShellCommandRequest{}, h); err != nil {
			return err
		}
	}
	if err := r.startChanges(ctx, conn, rc); err != nil {
		return err
	}
	// After the changes: integration writes are ChangeRequests too.
	if err := r.startIntegrations(conn, client, rc); err != nil {
		return err
	}
	if err := r.startRestart(host, conn, rc); err != nil {
		return err
	}
	r.set.Logger.Info("Answering Kestrel Cloud's tool requests", zap.String("identity", client.Identity()),
		zap.Bool("kubernetes_api", r.cfg.KubernetesAPI.Enabled), zap.Bool("shell", r.cfg.Shell.Enabled),
		zap.Bool("hubble_relay", r.relay != nil), zap.Bool("dry_run", r.cfg.Changes.DryRun.Enabled),
		zap.Bool("apply", r.cfg.Changes.Apply.Enabled), zap.String("restart", r.cfg.Restart.Mode))
	return nil
}

// startIntegrations registers the DatadogQueryRequest handler and reports which
// integrations are present in each InventoryCommit.
func (r *toolsReceiver) startIntegrations(conn cloudconn.Connection, client *kubeclient.Client, rc *rest.Config) error {
	c := r.cfg.Integrations
	var enabled []integrations.Integration
	if d := c.Datadog; d.Enabled {
		keys, err := r.datadogKeys(rc)
		if err != nil {
			return err
		}
		dd := datadog.New(datadog.Config{BaseURL: d.baseURL(), MaxResponseBytes: c.MaxResponseBytes}, keys, nil)
		enabled = append(enabled, dd)
		// Approved Datadog writes are sent from the ChangeRequest controller.
		r.changes.SetExternal(func(ctx context.Context, obj *unstructured.Unstructured) ssa.Result {
			code, body, err := dd.Execute(ctx, obj)
			res := ssa.Result{Object: "Datadog " + obj.GetName(), StatusCode: http.StatusOK, Message: string(body)}
			if err == nil {
				err = datadog.Describe(code, body)
			}
			if err != nil {
				res.StatusCode, res.Message = int32(crd.Code(err)), err.Error() //nolint:gosec // G115: HTTP status codes
			}
			if len(res.Message) > maxResultMessage {
				res.Message = res.Message[:maxResultMessage] + "…"
			}
			return res
		})
		if d.MonitorPollInterval > 0 {
			p := datadog.NewPoller(dd, d.MonitorPollInterval, conn.Send, r.set.Logger)
			if !p.Start(r.ctx, &r.wg) {
				r.set.Logger.Warn("The Datadog monitor poller already runs in this process; this receiver does not start another")
			}
		}
	}
	if c.ArgoCD.Enabled {
		enabled = append(enabled, argocd.Integration{Namespace: c.ArgoCD.Namespace})
	}
	if c.Rollouts.Enabled {
		enabled = append(enabled, rollouts.Integration{})
	}
	if c.Flux.Enabled {
		enabled = append(enabled, flux.Integration{})
	}
	if c.Karpenter.Enabled {
		enabled = append(enabled, karpenter.Integration{})
	}
	d := integrations.New(integrations.Config{DefaultTimeout: c.DefaultTimeout, MaxTimeout: c.MaxTimeout,
		MaxResponseBytes: c.MaxResponseBytes, MaxBodyBytes: c.MaxRequestBytes}, client, enabled, r.changes, r.trail)
	h := r.handler(integrations.Name, client.Identity(),
		func(m proto.Message) []string {
			return []string{integrations.Describe(m.(*cloudv1.DatadogQueryRequest))}
		},
		func(ctx context.Context, m proto.Message, budget int) proto.Message {
			return d.Serve(ctx, m.(*cloudv1.DatadogQueryRequest), budget)
		},
		func(m proto.Message, msg string) proto.Message {
			return &cloudv1.DatadogQueryResponse{RequestId: m.(*cloudv1.DatadogQueryRequest).GetRequestId(), ErrorMessage: msg,
				StatusCode: http.StatusServiceUnavailable}
		})
	if err := r.register(conn, &cloudv1.DatadogQueryRequest{}, h); err != nil {
		return err
	}
	r.unregister = append(r.unregister, conn.RegisterSnapshot(func(ctx context.Context, _ func(proto.Message) error) (*cloudv1.InventoryCommit, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return d.Flags(ctx), nil
	}))
	return nil
}

// datadogKeys reads the Datadog keys from the configured Secret, as the collector itself,
// at each call; errors name the Secret and the key, never a value.
func (r *toolsReceiver) datadogKeys(rc *rest.Config) (datadog.KeySource, error) {
	ref := r.cfg.Integrations.Datadog.Secret
	ns := ref.Namespace
	if ns == "" {
		var err error
		if ns, err = r.cfg.namespace(); err != nil {
			return nil, fmt.Errorf("integrations::datadog::secret::namespace: %w", err)
		}
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	where := "Secret " + ns + "/" + ref.Name
	return func(ctx context.Context) (datadog.Keys, error) {
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return datadog.Keys{}, crd.Errorf(http.StatusServiceUnavailable, "Datadog is not available: reading its keys from %s: %v", where, err)
		}
		k := datadog.Keys{API: strings.TrimSpace(string(s.Data[ref.APIKey])), App: strings.TrimSpace(string(s.Data[ref.AppKey]))}
		if k.API == "" || k.App == "" {
			return datadog.Keys{}, crd.Errorf(http.StatusServiceUnavailable, "Datadog is not available: %s has no %q and %q", where, ref.APIKey, ref.AppKey)
		}
		return k, nil
	}, nil
}

// startChanges registers the dry-run, apply and policy-push handlers. They run as the
// change identity (the write profile); applies wait for a decision in a ChangeRequest.
func (r *toolsReceiver) startChanges(ctx context.Context, conn cloudconn.Connection, rc *rest.Config) error {
	c := r.cfg.Changes
	user, err := r.cfg.serviceAccountUser(c.ServiceAccount)
	if err != nil {
		return err
	}
	ns := c.Namespace
	if ns == "" {
		// Needed only where the ChangeRequests live, that is with applies on.
		if ns, err = r.cfg.namespace(); err != nil && c.Apply.Enabled {
			return fmt.Errorf("changes::namespace: %w", err)
		}
	}
	crc := rest.CopyConfig(rc)
	crc.Impersonate = rest.ImpersonationConfig{UserName: user}
	crc.QPS, crc.Burst = 20, 40
	identity := user
	if identity == "" {
		identity = "(the collector's own identity)"
	}
	applier, err := ssa.New(crc)
	if err != nil {
		return err
	}
	limits := manifest.DefaultLimits
	limits.MaxBytes = c.MaxManifestBytes
	manifests := func(ms []*cloudv1.YamlManifest) []string {
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.GetManifestId()
		}
		return ids
	}
	if c.DryRun.Enabled {
		tool := dryrun.New(dryrun.Config{DefaultTimeout: c.DryRun.DefaultTimeout, MaxTimeout: c.DryRun.MaxTimeout, Limits: limits},
			applier, identity, r.trail)
		h := r.handler(dryrun.Name, identity,
			func(m proto.Message) []string { return manifests(m.(*cloudv1.YamlDryRunRequest).GetYamlManifests()) },
			func(ctx context.Context, m proto.Message, budget int) proto.Message {
				return tool.Serve(ctx, m.(*cloudv1.YamlDryRunRequest), budget)
			},
			func(m proto.Message, msg string) proto.Message {
				return &cloudv1.YamlDryRunResponse{RequestId: m.(*cloudv1.YamlDryRunRequest).GetRequestId(), GlobalErrorMessage: msg}
			})
		if err := r.register(conn, &cloudv1.YamlDryRunRequest{}, h); err != nil {
			return err
		}
	}
	r.changes, err = changerequest.New(changerequest.Config{Enabled: c.Apply.Enabled, Namespace: ns, Expiry: c.Apply.Expiry,
		DryRunTimeout: c.DryRun.DefaultTimeout, MaxDryRunTimeout: c.DryRun.MaxTimeout, ApplyTimeout: c.Apply.Timeout, AutoApprove: c.Apply.AutoApprove, Limits: limits},
		crc, applier, conn, r.trail, r.set.Logger)
	if err != nil {
		return err
	}
	r.changes.Start(ctx)
	apply := r.handler(changerequest.ApplyTool, identity,
		func(m proto.Message) []string { return manifests(m.(*cloudv1.YamlApplyRequest).GetYamlManifests()) },
		func(ctx context.Context, m proto.Message, _ int) proto.Message {
			return r.changes.ProposeApply(ctx, m.(*cloudv1.YamlApplyRequest))
		},
		func(m proto.Message, msg string) proto.Message {
			return &cloudv1.YamlApplyResponse{RequestId: m.(*cloudv1.YamlApplyRequest).GetRequestId(), GlobalErrorMessage: msg}
		})
	if err := r.register(conn, &cloudv1.YamlApplyRequest{}, apply); err != nil {
		return err
	}
	push := r.handler(changerequest.PolicyTool, identity,
		func(m proto.Message) []string { return []string{m.(*cloudv1.NetworkPolicyWithError).GetPolicyId()} },
		func(ctx context.Context, m proto.Message, _ int) proto.Message {
			return r.changes.ProposePolicy(ctx, m.(*cloudv1.NetworkPolicyWithError))
		},
		func(m proto.Message, msg string) proto.Message {
			p := m.(*cloudv1.NetworkPolicyWithError)
			return &cloudv1.NetworkPoliciesWithErrors{Policies: []*cloudv1.NetworkPolicyWithError{{
				NetworkPolicy: p.GetNetworkPolicy(), PolicyId: p.GetPolicyId(), ErrorMessage: msg}}}
		})
	return r.register(conn, &cloudv1.NetworkPolicyWithError{}, push)
}

// startRestart registers the OperatorRestartRequest handler: refused unless restart::mode
// is set.
func (r *toolsReceiver) startRestart(host component.Host, conn cloudconn.Connection, rc *rest.Config) error {
	rs := r.cfg.Restart
	var serve func(context.Context, proto.Message, int) proto.Message
	if rs.Mode == "" {
		serve = func(ctx context.Context, m proto.Message, _ int) proto.Message {
			req := m.(*cloudv1.OperatorRestartRequest)
			msg := "restart is not enabled in this collector (kestrel_tools restart::mode)"
			r.trail.Add(ctx, audit.Record{RequestID: req.GetRequestId(), Tool: restart.Name, Input: req.GetReason(), Outcome: audit.Refused, Reason: msg})
			return &cloudv1.OperatorRestartResponse{RequestId: req.GetRequestId(), ErrorMessage: msg}
		}
	} else {
		ns, err := r.cfg.namespace()
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return err
		}
		r.restart = restart.New(r.ctx, restart.Config{Rollout: rs.Mode == RestartRollout, Namespace: ns, Deployment: rs.Deployment, MaxDelay: rs.MaxDelay},
			cs, func(err error) { componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err)) }, r.trail, r.set.Logger)
		serve = func(ctx context.Context, m proto.Message, _ int) proto.Message {
			return r.restart.Serve(ctx, m.(*cloudv1.OperatorRestartRequest))
		}
	}
	h := r.handler(restart.Name, "(the collector's own identity)",
		func(m proto.Message) []string { return []string{m.(*cloudv1.OperatorRestartRequest).GetReason()} },
		serve,
		func(m proto.Message, msg string) proto.Message {
			return &cloudv1.OperatorRestartResponse{RequestId: m.(*cloudv1.OperatorRestartRequest).GetRequestId(), ErrorMessage: msg}
		})
	return r.register(conn, &cloudv1.OperatorRestartRequest{}, h)
}

func (r *toolsReceiver) register(conn cloudconn.Connection, req proto.Message, h cloudconn.Handler) error {
	unregister, err := conn.Handle(req, h)
	if err != nil {
		return fmt.Errorf("registering the %s handler on %q: %w", req.ProtoReflect().Descriptor().Name(), r.cfg.Connection, err)
	}
	r.unregister = append(r.unregister, unregister)
	return nil
}

// handler wraps one tool: the request-size check, the shared limiter (busy answers are
// audited like every other refusal), and the output budget left after the echoed inputs.
func (r *toolsReceiver) handler(tool, identity string, inputs func(proto.Message) []string,
	serve func(context.Context, proto.Message, int) proto.Message, fail func(proto.Message, string) proto.Message,
) cloudconn.Handler {
	return func(ctx context.Context, req proto.Message) proto.Message {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return fail(req, "the collector is shutting down")
		}
		r.wg.Add(1)
		r.mu.Unlock()
		defer r.wg.Done()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(r.ctx, cancel)
		defer stop()
		start := time.Now()
		in := inputs(req)
		// Requests carry request_id; a pushed policy is known by its policy_id.
		fields := req.ProtoReflect().Descriptor().Fields()
		idField := fields.ByName("request_id")
		if idField == nil {
			idField = fields.ByName("policy_id")
		}
		id := req.ProtoReflect().Get(idField).String()
		refuse := func(outcome, msg string) proto.Message {
			r.trail.Add(ctx, audit.Record{RequestID: id, Tool: tool, Input: strings.Join(in, "\n"), Identity: identity,
				Outcome: outcome, Reason: msg, Duration: time.Since(start)})
			return fail(req, msg)
		}
		if len(in) > maxItems {
			return refuse(audit.Refused, fmt.Sprintf("refused: %d entries in one request; at most %d are accepted", len(in), maxItems))
		}
		overhead := 0
		for _, s := range in {
			overhead += min(len(s), 16<<10) + perItemOverhead
		}
		release, err := r.limiter.Acquire(ctx)
		if err != nil {
			return refuse(audit.Busy, err.Error())
		}
		defer release()
		return serve(ctx, req, max(r.budget-overhead, 0))
	}
}

func (r *toolsReceiver) count(c metric.Int64Counter) audit.Counter {
	return func(ctx context.Context, tool, outcome string) {
		c.Add(ctx, 1, metric.WithAttributes(attribute.String("tool", tool), attribute.String("outcome", outcome)))
	}
}

func (r *toolsReceiver) Shutdown(context.Context) error {
	for _, u := range r.unregister {
		u()
	}
	r.unregister = nil
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	if r.changes != nil {
		r.changes.Stop()
	}
	if r.restart != nil {
		r.restart.Wait()
	}
	if r.trail != nil {
		r.trail.Close()
	}
	var err error
	if r.relay != nil {
		err = r.relay.Close()
	}
	r.tb.Shutdown()
	return err
}
