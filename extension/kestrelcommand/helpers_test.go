package kestrelcommand

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand/internal/metadatatest"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

const (
	testTenant = "acme"
	operatorID = devcloud.ClientCommonName + "/" + testTenant
	waitFor    = 10 * time.Second
	tick       = 5 * time.Millisecond
)

// statusHost is a component.Host that records the status events reported to it.
type statusHost struct {
	mu     sync.Mutex
	events []*componentstatus.Event
}

var _ componentstatus.Reporter = (*statusHost)(nil)

func (*statusHost) GetExtensions() map[component.ID]component.Component { return nil }

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *statusHost) last() *componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == 0 {
		return nil
	}
	return h.events[len(h.events)-1]
}

// waitStatus waits until the latest reported status is st and, for errors, its message
// contains every one of contains.
func (h *statusHost) waitStatus(t *testing.T, st componentstatus.Status, contains ...string) *componentstatus.Event {
	t.Helper()
	var ev *componentstatus.Event
	require.Eventually(t, func() bool {
		ev = h.last()
		if ev == nil || ev.Status() != st {
			return false
		}
		for _, c := range contains {
			if ev.Err() == nil || !strings.Contains(ev.Err().Error(), c) {
				return false
			}
		}
		return true
	}, waitFor, tick, "status %v containing %q never reported; last: %v", st, contains, describe(h.last()))
	return ev
}

// mark returns a position in the event history for waitReported.
func (h *statusHost) mark() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

// waitReported waits until an event reported after mark has status st and an error
// containing every one of contains; unlike waitStatus it also sees transient states.
func (h *statusHost) waitReported(t *testing.T, mark int, st componentstatus.Status, contains ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
	events:
		for _, ev := range h.events[mark:] {
			if ev.Status() != st {
				continue
			}
			for _, c := range contains {
				if ev.Err() == nil || !strings.Contains(ev.Err().Error(), c) {
					continue events
				}
			}
			return true
		}
		return false
	}, waitFor, tick, "status %v containing %q never reported", st, contains)
}

func describe(ev *componentstatus.Event) string {
	if ev == nil {
		return "none"
	}
	if ev.Err() != nil {
		return ev.Status().String() + ": " + ev.Err().Error()
	}
	return ev.Status().String()
}

func newCertsDir(t *testing.T, opts devcloud.CertOptions) string {
	t.Helper()
	if opts.Tenant == "" {
		opts.Tenant = testTenant
	}
	dir := filepath.Join(t.TempDir(), "certs")
	require.NoError(t, devcloud.GenerateCerts(dir, opts))
	return dir
}

// startCloud starts a devcloud; it is killed when the test ends.
func startCloud(t *testing.T, cfg devcloud.Config) *devcloud.Server {
	t.Helper()
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 50 * time.Millisecond
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	s, err := devcloud.New(cfg, zaptest.NewLogger(t).Named("devcloud"))
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(s.Kill)
	return s
}

// testConfig points the extension at certsDir's client certificate, CA and token, with
// a reconnect backoff short enough for tests.
func testConfig(certsDir, endpoint string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = endpoint
	cfg.TLS.CAFile = filepath.Join(certsDir, devcloud.CACertFile)
	cfg.TLS.CertFile = filepath.Join(certsDir, devcloud.ClientCertFile)
	cfg.TLS.KeyFile = filepath.Join(certsDir, devcloud.ClientKeyFile)
	cfg.Token.File = filepath.Join(certsDir, devcloud.TokenFile)
	cfg.Reconnect.InitialInterval = 20 * time.Millisecond
	cfg.Reconnect.MaxInterval = 200 * time.Millisecond
	return cfg
}

type harness struct {
	ext  *kestrelCommand
	host *statusHost
	tel  *componenttest.Telemetry
}

// newHarness creates the extension without starting it; it is shut down when the test ends.
func newHarness(t *testing.T, cfg *Config) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := metadatatest.NewSettings(tel)
	set.Logger = zaptest.NewLogger(t).Named("kestrel_command")
	ext, err := newExtension(cfg, set)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, ext.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return &harness{ext: ext, host: &statusHost{}, tel: tel}
}

// start runs Start and Ready as the collector would.
func (h *harness) start(t *testing.T) {
	t.Helper()
	require.NoError(t, h.ext.Start(context.Background(), h.host))
	require.NoError(t, h.ext.Ready())
}

func startHarness(t *testing.T, cfg *Config) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	h.start(t)
	return h
}

func (h *harness) waitState(t *testing.T, st cloudconn.State) {
	t.Helper()
	require.Eventually(t, func() bool { return h.ext.State() == st }, waitFor, tick, "state %v never reached", st)
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// payloads returns the payloads of the records of one stream, in arrival order.
func payloads(recs []devcloud.Record, s cloudconn.Stream) []proto.Message {
	var out []proto.Message
	for _, r := range recs {
		if r.Stream == s {
			out = append(out, r.Payload)
		}
	}
	return out
}

// waitSideStreamsUsable waits until every side stream is open on the server and
// accepted on the client, so that Send prefers them.
func waitSideStreamsUsable(t *testing.T, h *harness, cloud *devcloud.Server) {
	t.Helper()
	require.NoError(t, cloud.WaitStatus(testCtx(t), func(st devcloud.Status) bool {
		if len(st.Operators) != 1 {
			return false
		}
		for _, k := range []cloudconn.Stream{cloudconn.StreamData, cloudconn.StreamControl, cloudconn.StreamFlows, cloudconn.StreamEvents, cloudconn.StreamLogs} {
			if !st.Operators[0].Streams[k].Open {
				return false
			}
		}
		return true
	}))
	require.Eventually(t, func() bool {
		s := h.ext.session.Load()
		if s == nil {
			return false
		}
		for _, k := range sideStreams {
			if s.open[k].Load() == nil {
				return false
			}
		}
		return true
	}, waitFor, tick)
}

func event(name string) *cloudv1.KubernetesEvent {
	return &cloudv1.KubernetesEvent{Name: name, Namespace: "default", Reason: "BackOff"}
}

// issueClientCert writes a new client certificate and key signed by certsDir's CA and
// returns its serial in the form devcloud reports.
func issueClientCert(t *testing.T, certsDir, certPath, keyPath string) string {
	t.Helper()
	serial, err := devcloud.IssueClientCert(certsDir, certPath, keyPath)
	require.NoError(t, err)
	return serial
}

// waitCommitted waits until the server has seen the operator's InventoryCommit.
func waitCommitted(t *testing.T, cloud *devcloud.Server) {
	t.Helper()
	require.NoError(t, cloud.WaitStatus(testCtx(t), func(st devcloud.Status) bool {
		return len(st.Operators) == 1 && st.Operators[0].Committed
	}))
}

// metricSum returns the value of the int64 sum data point with exactly attrs, or 0.
func metricSum(tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) int64 {
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	want := attribute.NewSet(attrs...)
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value
		}
	}
	return 0
}

// mustRegister registers h for typ with register (the extension's Handle or the
// dispatcher's register) and returns the unregister function.
func mustRegister(t *testing.T, register func(proto.Message, cloudconn.Handler) (func(), error), typ proto.Message, h cloudconn.Handler) func() {
	t.Helper()
	unregister, err := register(typ, h)
	require.NoError(t, err)
	return unregister
}
