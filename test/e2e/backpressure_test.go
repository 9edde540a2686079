package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/faulttest"
)

// A small bytes-bounded queue, no batch processor: what the queue cannot hold is refused
// to the sender.
const backpressureConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 512
    spike_limit_mib: 128
exporters:
  kestrel:
    connection: kestrel_command
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 500ms
      max_elapsed_time: 0
    sending_queue:
      queue_size: 131072 # bytes
      batch:
        min_size: 16384
service:
  extensions: [kestrel_command]
  pipelines:
    logs:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [kestrel]
  telemetry:
    logs:
      level: error
    metrics:
      level: none
`

// During an outage longer than the queue can bridge, a real OTLP/gRPC sender is told
// Unavailable (retryable) for what the queue cannot hold, instead of OK followed by a
// silent drop. Every record answered OK arrives once the cloud is back; the refused ones
// arrive when the sender retries them.
func TestFullQueueRefusesNotDrops(t *testing.T) {
	cloud := cloudtest.Start(t, devcloud.Config{})
	otlpAddr := testutil.FreeAddr(t)
	startWithConfig(t, withConnection(t, cloud, fmt.Sprintf(backpressureConfig, otlpAddr)))
	cloud.WaitCommitted(t)

	conn, err := grpc.NewClient(otlpAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	client := plogotlp.NewGRPCClient(conn)

	cloud.Kill()
	const perRequest, requests = 20, 400
	var accepted, refused []int // first uid of each request
	for r := range requests {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.Export(ctx, faulttest.Events(r*perRequest, perRequest))
		cancel()
		if err == nil {
			accepted = append(accepted, r*perRequest)
			continue
		}
		require.Equal(t, codes.Unavailable, status.Code(err), "a refusal must be retryable: %v", err)
		refused = append(refused, r*perRequest)
	}
	require.NotEmpty(t, accepted, "the queue holds some of the outage")
	require.NotEmpty(t, refused, "a 128 KiB queue cannot hold 8,000 events: the rest must be refused")

	cloud.Restart(t)
	want := map[int]bool{}
	for _, first := range accepted {
		for i := first; i < first+perRequest; i++ {
			want[i] = true
		}
	}
	ctx := testCtx(t, 60*time.Second)
	require.NoError(t, cloud.WaitFor(ctx, func(recs []devcloud.Record) bool {
		delivered := faulttest.Delivered(recs)
		for i := range want {
			if delivered[i] == 0 {
				return false
			}
		}
		return true
	}), "every accepted record is delivered after the outage")

	// The sender retries what was refused, as an OTLP exporter does.
	for len(refused) > 0 {
		first := refused[0]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.Export(ctx, faulttest.Events(first, perRequest))
		cancel()
		if err != nil {
			require.Equal(t, codes.Unavailable, status.Code(err))
			time.Sleep(50 * time.Millisecond)
			continue
		}
		refused = refused[1:]
	}
	total := requests * perRequest
	require.NoError(t, cloud.WaitFor(ctx, func(recs []devcloud.Record) bool {
		return len(faulttest.Delivered(recs)) >= total
	}), "the retried records are delivered too")

	delivered := faulttest.Delivered(cloud.Records())
	lost, duplicated := 0, 0
	for i := range total {
		switch n := delivered[i]; {
		case n == 0:
			lost++
		case n > 1:
			duplicated += n - 1
		}
	}
	t.Logf("sent %d, accepted during the outage %d, refused (retryable) %d, delivered %d, lost %d, duplicated %d",
		total, len(want), total-len(want), len(delivered), lost, duplicated)
	assert.Zero(t, lost)
	assert.Zero(t, duplicated)
}
