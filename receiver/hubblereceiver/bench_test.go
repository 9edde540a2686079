package hubblereceiver

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/cilium/cilium/pkg/hubble/parser/fieldmask"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/internal/logmap"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/metadata"
)

// encodingConsumer does what the kestrel exporter does with the records: map them to
// cloud.v1 messages and marshal those.
func encodingConsumer(tb testing.TB) consumer.Logs {
	m := logmap.NewMapper(nil)
	c, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
		res := m.Map(ld)
		if len(res.Drops) != 0 {
			tb.Fatalf("records dropped: %+v", res.Drops)
		}
		for _, it := range res.Items {
			if _, err := proto.Marshal(it.Payload); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(tb, err)
	return c
}

func benchReceiver(tb testing.TB) *hubbleReceiver {
	r, err := newReceiver(createDefaultConfig().(*Config), receivertest.NewNopSettings(metadata.Type), encodingConsumer(tb))
	require.NoError(tb, err)
	return r
}

// BenchmarkFlows measures, per flow of the replay fixture (as Relay sends it for the
// receiver's field mask), on one goroutine:
//   - generated: decoding GetFlowsResponse with the generated code, as gRPC's standard codec
//     would; the baseline, not used by the receiver;
//   - aggregate: the receiver's decoding, deduplication and aggregation;
//   - pipeline: aggregate plus the window flush: log records, the exporter's mapping to
//     cloud.v1.Flow and its protobuf encoding.
//
// Besides wall time it reports the process's CPU time per flow (garbage collection
// included), which is what one core does and is steadier on a shared machine.
func BenchmarkFlows(b *testing.B) {
	events := loadFixture(b)
	mask, err := fieldmask.New(benchReceiver(b).fieldMask)
	require.NoError(b, err)
	raw := make([][]byte, len(events))
	flows, size := 0, 0
	for i, ev := range events {
		if ev.GetFlow() != nil {
			ev = masked(mask, ev)
			flows++
		}
		raw[i], err = proto.Marshal(ev)
		require.NoError(b, err)
		size += len(raw[i])
	}
	run := func(b *testing.B, step func(r *hubbleReceiver, ctx context.Context)) {
		r := benchReceiver(b)
		ctx := context.Background()
		var before, after runtime.MemStats
		var ruBefore, ruAfter syscall.Rusage
		runtime.ReadMemStats(&before)
		require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ruBefore))
		b.ResetTimer()
		for b.Loop() {
			r.resume = resumeState{overlap: r.resume.overlap, seed: r.resume.seed}
			step(r, ctx)
		}
		b.StopTimer()
		require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ruAfter))
		runtime.ReadMemStats(&after)
		n := float64(b.N) * float64(flows)
		cpu := time.Duration(syscall.TimevalToNsec(ruAfter.Utime) + syscall.TimevalToNsec(ruAfter.Stime) -
			syscall.TimevalToNsec(ruBefore.Utime) - syscall.TimevalToNsec(ruBefore.Stime))
		b.ReportMetric(b.Elapsed().Seconds()*1e9/n, "ns/flow")
		b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/flow")
		b.ReportMetric(n/cpu.Seconds(), "flows/cpu-s")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/flow")
		b.ReportMetric(float64(size)/float64(flows), "wire-B/flow")
	}
	// Each step copies the frame, as gRPC hands over a fresh buffer per message.
	b.Run("generated", func(b *testing.B) {
		run(b, func(_ *hubbleReceiver, _ context.Context) {
			for _, data := range raw {
				resp := &observerpb.GetFlowsResponse{}
				if err := proto.Unmarshal(append(frame(nil), data...), resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("aggregate", func(b *testing.B) {
		run(b, func(r *hubbleReceiver, ctx context.Context) {
			for _, data := range raw {
				r.handle(ctx, append(frame(nil), data...))
			}
			r.window = r.newWindow()
		})
	})
	b.Run("pipeline", func(b *testing.B) {
		run(b, func(r *hubbleReceiver, ctx context.Context) {
			for _, data := range raw {
				r.handle(ctx, append(frame(nil), data...))
			}
			r.window.Flush(ctx)
		})
	})
}
