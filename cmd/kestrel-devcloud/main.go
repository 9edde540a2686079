// Command kestrel-devcloud is the reference Kestrel Cloud: it generates development
// certificates, serves the cloud side of the operator protocol, and sends tool requests
// to connected operators through its loopback admin API.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

const defaultAdmin = "127.0.0.1:7070"

const usage = `kestrel-devcloud: a local Kestrel Cloud for trying and testing the operator.

Usage:
  kestrel-devcloud certs --out DIR [--tenant T] [--token-ttl 24h] [--hosts H,...] [--force]
  kestrel-devcloud serve --certs DIR [--listen ADDR] [--admin ADDR] [--record DIR]
                         [--heartbeat 30s] [--old-server] [--lazy-headers] [--no-acks] [--token-ttl 24h]
                         [--max-message-size 10485760] [--drain-timeout 5s]
  kestrel-devcloud ctl [--admin ADDR] status [--json]
  kestrel-devcloud ctl [--admin ADDR] request --type KubernetesAPIRequest --json '{...}'
                         [--operator ID] [--timeout 30s]
  kestrel-devcloud ctl [--admin ADDR] metrics-query [--namespace NS] [--workload NAME --kind KIND]
                         [--pod NAME | --pod-prefix P] [--metric NAME ...] [--label K=V ...]
                         [--since 15m] [--max-series N] [--max-points N] [--operator ID] [--timeout 30s]
  kestrel-devcloud ctl [--admin ADDR] k8s-api [--timeout-seconds N] [--json] PATH...
  kestrel-devcloud ctl [--admin ADDR] shell [--timeout-seconds N] [--json] 'COMMAND'...
  kestrel-devcloud ctl [--admin ADDR] dry-run [--namespace NS] [--timeout-seconds N] [--json] FILE...
  kestrel-devcloud ctl [--admin ADDR] apply [--namespace NS] [--timeout 30m] [--json] FILE...
  kestrel-devcloud ctl [--admin ADDR] push-policy [--stream data|control] [--policy-id ID] [--json] FILE
  kestrel-devcloud ctl [--admin ADDR] renew-cert --cert FILE --key FILE --ca FILE [--wait 30s] [--json]
  kestrel-devcloud ctl [--admin ADDR] restart [--delay-seconds N] [--graceful=false] [--reason R] [--json]
  kestrel-devcloud ctl [--admin ADDR] integration --type N [--filter F] [--json BODY] [--query Q] [--sort S]
                         [--from TS] [--to TS] [--max-results N] [--timeout-seconds N] [--raw]
                         [--operator ID] [--timeout 30m]

Run "kestrel-devcloud COMMAND -h" for the flags of a command.
`

const ctlCommands = "status, request, metrics-query, k8s-api, shell, dry-run, apply, push-policy, renew-cert, restart or integration"

// errUsage marks errors caused by the command line; they exit with status 2.
var errUsage = errors.New("usage error")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "kestrel-devcloud: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "kestrel-devcloud: %v\n", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch args[0] {
	case "certs":
		return cmdCerts(args[1:], stdout, stderr)
	case "serve":
		return cmdServe(ctx, args[1:], stderr)
	case "ctl":
		return cmdCtl(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}

