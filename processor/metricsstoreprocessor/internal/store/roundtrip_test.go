package store

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
)

var cartResource = map[string]any{
	"k8s.namespace.name":  "shop",
	"k8s.pod.name":        "cart-7d9f8b6c5d-x2k4p",
	"k8s.container.name":  "app",
	"k8s.node.name":       "node-1",
	"k8s.deployment.name": "cart",
	"k8s.replicaset.name": "cart-7d9f8b6c5d",
	"service.name":        "cart",
	"host.arch":           "amd64", // not part of the identity
}

func cartMetric(name string, typ cloudv1.OTelMetricType, labels map[string]string, pts ...*cloudv1.OTelMetricDataPoint) *cloudv1.OTelMetric {
	all := map[string]string{"service.name": "cart"}
	for k, v := range labels {
		all[k] = v
	}
	return &cloudv1.OTelMetric{
		Name: name, Description: name + " description", Unit: "1", Type: typ,
		Namespace: "shop", WorkloadName: "cart", WorkloadKind: podowner.KindDeployment,
		PodName: "cart-7d9f8b6c5d-x2k4p", ContainerName: "app", NodeName: "node-1",
		Labels: all, DataPoints: pts, ScopeName: "test-scope", ScopeVersion: "v1",
	}
}

type histPoint struct {
	n                  int
	count              uint64
	sum, min, max      *float64
	bounds             []float64
	counts             []uint64
	scale              int32
	zeroCount          uint64
	zeroThreshold      float64
	posOffset, negOff  int32
	pos, neg           []uint64
	quantiles, qValues []float64
}

func f64(v float64) *float64 { return &v }

func TestRoundTripEveryType(t *testing.T) {
	s, _ := newTestStore(t)
	md, want := everyType()
	md.MarkReadOnly() // the store must never write to what it ingests
	c := s.Ingest(md)
	require.EqualValues(t, 3+2+3+5+3+3, c.PointsStored)
	require.Equal(t, Counts{PointsStored: c.PointsStored}, c)
	requireProtoEqual(t, want, mustQuery(t, s, &cloudv1.MetricsQueryRequest{RequestId: "r1"}))
}

