// Package pipelinetest runs the exporter half of a collector in process for end-to-end
// tests of the components that feed it: the real kestrel exporter sending through the real
// kestrel_command extension, both built by their factories, to a cloudtest.Cloud.
package pipelinetest // import "github.com/kestrelai/otelcol-kestrel/internal/testutil/pipelinetest"

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/zap/zaptest"

	"github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

// Pipeline is a kestrel exporter connected through kestrel_command to Cloud.
type Pipeline struct {
	// Exporter is the kestrel exporter; components under test consume into it.
	Exporter exporter.Logs
	Cloud    *cloudtest.Cloud
	// Host offers the extension to the components started with it, and records their status.
	Host *testutil.StatusHost

	ext  extension.Extension
	once sync.Once
}

// New starts a cloud with cloudCfg (see cloudtest.Start), then creates and starts the
// kestrel_command extension and the kestrel exporter against it, as the collector starts
// extensions and exporters. Start the components under test with Host, then call Ready.
// Everything is shut down when the test ends.
func New(tb testing.TB, cloudCfg devcloud.Config) *Pipeline {
	tb.Helper()
	ctx := context.Background()
	cloud := cloudtest.Start(tb, cloudCfg)

	extFactory := kestrelcommand.NewFactory()
	extCfg := extFactory.CreateDefaultConfig()
	require.NoError(tb, confmap.NewFromStringMap(cloud.ConnectionConfig()).Unmarshal(extCfg))
	extSet := extensiontest.NewNopSettings(extFactory.Type())
	extSet.Logger = zaptest.NewLogger(tb).Named("kestrel_command")
	ext, err := extFactory.Create(ctx, extSet, extCfg)
	require.NoError(tb, err)
	id := component.NewID(extFactory.Type())
	host := &testutil.StatusHost{Extensions: map[component.ID]component.Component{id: ext}}

	expFactory := kestrelexporter.NewFactory()
	expCfg := expFactory.CreateDefaultConfig().(*kestrelexporter.Config)
	expCfg.Connection = id
	expSet := exportertest.NewNopSettings(expFactory.Type())
	expSet.Logger = zaptest.NewLogger(tb).Named("kestrel")
	exp, err := expFactory.CreateLogs(ctx, expSet, expCfg)
	require.NoError(tb, err)

	p := &Pipeline{Exporter: exp, Cloud: cloud, Host: host, ext: ext}
	require.NoError(tb, ext.Start(ctx, host))
	tb.Cleanup(func() { p.shutdown(tb) })
	require.NoError(tb, exp.Start(ctx, host))
	return p
}

// Start is New followed by Ready: for components that need not start before the
// connection does.
func Start(tb testing.TB) *Pipeline {
	tb.Helper()
	p := New(tb, devcloud.Config{})
	p.Ready(tb)
	return p
}

// Ready tells the extension that every pipeline component has started, as the collector
// does, and waits until the connection is Ready.
func (p *Pipeline) Ready(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, p.ext.(extensioncapabilities.PipelineWatcher).Ready())
	conn := p.ext.(cloudconn.Provider).Connection()
	require.Eventually(tb, func() bool { return conn.State() == cloudconn.Ready }, testutil.WaitFor, testutil.Tick)
	// The operator writes without waiting for the server's headers, so Ready on its side
	// does not mean the cloud has registered the streams yet: wait for it to see the commit.
	p.Cloud.WaitCommitted(tb)
}

// shutdown shuts the exporter down (sending what it has queued) and then the extension.
func (p *Pipeline) shutdown(tb testing.TB) {
	p.once.Do(func() {
		require.NoError(tb, p.Exporter.Shutdown(context.Background()))
		require.NoError(tb, p.ext.Shutdown(context.Background()))
	})
}
