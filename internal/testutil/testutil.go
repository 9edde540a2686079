// Package testutil is the support code that the tests of several packages share: a
// component host that records status, metric sums, the records of plog.Logs, and the check
// that a mapping of log records accounts for every record. Its cloudtest package runs the
// reference cloud (devcloud) for tests, and pipelinetest the real kestrel_command extension
// and kestrel exporter against it. The root package links neither, so that the tests of
// the packages below the components (logmap's among them) stay small.
package testutil // import "github.com/kestrelai/otelcol-kestrel/internal/testutil"

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The waits of this package give up after WaitFor, polling every Tick: generous, because
// tests share a small machine with apiservers and other packages' tests.
const (
	WaitFor = 30 * time.Second
	Tick    = 5 * time.Millisecond
)

// MetricSum sums the data points of an int64 sum whose attributes include attrs; 0 before
// the metric has been recorded.
func MetricSum(tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) int64 {
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var total int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		match := true
		for _, kv := range attrs {
			v, ok := dp.Attributes.Value(kv.Key)
			match = match && ok && v == kv.Value
		}
		if match {
			total += dp.Value
		}
	}
	return total
}

// FreeAddr returns a loopback address nobody listens on right now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	addr := l.Addr().String()
	require.NoError(tb, l.Close())
	return addr
}
