package kestrelcommand

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand/internal/metadatatest"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

const (
	operatorID = devcloud.ClientCommonName + "/" + cloudtest.Tenant
	waitFor    = 10 * time.Second
	tick       = 5 * time.Millisecond
)

// testConfig points the extension at certsDir's client certificate, CA and token, with
// a reconnect backoff short enough for tests.
func testConfig(t *testing.T, certsDir, endpoint string) *Config {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(cloudtest.ConnectionConfig(certsDir, endpoint)).Unmarshal(cfg))
	return cfg
}

type harness struct {
	ext  *kestrelCommand
	host *testutil.StatusHost
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
	return &harness{ext: ext, host: &testutil.StatusHost{}, tel: tel}
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

// waitSideStreamsUsable waits until every side stream is open on the server and
// accepted on the client, so that Send prefers them.
func waitSideStreamsUsable(t *testing.T, h *harness, cloud *cloudtest.Cloud) {
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

// mustRegister registers h for typ with register (the extension's Handle or the
// dispatcher's register) and returns the unregister function.
func mustRegister(t *testing.T, register func(proto.Message, cloudconn.Handler) (func(), error), typ proto.Message, h cloudconn.Handler) func() {
	t.Helper()
	unregister, err := register(typ, h)
	require.NoError(t, err)
	return unregister
}