// everyType returns one pod's gauges, sums, histograms, exponential histograms and summaries,
// with changing and empty buckets, and the response a query for all of it must return.
func everyType() (pmetric.Metrics, *cloudv1.MetricsQueryResponse) {
	b := newBuilder(cartResource)

	mem := b.metric("mem").SetEmptyGauge().DataPoints()
	for i, v := range []float64{1.5, 2.5, 2.5} {
		dp := mem.AppendEmpty()
		setPoint(dp.Attributes(), map[string]any{"state": "used"}, dp.SetTimestamp, i+1)
		dp.SetDoubleValue(v)
	}
	threads := b.metric("threads").SetEmptyGauge().DataPoints()
	for i, v := range []int64{7, -9} {
		dp := threads.AppendEmpty()
		setPoint(dp.Attributes(), nil, dp.SetTimestamp, i+1)
		dp.SetIntValue(v)
	}
	sum := b.metric("requests").SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, v := range []int64{10, 15, 40} {
		dp := sum.DataPoints().AppendEmpty()
		setPoint(dp.Attributes(), map[string]any{"code": 200}, dp.SetTimestamp, i+1)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(at(0)))
		dp.SetIntValue(v)
	}

	hists := []histPoint{
		{n: 1, count: 3, sum: f64(0.6), min: f64(0.1), max: f64(0.3), bounds: []float64{0.1, 0.5, 1}, counts: []uint64{1, 2, 0, 0}},
		{n: 2, count: 5, sum: f64(1.6), bounds: []float64{0.1, 0.5, 1}, counts: []uint64{1, 3, 1, 0}},
		{n: 3, count: 5, bounds: []float64{0.2, 1}, counts: []uint64{2, 3, 0}},
		{n: 4}, // empty histogram
		{n: 5, count: 1 << 62, min: f64(-1), bounds: []float64{0.2, 1}, counts: []uint64{1 << 62, 0, 0}},
	}
	latency := b.metric("latency").SetEmptyHistogram().DataPoints()
	for _, h := range hists {
		dp := latency.AppendEmpty()
		setPoint(dp.Attributes(), nil, dp.SetTimestamp, h.n)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(at(0)))
		dp.SetCount(h.count)
		if h.sum != nil {
			dp.SetSum(*h.sum)
		}
		if h.min != nil {
			dp.SetMin(*h.min)
		}
		if h.max != nil {
			dp.SetMax(*h.max)
		}
		dp.ExplicitBounds().FromRaw(h.bounds)
		dp.BucketCounts().FromRaw(h.counts)
	}

	exps := []histPoint{
		{n: 1, count: 11, sum: f64(5.5), min: f64(-2), max: f64(9), scale: 3, zeroCount: 1, zeroThreshold: 0.001, posOffset: -2, pos: []uint64{1, 2, 3}, negOff: 1, neg: []uint64{4}},
		{n: 2, count: 20, sum: f64(7), scale: -1, zeroCount: 2, zeroThreshold: 0.001, posOffset: 5, pos: []uint64{1, 9, 3, 4}, negOff: 1, neg: []uint64{4}},
		{n: 3, scale: -1},
	}
	size := b.metric("size").SetEmptyExponentialHistogram().DataPoints()
	for _, h := range exps {
		dp := size.AppendEmpty()
		setPoint(dp.Attributes(), nil, dp.SetTimestamp, h.n)
		dp.SetCount(h.count)
		if h.sum != nil {
			dp.SetSum(*h.sum)
		}
		if h.min != nil {
			dp.SetMin(*h.min)
		}
		if h.max != nil {
			dp.SetMax(*h.max)
		}
		dp.SetScale(h.scale)
		dp.SetZeroCount(h.zeroCount)
		dp.SetZeroThreshold(h.zeroThreshold)
		dp.Positive().SetOffset(h.posOffset)
		dp.Positive().BucketCounts().FromRaw(h.pos)
		dp.Negative().SetOffset(h.negOff)
		dp.Negative().BucketCounts().FromRaw(h.neg)
	}

	sums := []histPoint{
		{n: 1, count: 10, sum: f64(15), quantiles: []float64{0.5, 0.99}, qValues: []float64{1.2, 3.4}},
		{n: 2, count: 12, sum: f64(18), quantiles: []float64{0.5, 0.99}, qValues: []float64{1.1, math.Inf(1)}},
		{n: 3, count: 12, sum: f64(18)},
	}
	rpc := b.metric("rpc").SetEmptySummary().DataPoints()
	for _, h := range sums {
		dp := rpc.AppendEmpty()
		setPoint(dp.Attributes(), nil, dp.SetTimestamp, h.n)
		dp.SetCount(h.count)
		dp.SetSum(*h.sum)
		for i, q := range h.quantiles {
			qv := dp.QuantileValues().AppendEmpty()
			qv.SetQuantile(q)
			qv.SetValue(h.qValues[i])
		}
	}

	start := ts(at(0))
	point := func(n int, v float64) *cloudv1.OTelMetricDataPoint {
		return &cloudv1.OTelMetricDataPoint{Timestamp: ts(at(n)), Value: v}
	}
	var latencyPts []*cloudv1.OTelMetricDataPoint
	for _, h := range hists {
		p := &cloudv1.OTelMetricDataPoint{Timestamp: ts(at(h.n)), StartTimestamp: start, Count: h.count, BucketBounds: h.bounds, BucketCounts: h.counts}
		if h.sum != nil {
			p.Sum = *h.sum
		}
		if h.min != nil {
			p.Min = *h.min
		}
		if h.max != nil {
			p.Max = *h.max
		}
		latencyPts = append(latencyPts, p)
	}
	var sizePts []*cloudv1.OTelMetricDataPoint
	for _, h := range exps {
		p := &cloudv1.OTelMetricDataPoint{Timestamp: ts(at(h.n)), Count: h.count, ExponentialHistogram: &cloudv1.ExponentialHistogramData{
			Scale: h.scale, ZeroCount: h.zeroCount, ZeroThreshold: h.zeroThreshold,
			Positive: &cloudv1.ExponentialHistogramBuckets{Offset: h.posOffset, BucketCounts: h.pos},
			Negative: &cloudv1.ExponentialHistogramBuckets{Offset: h.negOff, BucketCounts: h.neg},
		}}
		if h.sum != nil {
			p.Sum = *h.sum
		}
		if h.min != nil {
			p.Min = *h.min
		}
		if h.max != nil {
			p.Max = *h.max
		}
		sizePts = append(sizePts, p)
	}
	var rpcPts []*cloudv1.OTelMetricDataPoint
	for _, h := range sums {
		qs := []*cloudv1.QuantileValue{}
		for i, q := range h.quantiles {
			qs = append(qs, &cloudv1.QuantileValue{Quantile: q, Value: h.qValues[i]})
		}
		rpcPts = append(rpcPts, &cloudv1.OTelMetricDataPoint{Timestamp: ts(at(h.n)), Count: h.count, Sum: *h.sum, Summary: &cloudv1.SummaryData{QuantileValues: qs}})
	}
	requests := []*cloudv1.OTelMetricDataPoint{point(1, 10), point(2, 15), point(3, 40)}
	for _, p := range requests {
		p.StartTimestamp = start
	}

	want := &cloudv1.MetricsQueryResponse{
		RequestId: "r1",
		Metrics: []*cloudv1.OTelMetric{
			cartMetric("latency", cloudv1.OTelMetricType_OTEL_METRIC_TYPE_HISTOGRAM, nil, latencyPts...),
			cartMetric("mem", cloudv1.OTelMetricType_OTEL_METRIC_TYPE_GAUGE, map[string]string{"state": "used"}, point(1, 1.5), point(2, 2.5), point(3, 2.5)),
			cartMetric("requests", cloudv1.OTelMetricType_OTEL_METRIC_TYPE_SUM, map[string]string{"code": "200"}, requests...),
			cartMetric("rpc", cloudv1.OTelMetricType_OTEL_METRIC_TYPE_SUMMARY, nil, rpcPts...),
			cartMetric("size", cloudv1.OTelMetricType_OTEL_METRIC_TYPE_EXPONENTIAL_HISTOGRAM, nil, sizePts...),
			cartMetric("threads", cloudv1.OTelMetricType_OTEL_METRIC_TYPE_GAUGE, nil, point(1, 7), point(2, -9)),
		},
		TotalSeriesMatched:  6,
		TotalSeriesReturned: 6,
	}
	return b.md, want
}

