package logmap

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// BenchmarkMap maps a batch shaped like a node's log traffic: 1000 application log lines
// from 20 pods (two containers each, identity on the resource) plus 10 Kubernetes events.
func BenchmarkMap(b *testing.B) {
	ld := plog.NewLogs()
	for p := range 20 {
		for _, c := range []string{"app", "sidecar"} {
			r := podRecord(fmt.Sprintf("web-%d", p), c, "GET /api/v1/orders 200 12ms user=42", 0)
			rl := ld.ResourceLogs().AppendEmpty()
			require.NoError(b, rl.Resource().Attributes().FromRaw(r.resource))
			sl := rl.ScopeLogs().AppendEmpty()
			for i := range 25 {
				r.ts = clock.Add(time.Duration(i) * time.Millisecond)
				r.attrs = map[string]any{"log.file.record_number": int64(i + 1), "log.iostream": "stdout"}
				appendRecord(b, sl, r)
			}
		}
	}
	for range 10 {
		logsOf(b, eventRecord()).ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	}
	benchmarkMap(b, ld)
}

// BenchmarkMapFlowsAndOneLogLine maps a full batch of flows that carries one application
// log line, so that what the line costs does not grow with the batch.
func BenchmarkMapFlowsAndOneLogLine(b *testing.B) {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for range 8191 {
		appendRecord(b, sl, flowRecord())
	}
	logsOf(b, podRecord("web-0", "app", "GET /api/v1/orders 200 12ms user=42", 0)).ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	benchmarkMap(b, ld)
}

func benchmarkMap(b *testing.B, ld plog.Logs) {
	n := ld.LogRecordCount()
	m := NewMapper(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := m.Map(ld)
		if len(res.Drops) != 0 {
			b.Fatal(res.Drops)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
}
