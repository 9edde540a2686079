package metricsstoreprocessor

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/internal/metadata"
)

const fuzzResponseLimit = minResponseBytes

var fuzzBase = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// fuzzProcessor is a started processor with small limits (ring, series, response) so that
// rewrites, refusals and truncation all happen, and a retention long enough to keep any
// timestamp a fuzzer makes up.
func fuzzProcessor(f *testing.F, name string) (processor.Metrics, *testConnection) {
	cfg := createDefaultConfig().(*Config)
	cfg.Retention = 200 * 365 * 24 * time.Hour
	cfg.RingSize, cfg.MaxSeries, cfg.MaxBytes, cfg.MaxResponseBytes = 4, 300, 2<<20, fuzzResponseLimit
	set := processortest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, name)
	p, err := NewFactory().CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(f, err)
	conn := &testConnection{}
	require.NoError(f, p.Start(context.Background(), hostWith(conn)))
	f.Cleanup(func() { require.NoError(f, p.Shutdown(context.Background())) })
	return p, conn
}

func stamp(sec int) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(fuzzBase.Add(time.Duration(sec) * time.Second))
}

// seedMetrics covers every metric type with the awkward cases: NaN and infinities, out of
// order and duplicate timestamps in one batch, empty histograms, negative scales and
// offsets, non-string and Kubernetes attributes, invalid UTF-8, no-recorded-value points.
func seedMetrics() []pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr("k8s.namespace.name", "ns")
	res.PutStr("k8s.pod.name", "web-7d9f8b6c5d-x2k4p")
	res.PutInt("k8s.container.name", 7)
	res.PutStr("service.name", "web\xff")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()

	g := ms.AppendEmpty()
	g.SetName("gauge")
	for i, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1, 1} {
		dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(stamp([]int{3, 1, 2, 2, 4}[i]))
		dp.SetDoubleValue(v)
		dp.Attributes().PutEmptySlice("list").AppendEmpty().SetStr("x")
		dp.Attributes().PutStr("pod", "other")
	}
	s := ms.AppendEmpty()
	s.SetName("sum")
	sdp := s.SetEmptySum().DataPoints().AppendEmpty()
	sdp.SetStartTimestamp(stamp(0))
	sdp.SetTimestamp(stamp(1))
	sdp.SetIntValue(math.MinInt64)
	nr := s.Sum().DataPoints().AppendEmpty()
	nr.SetTimestamp(stamp(2))
	nr.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))

	h := ms.AppendEmpty()
	h.SetName("hist")
	h.SetEmptyHistogram().DataPoints().AppendEmpty().SetTimestamp(stamp(1))
	hdp := h.Histogram().DataPoints().AppendEmpty()
	hdp.SetTimestamp(stamp(2))
	hdp.SetCount(math.MaxUint64)
	hdp.SetMin(math.NaN())
	hdp.ExplicitBounds().FromRaw([]float64{math.Inf(-1), 0, math.Inf(1)})
	hdp.BucketCounts().FromRaw([]uint64{math.MaxUint64, 0})

	e := ms.AppendEmpty()
	e.SetName("exp")
	edp := e.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	edp.SetTimestamp(stamp(1))
	edp.SetScale(-10)
	edp.Positive().SetOffset(math.MinInt32)
	edp.Positive().BucketCounts().FromRaw([]uint64{1, 2})
	edp.Negative().SetOffset(math.MaxInt32)
	e.ExponentialHistogram().DataPoints().AppendEmpty().SetTimestamp(stamp(2))

	q := ms.AppendEmpty()
	q.SetName("summary")
	qdp := q.SetEmptySummary().DataPoints().AppendEmpty()
	qdp.SetTimestamp(stamp(1))
	qv := qdp.QuantileValues().AppendEmpty()
	qv.SetQuantile(math.NaN())
	qv.SetValue(math.Copysign(0, -1)) // -0
	q.Summary().DataPoints().AppendEmpty().SetTimestamp(stamp(1))

	return []pmetric.Metrics{md, pmetric.NewMetrics()}
}

