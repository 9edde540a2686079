package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
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

// eventRequest is one OTLP request of n Kubernetes events with uids first..first+n-1.
func eventRequest(first, n int) plogotlp.ExportRequest {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := first; i < first+n; i++ {
		lr := lrs.AppendEmpty()
		lr.SetEventName(schema.EventK8sEvent)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Unix(1767225900, 0).Add(time.Duration(i) * time.Millisecond)))
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("Warning")
		lr.Body().SetStr(fmt.Sprintf("Back-off restarting failed container (%d)", i))
		a := lr.Attributes()
		a.PutStr(schema.AttrK8sEventUID, fmt.Sprintf("ev-%d", i))
		a.PutStr(schema.AttrK8sEventName, fmt.Sprintf("checkout-abc.%d", i))
		a.PutStr(schema.AttrK8sEventReason, "BackOff")
		a.PutStr(schema.AttrK8sNamespaceName, "shop")
		a.PutStr(schema.AttrK8sObjectKind, "Pod")
		a.PutStr(schema.AttrK8sObjectName, "checkout-7d9f8b6c5-x2x4k")
		a.PutStr(schema.AttrK8sEventType, "Warning")
		a.PutInt(schema.AttrK8sEventCount, 3)
	}
	return plogotlp.NewExportRequestFromLogs(ld)
}

// During an outage longer than the queue can bridge, a real OTLP/gRPC sender is told
// Unavailable (retryable) for what the queue cannot hold, instead of OK followed by a
// silent drop. Every record answered OK arrives once the cloud is back; the refused ones
// arrive when the sender retries them.
func TestFullQueueRefusesNotDrops(t *testing.T) {
	cloud := cloudtest.Start(t, devcloud.Config{})
	otlpAddr := freeAddr(t)
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
		_, err := client.Export(ctx, eventRequest(r*perRequest, perRequest))
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
	want := map[string]bool{}
	for _, first := range accepted {
		for i := first; i < first+perRequest; i++ {
			want[fmt.Sprintf("ev-%d", i)] = true
		}
	}
	ctx := testCtx(t, 60*time.Second)
	require.NoError(t, cloud.WaitFor(ctx, func(recs []devcloud.Record) bool {
		uids, _ := eventUIDs(recs)
		for uid := range want {
			if uids[uid] == 0 {
				return false
			}
		}
		return true
	}), "every accepted record is delivered after the outage")

	// The sender retries what was refused, as an OTLP exporter does.
	for len(refused) > 0 {
		first := refused[0]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.Export(ctx, eventRequest(first, perRequest))
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
		uids, _ := eventUIDs(recs)
		return len(uids) >= total
	}), "the retried records are delivered too")

	uids, _ := eventUIDs(cloud.Records())
	lost, duplicated := 0, 0
	for i := range total {
		switch n := uids[fmt.Sprintf("ev-%d", i)]; {
		case n == 0:
			lost++
		case n > 1:
			duplicated += n - 1
		}
	}
	t.Logf("sent %d, accepted during the outage %d, refused (retryable) %d, delivered %d, lost %d, duplicated %d",
		total, len(want), total-len(want), len(uids), lost, duplicated)
	assert.Zero(t, lost)
	assert.Zero(t, duplicated)
}
