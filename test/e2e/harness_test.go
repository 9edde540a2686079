// Package e2e runs the whole distribution in-process: the collector built from
// components.Components with a real configuration, real OTLP senders (the OTel Go SDK),
// and kestrel-devcloud over mTLS as the cloud.
package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/otelcol"
	"go.uber.org/zap/zaptest"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/components"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

// startDevcloud starts a reference cloud configured by cfg (CertsDir is required; Listen
// and AdminListen may be "127.0.0.1:0" style for a fresh port) that heartbeats fast, so
// liveness paths run during the test too.
func startDevcloud(t *testing.T, cfg devcloud.Config) *devcloud.Server {
	t.Helper()
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.DrainTimeout = 5 * time.Second
	dc, err := devcloud.New(cfg, zaptest.NewLogger(t))
	require.NoError(t, err)
	require.NoError(t, dc.Start())
	t.Cleanup(dc.Kill)
	return dc
}

func newCerts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	require.NoError(t, devcloud.GenerateCerts(dir, devcloud.CertOptions{Tenant: "e2e"}))
	return dir
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// connectionConfig configures kestrel_command for the devcloud at %[1]s with the
// certificates in %[2]s; the configs below start with it.
const connectionConfig = `
extensions:
  kestrel_command:
    endpoint: %[1]s
    tls:
      ca_file: %[2]s/ca.crt
      cert_file: %[2]s/client.crt
      key_file: %[2]s/client.key
    token:
      file: %[2]s/token
    reconnect:
      initial_interval: 50ms
      max_interval: 500ms
`

const collectorConfig = connectionConfig + `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[3]s
exporters:
  kestrel:
    connection: kestrel_command
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 500ms
      max_elapsed_time: 0
    sending_queue:
      queue_size: 100000
service:
  extensions: [kestrel_command]
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [kestrel]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
`

// startCollector runs otelcol-kestrel's components in-process against the cloud at
// cloudAddr and returns the OTLP gRPC address it listens on.
func startCollector(t *testing.T, cloudAddr, certs string) string {
	t.Helper()
	otlpAddr := freeAddr(t)
	startWithConfig(t, fmt.Sprintf(collectorConfig, cloudAddr, certs, otlpAddr))
	return otlpAddr
}

// startWithConfig runs a collector with config until the test ends.
func startWithConfig(t *testing.T, config string) {
	t.Helper()
	col := newCollector(t, config)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, func() bool { return col.GetState() == otelcol.StateRunning }, 30*time.Second, 10*time.Millisecond,
		"collector did not start")
}

func newCollector(t *testing.T, config string) *otelcol.Collector {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config), 0o600))
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol-kestrel", Description: "e2e", Version: "test"},
		Factories: components.Components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              []string{"file:" + cfgPath},
			ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory()},
		}},
	})
	require.NoError(t, err)
	return col
}

// runCollector runs a collector that is expected to refuse its configuration and
// returns the error Run gave.
func runCollector(t *testing.T, config string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return newCollector(t, config).Run(ctx)
}

// eventUIDs counts KubernetesEvents by uid, with the streams they arrived on.
func eventUIDs(recs []devcloud.Record) (map[string]int, map[string]int) {
	uids, streams := map[string]int{}, map[string]int{}
	for _, r := range recs {
		if ev, ok := r.Payload.(*cloudv1.KubernetesEvent); ok {
			uids[ev.GetUid()]++
			streams[string(r.Stream)]++
		}
	}
	return uids, streams
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