// parse parses flags and rejects stray positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kestrel-devcloud "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func cmdCerts(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs", stderr)
	out := fs.String("out", "", "directory to write the certificates and token into (required)")
	def := devcloud.DefaultCertOptions()
	tenant := fs.String("tenant", def.Tenant, "tenant claim of the token")
	ttl := fs.Duration("token-ttl", def.TokenTTL, "lifetime of the token; negative issues an expired token")
	hosts := fs.String("hosts", strings.Join(def.Hosts, ","), "comma-separated server certificate names and IPs")
	force := fs.Bool("force", false, "replace existing certificate files in --out")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: certs needs --out DIR", errUsage)
	}
	if *force {
		for _, name := range devcloud.CertFiles {
			if err := os.Remove(filepath.Join(*out, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	var hostList []string
	for h := range strings.SplitSeq(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hostList = append(hostList, h)
		}
	}
	if err := devcloud.GenerateCerts(*out, devcloud.CertOptions{Tenant: *tenant, TokenTTL: *ttl, Hosts: hostList}); err != nil {
		if errors.Is(err, devcloud.ErrExists) {
			return fmt.Errorf("%w (pass --force to replace them)", err)
		}
		return err
	}
	abs, err := filepath.Abs(*out)
	if err != nil {
		abs = *out
	}
	fmt.Fprintf(stdout, "Wrote development credentials for tenant %q:\n", *tenant)
	for _, name := range devcloud.CertFiles {
		fmt.Fprintf(stdout, "  %s\n", filepath.Join(abs, name))
	}
	return nil
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var cfg devcloud.Config
	def := devcloud.DefaultConfig()
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:50051", "gRPC listen address")
	fs.StringVar(&cfg.CertsDir, "certs", "", "directory written by 'kestrel-devcloud certs' (required)")
	fs.StringVar(&cfg.RecordDir, "record", "", "write every received message to DIR/<stream>.jsonl")
	fs.StringVar(&cfg.AdminListen, "admin", defaultAdmin, "loopback address of the admin HTTP API; empty disables it")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat", def.HeartbeatInterval, "interval of server heartbeats on every stream")
	fs.BoolVar(&cfg.OldServer, "old-server", false, "answer the side streams with Unimplemented, like an old cloud")
	fs.BoolVar(&cfg.LazyHeaders, "lazy-headers", false, "send a stream's response headers only with its first message (a heartbeat), as grpc-go does by default")
	fs.BoolVar(&cfg.NoAcks, "no-acks", false, "neither acknowledge nor filter numbered messages, like a server built before acknowledged delivery")
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", def.TokenTTL, "lifetime of tokens issued by RenewClusterToken")
	fs.IntVar(&cfg.MaxMessageSize, "max-message-size", def.MaxMessageSize, "maximum gRPC message size in bytes")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", def.DrainTimeout, "how long shutdown waits for operators to close their streams")
	if err := parse(fs, args); err != nil {
		return err
	}
	if cfg.CertsDir == "" {
		return fmt.Errorf("%w: serve needs --certs DIR (create one with 'kestrel-devcloud certs --out DIR')", errUsage)
	}
	logger := newLogger(stderr)
	defer func() { _ = logger.Sync() }()
	srv, err := devcloud.New(cfg, logger)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("shutting down; waiting for operators to close their streams", zap.Duration("timeout", cfg.DrainTimeout))
	srv.Stop()
	logger.Info("stopped")
	return nil
}

func newLogger(w io.Writer) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), zapcore.InfoLevel)
	return zap.New(core)
}

func cmdCtl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl", stderr)
	admin := fs.String("admin", defaultAdmin, "address of the devcloud admin API")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: ctl needs a subcommand: %s", errUsage, ctlCommands)
	}
	a := adminClient{base: adminURL(*admin), http: &http.Client{Transport: &http.Transport{}}}
	defer a.http.CloseIdleConnections()
	rest := fs.Args()[1:]
	switch fs.Arg(0) {
	case "status":
		return ctlStatus(ctx, a, rest, stdout, stderr)
	case "request":
		return ctlRequest(ctx, a, rest, stdout, stderr)
	case "metrics-query":
		return ctlMetricsQuery(ctx, a, rest, stdout, stderr)
	case "k8s-api":
		return ctlK8sAPI(ctx, a, rest, stdout, stderr)
	case "shell":
		return ctlShell(ctx, a, rest, stdout, stderr)
	case "dry-run":
		return ctlDryRun(ctx, a, rest, stdout, stderr)
	case "apply":
		return ctlApply(ctx, a, rest, stdout, stderr)
	case "push-policy":
		return ctlPushPolicy(ctx, a, rest, stdout, stderr)
	case "renew-cert":
		return ctlRenewCert(ctx, a, rest, stdout, stderr)
	case "restart":
		return ctlRestart(ctx, a, rest, stdout, stderr)
	case "integration":
		return ctlIntegration(ctx, a, rest, stdout, stderr)
	default:
		return fmt.Errorf("%w: unknown ctl subcommand %q (want %s)", errUsage, fs.Arg(0), ctlCommands)
	}
}

func adminURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}

type adminClient struct {
	base string
	http *http.Client
}

// call performs one admin request and returns the body of a 200 answer.
func (a adminClient) call(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the devcloud admin API at %s (is 'kestrel-devcloud serve' running with --admin?): %w", a.base, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("admin API: %s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return nil, fmt.Errorf("admin API: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func ctlStatus(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl status", stderr)
	asJSON := fs.Bool("json", false, "print the raw JSON status")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := a.call(ctx, http.MethodGet, "/v1/status", nil)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeIndented(stdout, body)
	}
	var st devcloud.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("admin API returned an unreadable status: %w", err)
	}
	printStatus(stdout, st)
	return nil
}

var streamOrder = []cloudconn.Stream{
	cloudconn.StreamData, cloudconn.StreamControl, cloudconn.StreamFlows, cloudconn.StreamEvents, cloudconn.StreamLogs,
}

