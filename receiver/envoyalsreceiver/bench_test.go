package envoyalsreceiver

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/internal/logmap"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver/internal/metadata"
)

// benchMessages are 100 messages of 100 HTTP entries, from 20 paths and 5 status codes, as a
// busy sidecar sends them.
func benchMessages(tb testing.TB) [][]byte {
	var out [][]byte
	for m := range 100 {
		batch := make([]*accesslogv3.HTTPAccessLogEntry, 100)
		for i := range batch {
			n := m*100 + i
			batch[i] = httpEntry(time.Duration(n)*time.Millisecond, fmt.Sprintf("/api/v1/r%d/%d", n%20, n), []uint32{200, 200, 200, 404, 503}[n%5],
				map[string]string{"x-request-id": fmt.Sprint(n), "authorization": "Bearer x", "user-agent": "curl"})
		}
		msg := &alsv3.StreamAccessLogsMessage{LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{
			HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: batch},
		}}
		if m == 0 {
			msg.Identifier = istioNode(tb, "10.244.1.10", "frontend-7d9f8b6c5-x2x4k", "shop", "")
		}
		b, err := proto.Marshal(msg)
		require.NoError(tb, err)
		out = append(out, b)
	}
	return out
}

// cpuTime is the process's user+system time.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}

// BenchmarkEntries measures, per access-log entry on one goroutine, decoding the
// StreamAccessLogsMessage, identification, conversion and aggregation, and the window flush
// with the exporter's mapping to cloud.v1.L7AccessLog and its protobuf encoding.
func BenchmarkEntries(b *testing.B) {
	msgs := benchMessages(b)
	m := logmap.NewMapper(nil)
	next, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
		for _, it := range m.Map(ld).Items {
			if _, err := proto.Marshal(it.Payload); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(b, err)
	r, err := newReceiver(createDefaultConfig().(*Config), receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(b, err)
	entries := float64(len(msgs) * 100)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		var st streamState
		for _, data := range msgs {
			msg := &alsv3.StreamAccessLogsMessage{}
			if err := proto.Unmarshal(data, msg); err != nil {
				b.Fatal(err)
			}
			r.receive(context.Background(), &st, msg)
		}
		r.window.Flush(context.Background())
	}
	b.StopTimer()
	cpu = cpuTime(b) - cpu
	runtime.ReadMemStats(&after)
	n := float64(b.N) * entries
	b.ReportMetric(b.Elapsed().Seconds()*1e9/n, "ns/entry")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/entry")
	b.ReportMetric(n/cpu.Seconds(), "entries/cpu-s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/entry")
}

// BenchmarkGRPC sends the same messages through a real gRPC stream as fast as the receiver
// reads them and reports the entries per second and the drops.
func BenchmarkGRPC(b *testing.B) {
	msgs := benchMessages(b)
	tt := componenttest.NewTelemetry()
	defer func() { require.NoError(b, tt.Shutdown(context.Background())) }()
	sink := &consumertest.LogsSink{}
	r, stop := startReceiver(b, testConfig(), sink, tt)
	defer stop()
	e := dialEnvoy(b, r.addr.String(), nil)
	decoded := make([]*alsv3.StreamAccessLogsMessage, len(msgs))
	for i, data := range msgs {
		decoded[i] = &alsv3.StreamAccessLogsMessage{}
		require.NoError(b, proto.Unmarshal(data, decoded[i]))
	}
	cpu := cpuTime(b)
	b.ResetTimer()
	sent := 0
	for b.Loop() {
		for _, msg := range decoded {
			require.NoError(b, e.stream.Send(msg))
			sent += len(msg.GetHttpLogs().GetLogEntry())
		}
	}
	for testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries") < int64(sent) {
		runtime.Gosched()
	}
	b.StopTimer()
	cpu = cpuTime(b) - cpu
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(sent)/cpu.Seconds(), "entries/cpu-s")
	b.ReportMetric(float64(testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries.dropped")), "dropped")
}
