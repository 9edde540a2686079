package kestrelcommand

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand/internal/metadatatest"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/selflog"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

// Warnings logged while the cloud is away wait in the buffer (within its limits) and go
// out as one PodLogs once the connection is Ready, with a summary entry counting what the
// limiter refused; the counters match.
func TestSelfLogsWaitForTheConnection(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	cloud.Kill()
	cfg := testConfig(t, certs, cloud.Addr())
	cfg.SelfLogs.Burst = 5
	cfg.SelfLogs.RatePerSecond = 0.001
	cfg.SelfLogs.FlushInterval = 50 * time.Millisecond
	cfg.SelfLogs.PodName = "kestrel-operator-0"
	cfg.SelfLogs.Namespace = "kestrel-ai"
	require.NoError(t, cfg.Validate())

	tel := componenttest.NewTelemetry()
	set := metadatatest.NewSettings(tel)
	set.Resource.Attributes().PutStr("service.instance.id", t.Name())
	buf := selflog.NewBuffer()
	t.Cleanup(selflog.Register(set.Resource, buf))
	set.Logger = zaptest.NewLogger(t)
	// Another component's logger, as the telemetry factory builds it (the extension's own
	// stays apart, so its connection warnings do not enter the count).
	component := zaptest.NewLogger(t, zaptest.Level(zapcore.ErrorLevel)).WithOptions(zap.WrapCore(selflog.WrapCore(buf, zapcore.WarnLevel)))
	ext, err := newExtension(cfg, set)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, ext.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	require.NoError(t, ext.Start(context.Background(), &testutil.StatusHost{}))
	require.NoError(t, ext.Ready())

	for range 20 {
		component.Warn("cloud unreachable")
	}
	time.Sleep(200 * time.Millisecond) // several flush intervals while disconnected
	cloud.Restart(t)

	got := cloud.WaitPayloads(t, cloudconn.StreamLogs, &cloudv1.PodLogs{}, func(ms []proto.Message) bool { return len(ms) > 0 })
	require.Len(t, got, 1)
	pl := got[0].(*cloudv1.PodLogs)
	assert.Equal(t, "kestrel-operator-0", pl.GetPodName())
	assert.Equal(t, "kestrel-ai", pl.GetNamespace())
	assert.Equal(t, int64(5), pl.GetTotalLines())
	entries := pl.GetLogEntries()
	require.Len(t, entries, 6, "5 entries and the summary")
	for i, e := range entries[:5] {
		assert.Contains(t, e.GetMessage(), "cloud unreachable")
		assert.Equal(t, "WARN", e.GetLevel())
		assert.Equal(t, int64(i+1), e.GetLineNumber())
	}
	assert.Contains(t, entries[5].GetMessage(), "kestrel_command: 15 warning and error log entries of this collector were not sent")
	// The counters move once Send has returned, which can be after the cloud has the message.
	require.Eventually(t, func() bool {
		return testutil.MetricSum(tel, "otelcol.kestrel_command.self_logs.sent") == 5 &&
			testutil.MetricSum(tel, "otelcol.kestrel_command.self_logs.dropped") == 15
	}, waitFor, tick, "self_logs.sent 5 and self_logs.dropped 15")
}