func everything() *cloudv1.MetricsQueryRequest {
	return &cloudv1.MetricsQueryRequest{
		RequestId: "all",
		StartTime: timestamppb.New(time.Unix(0, 0)),
		EndTime:   timestamppb.New(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)),
	}
}

// checkResponse holds for every answer: it fits, marshals, and its counts agree.
func checkResponse(t *testing.T, req *cloudv1.MetricsQueryRequest, resp *cloudv1.MetricsQueryResponse) {
	t.Helper()
	require.LessOrEqual(t, proto.Size(resp), fuzzResponseLimit)
	_, err := proto.Marshal(resp)
	require.NoError(t, err)
	require.EqualValues(t, len(resp.Metrics), resp.TotalSeriesReturned)
	require.LessOrEqual(t, resp.TotalSeriesReturned, resp.TotalSeriesMatched)
	if req.GetMaxSeries() > 0 {
		require.LessOrEqual(t, resp.TotalSeriesReturned, req.GetMaxSeries())
	}
	if req.GetMaxDataPoints() > 0 {
		for _, m := range resp.Metrics {
			require.LessOrEqual(t, len(m.DataPoints), int(req.GetMaxDataPoints()))
		}
	}
}

func FuzzIngest(f *testing.F) {
	for _, md := range seedMetrics() {
		b, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
		require.NoError(f, err)
		f.Add(b)
	}
	p, conn := fuzzProcessor(f, "fuzz_ingest")
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(data)
		if err != nil {
			return
		}
		require.NoError(t, p.ConsumeMetrics(context.Background(), md))
		req := everything()
		checkResponse(t, req, conn.query(t, req))
	})
}

func FuzzQuery(f *testing.F) {
	ts := func(sec int64, nanos int32) *timestamppb.Timestamp {
		return &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}
	}
	base := fuzzBase.Unix()
	seeds := []*cloudv1.MetricsQueryRequest{
		everything(),
		{StartTime: ts(base+5, 0), EndTime: ts(base, 0)},                                                       // inverted
		{StartTime: ts(base, 0), EndTime: ts(base, 0), MaxSeries: math.MaxInt32, MaxDataPoints: math.MaxInt32}, // huge limits
		{StartTime: ts(math.MinInt64, -1), EndTime: ts(math.MaxInt64, 2e9)},                                    // invalid timestamps
		{StartTime: ts(0, 0), EndTime: ts(base+10, 0), WorkloadKind: "rollout", WorkloadName: "web"},           // unknown kind
		{StartTime: ts(0, 0), EndTime: ts(base+10, 0), WorkloadKind: "statefulset", WorkloadName: "web-7d9f8b6c5d-x2k4p"},
		{StartTime: ts(0, 0), EndTime: ts(base+10, 0), LabelMatchers: map[string]string{"": "", "pod": "other", "k8s.node.name": ""}},
		{StartTime: ts(0, 0), EndTime: ts(base+10, 0), PodNamePrefix: "web", MetricNames: []string{"", "hist", "exp"}, MaxDataPoints: 1},
		{StartTime: ts(0, 0), EndTime: ts(base+10, 0), Namespace: "ns", PodName: "other", MaxSeries: -1},
	}
	for _, req := range seeds {
		b, err := proto.Marshal(req)
		require.NoError(f, err)
		f.Add(b)
	}
	p, conn := fuzzProcessor(f, "fuzz_query")
	for _, md := range seedMetrics() {
		require.NoError(f, p.ConsumeMetrics(context.Background(), md))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req := &cloudv1.MetricsQueryRequest{}
		if proto.Unmarshal(data, req) != nil {
			return
		}
		resp := conn.query(t, req)
		if len(req.GetRequestId()) <= 256 {
			require.Equal(t, req.GetRequestId(), resp.RequestId)
		}
		checkResponse(t, req, resp)
	})
}
