package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// base is a millisecond-aligned time; test points are base + n*step.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const step = 15 * time.Second

func at(n int) time.Time { return base.Add(time.Duration(n) * step) }

// testClock is a settable clock for retention tests.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func testConfig(clock *testClock) Config {
	return Config{
		Retention:        24 * time.Hour,
		MaxSeries:        1000,
		RingSize:         60,
		MaxBytes:         64 << 20,
		MaxResponseBytes: 8 << 20,
		ResourceLabels:   []string{"service.name"},
		Now:              clock.Now,
	}
}

// newTestStore returns a store whose clock stands a little after at(1000).
func newTestStore(tb testing.TB, mutate ...func(*Config)) (*Store, *testClock) {
	tb.Helper()
	clock := &testClock{now: at(1000)}
	cfg := testConfig(clock)
	for _, m := range mutate {
		m(&cfg)
	}
	return New(cfg), clock
}

// builder assembles pmetric data tersely.
type builder struct {
	md pmetric.Metrics
	ms pmetric.MetricSlice
}

func newBuilder(resource map[string]any) *builder {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	if err := rm.Resource().Attributes().FromRaw(resource); err != nil {
		panic(err)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("test-scope")
	sm.Scope().SetVersion("v1")
	return &builder{md: md, ms: sm.Metrics()}
}

func (b *builder) metric(name string) pmetric.Metric {
	m := b.ms.AppendEmpty()
	m.SetName(name)
	m.SetDescription(name + " description")
	m.SetUnit("1")
	return m
}

func (b *builder) gauge(name string, attrs map[string]any, n int, v float64) *builder {
	dp := b.metric(name).SetEmptyGauge().DataPoints().AppendEmpty()
	setPoint(dp.Attributes(), attrs, dp.SetTimestamp, n)
	dp.SetDoubleValue(v)
	return b
}

func setPoint(m pcommon.Map, attrs map[string]any, setTS func(pcommon.Timestamp), n int) {
	if err := m.FromRaw(attrs); err != nil {
		panic(err)
	}
	setTS(pcommon.NewTimestampFromTime(at(n)))
}

func ts(tm time.Time) *timestamppb.Timestamp { return timestamppb.New(tm) }

// window queries the whole test time range.
func window(req *cloudv1.MetricsQueryRequest) *cloudv1.MetricsQueryRequest {
	if req.StartTime == nil {
		req.StartTime = ts(at(0))
	}
	if req.EndTime == nil {
		req.EndTime = ts(at(100_000))
	}
	return req
}

func mustQuery(tb testing.TB, s *Store, req *cloudv1.MetricsQueryRequest) *cloudv1.MetricsQueryResponse {
	tb.Helper()
	resp := s.Query(context.Background(), window(req))
	require.Empty(tb, resp.GetErrorMessage())
	require.LessOrEqual(tb, proto.Size(resp), s.cfg.MaxResponseBytes)
	return resp
}

func requireProtoEqual(tb testing.TB, want, got proto.Message) {
	tb.Helper()
	if !proto.Equal(want, got) {
		require.Equal(tb, prototext.Format(want), prototext.Format(got))
	}
}

func seriesNames(resp *cloudv1.MetricsQueryResponse) []string {
	var out []string
	for _, m := range resp.GetMetrics() {
		out = append(out, m.GetName()+"/"+m.GetPodName()+"/"+m.GetContainerName())
	}
	return out
}
