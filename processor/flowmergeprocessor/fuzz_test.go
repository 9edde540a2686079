package flowmergeprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// flowCounts sums the counts of the flow records that can be merged.
func flowCounts(ld plog.Logs) (sum int64) {
	for i := range ld.ResourceLogs().Len() {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			for k := range lrs.Len() {
				if lrs.At(k).EventName() != schema.EventNetworkFlow {
					continue
				}
				if s, ok := spanOf(lrs.At(k)); ok {
					sum += s.Count
				}
			}
		}
	}
	return sum
}

// FuzzProcessLogs feeds OTLP logs as the gateway's OTLP receiver decodes them: whatever
// arrives, the processor neither crashes nor loses or invents a flow.
func FuzzProcessLogs(f *testing.F) {
	m := &plog.ProtoMarshaler{}
	for _, ld := range []plog.Logs{
		logsOf(flow{src: "web", dst: "api", srcIP: "10.0.0.1", port: 80, count: 3, last: time.Second, labels: []string{"a", "b"}},
			flow{src: "web", dst: "api", srcIP: "10.0.0.2", port: 80, count: 4, labels: []string{"b", "c"}},
			flow{srcIP: "1.1.1.1", dst: "api", port: 80, count: 1}),
		logsOf(flow{src: "web", dst: "db", port: 5432, count: 1<<62 - 1}, flow{src: "web", dst: "db", port: 5432, count: 1<<62 - 1}),
	} {
		b, err := m.MarshalLogs(ld)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{})
	u := &plog.ProtoUnmarshaler{}
	f.Fuzz(func(t *testing.T, data []byte) {
		ld, err := u.UnmarshalLogs(data)
		if err != nil {
			return
		}
		// Only sums that fit are compared (an overflowing record goes on unmerged anyway).
		in := flowCounts(ld)
		if in < 0 {
			return
		}
		sink := &consumertest.LogsSink{}
		p := newTestProcessor(t, time.Hour, 3, sink)
		require.NoError(t, p.ConsumeLogs(context.Background(), ld))
		require.NoError(t, p.Shutdown(context.Background()))
		var out int64
		for _, got := range sink.AllLogs() {
			out += flowCounts(got)
		}
		require.Equal(t, in, out)
	})
}
