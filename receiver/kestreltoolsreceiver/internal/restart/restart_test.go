package restart

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.uber.org/zap/zaptest"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"
)

// Exit mode: the answer comes first, the exit after the (capped) delay, once.
func TestExit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := new(consumertest.LogsSink)
	nop := func(context.Context, string, string) {}
	trail := audit.New(zaptest.NewLogger(t), nop, nop, logs)
	exited := make(chan error, 2)
	tool := New(ctx, Config{MaxDelay: 2 * time.Second}, nil, func(err error) { exited <- err }, trail, zaptest.NewLogger(t))

	start := time.Now()
	resp := tool.Serve(ctx, &cloudv1.OperatorRestartRequest{RequestId: "r1", DelaySeconds: 3600, Reason: "upgrade"})
	require.True(t, resp.GetSuccess(), resp.GetErrorMessage())
	assert.Equal(t, "r1", resp.GetRequestId())
	assert.WithinDuration(t, start.Add(2*time.Second), resp.GetInitiatedAt().AsTime(), time.Second, "delay_seconds is capped")
	assert.Empty(t, exited, "answered before the restart")

	again := tool.Serve(ctx, &cloudv1.OperatorRestartRequest{RequestId: "r2"})
	assert.False(t, again.GetSuccess())
	assert.Equal(t, "a restart is already scheduled", again.GetErrorMessage())

	select {
	case err := <-exited:
		require.EqualError(t, err, "restart requested by Kestrel Cloud: upgrade")
		assert.GreaterOrEqual(t, time.Since(start), 2*time.Second)
	case <-time.After(10 * time.Second):
		t.Fatal("no exit")
	}
	trail.Close()
	assert.Equal(t, 2, logs.LogRecordCount(), "both requests are audited")
}

// A pending restart ends with the collector instead of firing during shutdown.
func TestShutdownCancels(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	nop := func(context.Context, string, string) {}
	exited := make(chan error, 1)
	tool := New(ctx, Config{MaxDelay: time.Minute}, nil, func(err error) { exited <- err },
		audit.New(zaptest.NewLogger(t), nop, nop, nil), zaptest.NewLogger(t))
	require.True(t, tool.Serve(ctx, &cloudv1.OperatorRestartRequest{DelaySeconds: 30}).GetSuccess())
	cancel()
	tool.Wait()
	assert.Empty(t, exited)
}
