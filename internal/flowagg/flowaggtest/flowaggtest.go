// Package flowaggtest runs the exporter half of a collector in process, for end-to-end tests
// of the receivers built on flowagg: the kestrel exporter sending through a real
// kestrel_command extension to an in-process kestrel-devcloud.
package flowaggtest // import "github.com/kestrelai/otelcol-kestrel/internal/flowagg/flowaggtest"

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

// Pipeline is a kestrel exporter connected to an in-process kestrel-devcloud.
type Pipeline struct {
	// Logs is the exporter; receivers under test consume into it.
	Logs  consumer.Logs
	Cloud *devcloud.Server

	exp  exporter.Logs
	ext  extension.Extension
	once sync.Once
}

type host map[component.ID]component.Component

func (h host) GetExtensions() map[component.ID]component.Component { return h }

// Start starts devcloud, the kestrel_command extension and the kestrel exporter. Everything
// is shut down when the test ends.
func Start(t *testing.T) *Pipeline {
	t.Helper()
	ctx := context.Background()
	certs := filepath.Join(t.TempDir(), "certs")
	require.NoError(t, devcloud.GenerateCerts(certs, devcloud.CertOptions{Tenant: "acme"}))
	cloud, err := devcloud.New(devcloud.Config{CertsDir: certs, HeartbeatInterval: 100 * time.Millisecond}, zaptest.NewLogger(t).Named("devcloud"))
	require.NoError(t, err)
	require.NoError(t, cloud.Start())
	t.Cleanup(cloud.Kill)

	extFactory := kestrelcommand.NewFactory()
	extCfg := extFactory.CreateDefaultConfig().(*kestrelcommand.Config)
	extCfg.Endpoint = cloud.Addr()
	extCfg.TLS.CAFile = filepath.Join(certs, devcloud.CACertFile)
	extCfg.TLS.CertFile = filepath.Join(certs, devcloud.ClientCertFile)
	extCfg.TLS.KeyFile = filepath.Join(certs, devcloud.ClientKeyFile)
	extCfg.Token.File = filepath.Join(certs, devcloud.TokenFile)
	extCfg.Reconnect.InitialInterval = 20 * time.Millisecond
	extCfg.Reconnect.MaxInterval = 200 * time.Millisecond
	extSet := extensiontest.NewNopSettings(extFactory.Type())
	extSet.Logger = zaptest.NewLogger(t).Named("kestrel_command")
	ext, err := extFactory.Create(ctx, extSet, extCfg)
	require.NoError(t, err)
	id := component.NewID(extFactory.Type())
	h := host{id: ext}
	require.NoError(t, ext.Start(ctx, h))

	expFactory := kestrelexporter.NewFactory()
	expCfg := expFactory.CreateDefaultConfig().(*kestrelexporter.Config)
	expCfg.Connection = id
	exp, err := expFactory.CreateLogs(ctx, exportertest.NewNopSettings(expFactory.Type()), expCfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, h))
	// As the collector does once every pipeline has started.
	require.NoError(t, ext.(extensioncapabilities.PipelineWatcher).Ready())

	p := &Pipeline{Logs: exp, Cloud: cloud, exp: exp, ext: ext}
	t.Cleanup(func() { p.shutdown(t) })
	conn := ext.(cloudconn.Provider).Connection()
	require.Eventually(t, func() bool { return conn.State() == cloudconn.Ready }, 20*time.Second, 5*time.Millisecond)
	return p
}

// shutdown shuts the exporter down (sending what it has queued) and then the extension.
func (p *Pipeline) shutdown(t *testing.T) {
	p.once.Do(func() {
		require.NoError(t, p.exp.Shutdown(context.Background()))
		require.NoError(t, p.ext.Shutdown(context.Background()))
	})
}

// WaitPayloads waits until the payloads the cloud received whose type is that of want
// (e.g. &cloudv1.Flow{}) satisfy done, and returns them. Each must have arrived on
// StreamFlows, where the protocol routes flows and access logs when the cloud offers it
// (as this one does); StreamData can carry them too, so arriving is not enough.
func (p *Pipeline) WaitPayloads(t *testing.T, want proto.Message, done func([]proto.Message) bool) []proto.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.Cloud.WaitFor(ctx, func(records []devcloud.Record) bool { return done(payloads(records, want)) }))
	records := p.Cloud.Records()
	for _, r := range records {
		if hasType(r, want) {
			require.Equalf(t, cloudconn.StreamFlows, r.Stream, "a %T arrived on the wrong stream", want)
		}
	}
	return payloads(records, want)
}

func payloads(records []devcloud.Record, want proto.Message) []proto.Message {
	var out []proto.Message
	for _, r := range records {
		if hasType(r, want) {
			out = append(out, r.Payload)
		}
	}
	return out
}

func hasType(r devcloud.Record, want proto.Message) bool {
	return r.Payload != nil && r.Payload.ProtoReflect().Type() == want.ProtoReflect().Type()
}