func TestSpecialFloatsAndTimestamps(t *testing.T) {
	s, _ := newTestStore(t)
	values := []float64{
		math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0,
		math.Float64frombits(0x7ff0000000000002), // Prometheus' stale marker bit pattern
		math.Float64frombits(0x7ff8000000000bad), // a NaN with payload
		math.MaxFloat64, math.SmallestNonzeroFloat64, -1e300, 42,
	}
	b := newBuilder(nil)
	dps := b.metric("odd").SetEmptyGauge().DataPoints()
	for i, v := range values {
		dp := dps.AppendEmpty()
		// Sub-millisecond parts are cut: the store keeps Prometheus' millisecond resolution.
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at(i + 1).Add(999_999)))
		dp.SetDoubleValue(v)
	}
	require.EqualValues(t, len(values), s.Ingest(b.md).PointsStored)

	resp := mustQuery(t, s, &cloudv1.MetricsQueryRequest{})
	require.Len(t, resp.Metrics, 1)
	pts := resp.Metrics[0].DataPoints
	require.Len(t, pts, len(values))
	for i, v := range values {
		require.Equal(t, math.Float64bits(v), math.Float64bits(pts[i].Value), "value %d", i)
		require.Equal(t, at(i+1), pts[i].Timestamp.AsTime())
	}
}