func printStatus(w io.Writer, st devcloud.Status) {
	if len(st.Operators) == 0 {
		fmt.Fprintln(w, "No operator has connected yet.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "OPERATOR\tCOMMITTED\tSTREAM\tOPEN\tRECEIVED\tACKED\tDUPLICATES\tOPENED\tTOKEN EXPIRES")
		for _, op := range st.Operators {
			name, committed := op.ID, yesNo(op.Committed)
			for _, kind := range streamOrder {
				ss, ok := op.Streams[kind]
				if !ok {
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", name, committed, kind, yesNo(ss.Open), ss.Received,
					ss.Acknowledged, ss.Duplicates, ss.OpenedAt.Local().Format(time.DateTime), ss.TokenExpiry.Local().Format(time.DateTime))
				// Print the operator's columns once, on its first stream.
				name, committed = "", ""
			}
		}
		tw.Flush()
		for _, op := range st.Operators {
			fmt.Fprintf(w, "%s: tenant %s, certificate %q serial %s\n", op.ID, op.Tenant, op.CertSubject, op.CertSerial)
		}
	}
	fmt.Fprintf(w, "Token renewals: %d\n", st.Renewals)
	fmt.Fprintf(w, "Duplicates filtered: %d\n", st.Duplicates)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ctlRequest(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl request", stderr)
	typ := fs.String("type", "", "cloud.v1 request message, one of: "+strings.Join(devcloud.RequestTypes(), ", "))
	body := fs.String("json", "{}", "the request as protojson; @FILE reads it from a file, - from stdin")
	operator := fs.String("operator", "", "operator id (see 'ctl status'); empty = the first connected operator")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the operator's response")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *typ == "" {
		return fmt.Errorf("%w: request needs --type (one of %s)", errUsage, strings.Join(devcloud.RequestTypes(), ", "))
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	payload, err := readPayload(*body)
	if err != nil {
		return err
	}
	return postRequest(ctx, a, *typ, payload, *operator, *timeout, stdout)
}

// postRequest sends one tool request through the admin API and prints the response.
func postRequest(ctx context.Context, a adminClient, typ string, payload []byte, operator string, timeout time.Duration, stdout io.Writer) error {
	resp, err := sendRequest(ctx, a, typ, payload, operator, timeout)
	if err != nil {
		return err
	}
	return writeIndented(stdout, resp)
}

// sendRequest sends one tool request through the admin API and returns the response JSON.
func sendRequest(ctx context.Context, a adminClient, typ string, payload []byte, operator string, timeout time.Duration) ([]byte, error) {
	q := url.Values{"type": {typ}, "timeout": {timeout.String()}}
	if operator != "" {
		q.Set("operator", operator)
	}
	// The admin API enforces the timeout; the margin lets its 504 answer arrive.
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	return a.call(ctx, http.MethodPost, "/v1/requests?"+q.Encode(), payload)
}

// ctlMetricsQuery asks the operator's metrics store for recent series (MetricsQueryRequest).
func ctlMetricsQuery(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl metrics-query", stderr)
	var (
		req             cloudv1.MetricsQueryRequest
		metrics, labels listFlag
	)
	fs.StringVar(&req.Namespace, "namespace", "", "Kubernetes namespace")
	fs.StringVar(&req.WorkloadName, "workload", "", "workload name")
	fs.StringVar(&req.WorkloadKind, "kind", "", "workload kind: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob")
	fs.StringVar(&req.PodName, "pod", "", "exact pod name")
	fs.StringVar(&req.PodNamePrefix, "pod-prefix", "", "pod name prefix")
	fs.Var(&metrics, "metric", "metric name (repeatable)")
	fs.Var(&labels, "label", "label matcher KEY=VALUE (repeatable)")
	since := fs.Duration("since", 15*time.Minute, "query the window ending now and starting this long ago")
	maxSeries := fs.Int("max-series", 0, "at most this many series (0 = no limit)")
	maxPoints := fs.Int("max-points", 0, "at most this many points per series (0 = no limit)")
	operator := fs.String("operator", "", "operator id (see 'ctl status'); empty = the first connected operator")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the operator's response")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *since <= 0 || *timeout <= 0 || *maxSeries < 0 || *maxPoints < 0 {
		return fmt.Errorf("%w: --since and --timeout must be positive, --max-series and --max-points not negative", errUsage)
	}
	req.MetricNames = metrics
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("%w: --label wants KEY=VALUE, got %q", errUsage, l)
		}
		if req.LabelMatchers == nil {
			req.LabelMatchers = map[string]string{}
		}
		req.LabelMatchers[k] = v
	}
	now := time.Now()
	req.StartTime, req.EndTime = timestamppb.New(now.Add(-*since)), timestamppb.New(now)
	req.MaxSeries, req.MaxDataPoints = int32(min(*maxSeries, math.MaxInt32)), int32(min(*maxPoints, math.MaxInt32))
	payload, err := protojson.Marshal(&req)
	if err != nil {
		return err
	}
	return postRequest(ctx, a, "MetricsQueryRequest", payload, *operator, *timeout, stdout)
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func readPayload(v string) ([]byte, error) {
	switch {
	case v == "-":
		return io.ReadAll(os.Stdin)
	case strings.HasPrefix(v, "@"):
		return os.ReadFile(v[1:])
	default:
		return []byte(v), nil
	}
}

func writeIndented(w io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return fmt.Errorf("admin API returned invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}
