// Package e2e runs the whole distribution in-process: the collector built from
// components.Components with a real configuration, real OTLP senders (the OTel Go SDK),
// and kestrel-devcloud over mTLS as the cloud.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/otelcol"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/components"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

// withConnection puts the kestrel_command extension that reaches cloud in front of the
// rest of a configuration. JSON is YAML's flow style, so the block needs no template.
func withConnection(t *testing.T, cloud *cloudtest.Cloud, rest string) string {
	t.Helper()
	conn, err := json.Marshal(cloud.ConnectionConfig())
	require.NoError(t, err)
	return "extensions:\n  kestrel_command: " + string(conn) + "\n" + rest
}

const collectorConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
exporters:
  kestrel:
    connection: kestrel_command
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 500ms
      max_elapsed_time: 0
    sending_queue:
      queue_size: 268435456 # bytes
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

// startCollector runs otelcol-kestrel's components in-process against cloud and returns
// the OTLP gRPC address it listens on.
func startCollector(t *testing.T, cloud *cloudtest.Cloud) string {
	t.Helper()
	otlpAddr := testutil.FreeAddr(t)
	startWithConfig(t, withConnection(t, cloud, fmt.Sprintf(collectorConfig, otlpAddr)))
	return otlpAddr
}

// startWithConfig runs a collector with config until the test ends.
func startWithConfig(t *testing.T, config string) {
	t.Helper()
	startWithFactories(t, config, components.Components)
}

// startWithFactories runs a collector with config and the given factories until the test ends.
func startWithFactories(t *testing.T, config string, factories func() (otelcol.Factories, error)) {
	t.Helper()
	startStoppableWith(t, config, factories)
}

// startStoppable runs a collector with config until stop is called or the test ends; stop
// waits until it has shut down.
func startStoppable(t *testing.T, config string) (stop func()) {
	t.Helper()
	return startStoppableWith(t, config, components.Components)
}

func startStoppableWith(t *testing.T, config string, factories func() (otelcol.Factories, error)) (stop func()) {
	t.Helper()
	col := newCollectorWith(t, config, factories)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	require.Eventually(t, func() bool { return col.GetState() == otelcol.StateRunning }, 30*time.Second, 10*time.Millisecond,
		"collector did not start")
	return stop
}

func newCollector(t *testing.T, config string) *otelcol.Collector {
	t.Helper()
	return newCollectorWith(t, config, components.Components)
}

func newCollectorWith(t *testing.T, config string, factories func() (otelcol.Factories, error)) *otelcol.Collector {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config), 0o600))
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol-kestrel", Description: "e2e", Version: "test"},
		// grpc-go's logger is a process global that devcloud's server goroutines read.
		SkipSettingGRPCLogger: true,
		Factories:             factories,
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