func TestOutOfOrderAndDuplicatePoints(t *testing.T) {
	s, _ := newTestStore(t)
	ingest := func(n int, v float64) Counts {
		return s.Ingest(newBuilder(nil).gauge("g", nil, n, v).md)
	}
	require.EqualValues(t, 1, ingest(5, 1).PointsStored)
	c := ingest(5, 2) // same timestamp: the first value stays
	require.EqualValues(t, 1, c.PointsDropped[DropDuplicate])
	c = ingest(4, 3) // older than the newest point
	require.EqualValues(t, 1, c.PointsDropped[DropOutOfOrder])
	require.EqualValues(t, 1, ingest(6, 4).PointsStored)
	c = s.Ingest(newBuilder(nil).gauge("g", nil, -10_000, 1).md) // before the retention window
	require.EqualValues(t, 1, c.PointsDropped[DropTooOld])

	resp := mustQuery(t, s, &cloudv1.MetricsQueryRequest{})
	require.Len(t, resp.Metrics, 1)
	require.Len(t, resp.Metrics[0].DataPoints, 2)
	require.Equal(t, math.Float64bits(1), math.Float64bits(resp.Metrics[0].DataPoints[0].Value))
	require.Equal(t, math.Float64bits(4), math.Float64bits(resp.Metrics[0].DataPoints[1].Value))
}

func TestNoRecordedValuePointsAreDropped(t *testing.T) {
	s, _ := newTestStore(t)
	b := newBuilder(nil)
	dp := b.metric("g").SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at(1)))
	dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	h := b.metric("h").SetEmptyHistogram().DataPoints().AppendEmpty()
	h.SetTimestamp(pcommon.NewTimestampFromTime(at(1)))
	h.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	c := s.Ingest(b.md)
	require.EqualValues(t, 2, c.PointsDropped[DropNoRecordedValue])
	n, _ := s.Stats()
	require.Zero(t, n, "families created for dropped points are freed")
}

// Chunks grow in small steps and are re-read to continue appending; values that compress
// badly and histogram streams must survive many of those steps and ring rewrites.
func TestLongSeriesStayExact(t *testing.T) {
	s, _ := newTestStore(t, func(c *Config) { c.RingSize = 50 })
	var want []float64
	for i := range 300 {
		v := math.Float64frombits(uint64(i)*0x9E3779B97F4A7C15 | 1)
		if i%7 == 0 {
			v = float64(i)
		}
		want = append(want, v)
		b := newBuilder(nil).gauge("g", nil, i+1, v)
		dp := b.metric("h").SetEmptyHistogram().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at(i + 1)))
		dp.SetCount(uint64(i))
		dp.SetSum(v)
		dp.ExplicitBounds().FromRaw([]float64{1, float64(i % 3)})
		dp.BucketCounts().FromRaw([]uint64{uint64(i), uint64(i * i), 7})
		s.Ingest(b.md)
	}
	resp := mustQuery(t, s, &cloudv1.MetricsQueryRequest{})
	require.Len(t, resp.Metrics, 2)
	for _, m := range resp.Metrics {
		require.Len(t, m.DataPoints, 50, m.Name)
		for j, p := range m.DataPoints {
			i := 250 + j
			require.Equal(t, at(i+1), p.Timestamp.AsTime())
			if m.Name == "g" {
				require.Equal(t, math.Float64bits(want[i]), math.Float64bits(p.Value))
				continue
			}
			require.Equal(t, uint64(i), p.Count)
			require.Equal(t, math.Float64bits(want[i]), math.Float64bits(p.Sum))
			require.Equal(t, []float64{1, float64(i % 3)}, p.BucketBounds)
			require.Equal(t, []uint64{uint64(i), uint64(i * i), 7}, p.BucketCounts)
		}
	}
}
