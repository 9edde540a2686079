package store

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// clusterStore holds, for points 1..5:
//
//	shop/cart-7d9f8b6c5d-{bbbbb,ccccc}  Deployment cart, known only from the pod name
//	shop/cartographer-6b7c8d9f5b-ddddd  Deployment cartographer
//	shop/db-0, shop/db-1                StatefulSet db, but the metrics only carry pod names
//	infra/agent-fffff                   DaemonSet agent (explicit attribute)
//
// each with cpu{mode=user}, cpu{mode=system} and mem.
func clusterStore(t *testing.T) *Store {
	s, _ := newTestStore(t)
	pods := []map[string]any{
		{"k8s.namespace.name": "shop", "k8s.pod.name": "cart-7d9f8b6c5d-bbbbb"},
		{"k8s.namespace.name": "shop", "k8s.pod.name": "cart-7d9f8b6c5d-ccccc"},
		{"k8s.namespace.name": "shop", "k8s.pod.name": "cartographer-6b7c8d9f5b-ddddd"},
		{"k8s.namespace.name": "shop", "k8s.pod.name": "db-0"},
		{"k8s.namespace.name": "shop", "k8s.pod.name": "db-1"},
		{"k8s.namespace.name": "infra", "k8s.pod.name": "agent-fffff", "k8s.daemonset.name": "agent"},
	}
	for n := 1; n <= 5; n++ {
		for _, res := range pods {
			res["k8s.container.name"] = "main"
			s.Ingest(newBuilder(res).
				gauge("cpu", map[string]any{"mode": "user"}, n, float64(n)).
				gauge("cpu", map[string]any{"mode": "system"}, n, float64(n)).
				gauge("mem", nil, n, float64(n)).md)
		}
	}
	return s
}

func TestQueryFilters(t *testing.T) {
	s := clusterStore(t)
	tests := []struct {
		name string
		req  *cloudv1.MetricsQueryRequest
		want []string
	}{
		{"namespace", &cloudv1.MetricsQueryRequest{Namespace: "infra"}, []string{
			"cpu/agent-fffff/main", "cpu/agent-fffff/main", "mem/agent-fffff/main",
		}},
		{"deployment resolved from pod names", &cloudv1.MetricsQueryRequest{Namespace: "shop", WorkloadName: "cart", WorkloadKind: "Deployment", MetricNames: []string{"mem"}}, []string{
			"mem/cart-7d9f8b6c5d-bbbbb/main", "mem/cart-7d9f8b6c5d-ccccc/main",
		}},
		{"workload without namespace or kind", &cloudv1.MetricsQueryRequest{WorkloadName: "cart", MetricNames: []string{"mem"}}, []string{
			"mem/cart-7d9f8b6c5d-bbbbb/main", "mem/cart-7d9f8b6c5d-ccccc/main",
		}},
		{"kind mismatch", &cloudv1.MetricsQueryRequest{WorkloadName: "cart", WorkloadKind: "DaemonSet"}, nil},
		{"kind only", &cloudv1.MetricsQueryRequest{WorkloadKind: "daemonset", MetricNames: []string{"mem"}}, []string{"mem/agent-fffff/main"}},
		{"statefulset pods by ordinal when the kind says so", &cloudv1.MetricsQueryRequest{Namespace: "shop", WorkloadName: "db", WorkloadKind: "StatefulSet", MetricNames: []string{"mem"}}, []string{
			"mem/db-0/main", "mem/db-1/main",
		}},
		{"no statefulset guess without the kind", &cloudv1.MetricsQueryRequest{Namespace: "shop", WorkloadName: "db"}, nil},
		{"pod", &cloudv1.MetricsQueryRequest{PodName: "db-1", MetricNames: []string{"mem"}}, []string{"mem/db-1/main"}},
		{"pod in another namespace", &cloudv1.MetricsQueryRequest{Namespace: "infra", PodName: "db-1"}, nil},
		{"pod prefix", &cloudv1.MetricsQueryRequest{PodNamePrefix: "cart", MetricNames: []string{"mem"}}, []string{
			"mem/cart-7d9f8b6c5d-bbbbb/main", "mem/cart-7d9f8b6c5d-ccccc/main", "mem/cartographer-6b7c8d9f5b-ddddd/main",
		}},
		{"label matcher", &cloudv1.MetricsQueryRequest{Namespace: "infra", LabelMatchers: map[string]string{"mode": "user"}}, []string{"cpu/agent-fffff/main"}},
		{"empty matcher selects series without the label", &cloudv1.MetricsQueryRequest{Namespace: "infra", LabelMatchers: map[string]string{"mode": ""}}, []string{"mem/agent-fffff/main"}},
		{"kubernetes key matcher", &cloudv1.MetricsQueryRequest{LabelMatchers: map[string]string{"k8s.pod.name": "db-0", "container": "main"}, MetricNames: []string{"mem"}}, []string{"mem/db-0/main"}},
		{"unknown metric", &cloudv1.MetricsQueryRequest{MetricNames: []string{"nope"}}, nil},
		{"unknown namespace", &cloudv1.MetricsQueryRequest{Namespace: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := mustQuery(t, s, tt.req)
			require.Equal(t, tt.want, seriesNames(resp))
			require.EqualValues(t, len(tt.want), resp.TotalSeriesMatched)
			require.EqualValues(t, len(tt.want), resp.TotalSeriesReturned)
			require.False(t, resp.Truncated)
		})
	}

	sts := mustQuery(t, s, &cloudv1.MetricsQueryRequest{WorkloadName: "db", WorkloadKind: "StatefulSet"}).Metrics[0]
	require.Equal(t, []string{"db", "StatefulSet"}, []string{sts.WorkloadName, sts.WorkloadKind})
}

func TestQueryTimeRangeAndLimits(t *testing.T) {
	s := clusterStore(t)
	pod := func(req *cloudv1.MetricsQueryRequest) *cloudv1.MetricsQueryRequest {
		req.PodName, req.MetricNames = "db-0", []string{"mem"}
		return req
	}
	values := func(resp *cloudv1.MetricsQueryResponse) []float64 {
		var out []float64
		for _, p := range resp.Metrics[0].DataPoints {
			out = append(out, p.Value)
		}
		return out
	}

	inclusive := mustQuery(t, s, pod(&cloudv1.MetricsQueryRequest{StartTime: ts(at(2)), EndTime: ts(at(4))}))
	require.Equal(t, []float64{2, 3, 4}, values(inclusive))

	exclusive := mustQuery(t, s, pod(&cloudv1.MetricsQueryRequest{StartTime: ts(at(2).Add(time.Nanosecond)), EndTime: ts(at(4).Add(-time.Nanosecond))}))
	require.Equal(t, []float64{3}, values(exclusive))

	empty := mustQuery(t, s, pod(&cloudv1.MetricsQueryRequest{StartTime: ts(at(6)), EndTime: ts(at(9))}))
	require.Empty(t, empty.Metrics)
	require.Zero(t, empty.TotalSeriesMatched, "series without points in the range are not matches")

	recent := mustQuery(t, s, pod(&cloudv1.MetricsQueryRequest{MaxDataPoints: 2}))
	require.Equal(t, []float64{4, 5}, values(recent))
	require.False(t, recent.Truncated, "max_data_points is what was asked for, not a truncation")

	limited := mustQuery(t, s, &cloudv1.MetricsQueryRequest{Namespace: "shop", MaxSeries: 4})
	require.EqualValues(t, 15, limited.TotalSeriesMatched)
	require.EqualValues(t, 4, limited.TotalSeriesReturned)
	require.True(t, limited.Truncated)
	all := mustQuery(t, s, &cloudv1.MetricsQueryRequest{Namespace: "shop"})
	require.Equal(t, seriesNames(all)[:4], seriesNames(limited), "order is stable")

	huge := mustQuery(t, s, &cloudv1.MetricsQueryRequest{MaxSeries: 1<<31 - 1, MaxDataPoints: 1<<31 - 1})
	require.EqualValues(t, 18, huge.TotalSeriesReturned)
}

func TestQueryErrors(t *testing.T) {
	s := clusterStore(t)
	tests := []struct {
		req  *cloudv1.MetricsQueryRequest
		want string
	}{
		{&cloudv1.MetricsQueryRequest{RequestId: "a", EndTime: ts(at(1))}, "start_time and end_time are required"},
		{&cloudv1.MetricsQueryRequest{RequestId: "b", StartTime: ts(at(2)), EndTime: ts(at(1))}, "start_time is after end_time"},
		{&cloudv1.MetricsQueryRequest{RequestId: "c", StartTime: ts(at(1)), EndTime: &timestamppb.Timestamp{Nanos: -1}}, "invalid end_time"},
		{&cloudv1.MetricsQueryRequest{RequestId: "d", StartTime: ts(at(1)), EndTime: ts(at(2)), MaxSeries: -1}, "must not be negative"},
		{&cloudv1.MetricsQueryRequest{RequestId: "e", StartTime: ts(at(1)), EndTime: ts(at(2)), WorkloadKind: "Rollout"}, `unknown workload_kind "Rollout" (supported: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)`},
	}
	for _, tt := range tests {
		resp := s.Query(context.Background(), tt.req)
		require.Equal(t, tt.req.RequestId, resp.RequestId)
		require.Contains(t, resp.ErrorMessage, tt.want)
		require.Empty(t, resp.Metrics)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp := s.Query(ctx, window(&cloudv1.MetricsQueryRequest{}))
	require.Contains(t, resp.ErrorMessage, "query cancelled")
}

func TestRingSizeKeepsNewestPoints(t *testing.T) {
	s, _ := newTestStore(t, func(c *Config) { c.RingSize = 8 })
	var evicted int64
	for n := 1; n <= 100; n++ {
		evicted += s.Ingest(newBuilder(nil).gauge("g", nil, n, float64(n)).md).PointsEvicted[EvictRing]
		resp := mustQuery(t, s, &cloudv1.MetricsQueryRequest{})
		pts := resp.Metrics[0].DataPoints
		require.Len(t, pts, min(n, 8))
		require.Equal(t, math.Float64bits(float64(n)), math.Float64bits(pts[len(pts)-1].Value))
		require.Equal(t, math.Float64bits(float64(max(1, n-7))), math.Float64bits(pts[0].Value))
	}
	// The chunk holds up to ring_size + ring_size/4 points before dropping the oldest.
	require.LessOrEqual(t, numSamples(s.slot(0).chunk), 10)
	require.EqualValues(t, 100, evicted+int64(numSamples(s.slot(0).chunk)))
}

func TestRetentionWithInjectedClock(t *testing.T) {
	s, clock := newTestStore(t, func(c *Config) { c.Retention = 10 * step })
	clock.Set(at(10))
	for n := 1; n <= 10; n++ {
		s.Ingest(newBuilder(nil).gauge("a", nil, n, float64(n)).md)
	}
	s.Ingest(newBuilder(nil).gauge("b", nil, 2, 2).md)

	clock.Set(at(15))
	// Queries never show points older than the retention window, evicted yet or not.
	resp := mustQuery(t, s, &cloudv1.MetricsQueryRequest{})
	require.Equal(t, []string{"a//"}, seriesNames(resp))
	require.Len(t, resp.Metrics[0].DataPoints, 6) // at(5)..at(10)

	c := s.Evict()
	require.EqualValues(t, 1, c.SeriesEvicted[EvictRetention]) // b
	require.EqualValues(t, 4+1, c.PointsEvicted[EvictRetention])
	require.Equal(t, 6, numSamples(s.slot(0).chunk))
	n, _ := s.Stats()
	require.Equal(t, 1, n)

	c = s.Ingest(newBuilder(nil).gauge("a", nil, 4, 4).md)
	require.EqualValues(t, 1, c.PointsDropped[DropTooOld])
}

func TestMaxSeriesRefusals(t *testing.T) {
	s, _ := newTestStore(t, func(c *Config) { c.MaxSeries = 3 })
	batch := func(n int) Counts {
		b := newBuilder(nil)
		for i := range 5 {
			b.gauge(fmt.Sprintf("m%d", i), nil, n, 1).gauge(fmt.Sprintf("m%d", i), nil, n+1, 1)
		}
		return s.Ingest(b.md)
	}
	c := batch(1)
	require.EqualValues(t, 6, c.PointsStored)
	require.EqualValues(t, 2, c.SeriesRefused, "counted once per series per batch")
	require.EqualValues(t, 4, c.PointsDropped[DropSeriesRefused])
	c = batch(3)
	require.EqualValues(t, 2, c.SeriesRefused)
	n, _ := s.Stats()
	require.Equal(t, 3, n)
	require.Len(t, s.familyIDs, 3, "families of refused series are not kept")
}

func TestMaxBytesEvictsLeastRecentlyWritten(t *testing.T) {
	s, clock := newTestStore(t, func(c *Config) { c.MaxBytes, c.MaxSeries = 1<<20, 1<<20 })
	// Series 0..n are written one per second; the budget forces the oldest out.
	var c Counts
	for i := range 4000 {
		clock.Set(at(1000).Add(time.Duration(i) * time.Second))
		cc := s.Ingest(newBuilder(map[string]any{"k8s.pod.name": fmt.Sprintf("pod-%d", i)}).gauge("g", nil, 1000, 1).md)
		c.SeriesEvicted[EvictMaxBytes] += cc.SeriesEvicted[EvictMaxBytes]
		c.PointsEvicted[EvictMaxBytes] += cc.PointsEvicted[EvictMaxBytes]
		_, bytes := s.Stats()
		require.LessOrEqual(t, bytes, s.cfg.MaxBytes)
	}
	require.Positive(t, c.SeriesEvicted[EvictMaxBytes])
	require.Equal(t, c.SeriesEvicted[EvictMaxBytes], c.PointsEvicted[EvictMaxBytes])
	n, _ := s.Stats()
	require.EqualValues(t, 4000, int64(n)+c.SeriesEvicted[EvictMaxBytes])

	// The survivors are the most recently written.
	resp := mustQuery(t, s, &cloudv1.MetricsQueryRequest{PodName: "pod-3999"})
	require.Len(t, resp.Metrics, 1)
	resp = mustQuery(t, s, &cloudv1.MetricsQueryRequest{PodName: "pod-0"})
	require.Empty(t, resp.Metrics)
}

func TestResponseFitsMaxResponseBytes(t *testing.T) {
	for _, limit := range []int{2048, 16 << 10, 64 << 10} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			s, _ := newTestStore(t, func(c *Config) { c.MaxResponseBytes = limit })
			for n := 1; n <= 60; n++ {
				b := newBuilder(map[string]any{"k8s.namespace.name": "ns"})
				for i := range 100 {
					b.gauge("metric_with_a_long_name", map[string]any{"series": i, "padding": "xxxxxxxxxxxxxxxxxxxxxxxx"}, n, float64(n*i))
				}
				s.Ingest(b.md)
			}
			resp := s.Query(context.Background(), window(&cloudv1.MetricsQueryRequest{RequestId: "req"}))
			require.Empty(t, resp.ErrorMessage)
			require.LessOrEqual(t, proto.Size(resp), limit)
			require.True(t, resp.Truncated)
			require.EqualValues(t, 100, resp.TotalSeriesMatched)
			require.EqualValues(t, len(resp.Metrics), resp.TotalSeriesReturned)
			require.NotEmpty(t, resp.Metrics)
			for _, m := range resp.Metrics {
				pts := m.DataPoints
				require.Equal(t, at(60), pts[len(pts)-1].Timestamp.AsTime(), "the most recent point is always kept")
				require.LessOrEqual(t, len(pts), 60)
				if len(pts) > 1 && len(pts) < 60 {
					// Thinned evenly over the range: the oldest point stays too.
					require.Equal(t, at(1), pts[0].Timestamp.AsTime())
				}
			}
			// The budget is used, not wasted: one more point per series would not fit.
			require.Greater(t, proto.Size(resp), limit*3/4)
		})
	}
}

// The size arithmetic used to fit responses must match what protobuf marshals.
func TestSizesMatchProto(t *testing.T) {
	s, _ := newTestStore(t)
	md, _ := everyType()
	s.Ingest(md)
	b := newBuilder(cartResource)
	b.gauge("neg", map[string]any{"": "", "k": ""}, 1, math.Copysign(0, -1)) // -0: proto3 writes it, unlike +0
	s.Ingest(b.md)
	for n := range 3 {
		s.Ingest(newBuilder(map[string]any{"k8s.namespace.name": "a-namespace-name"}).gauge("x", map[string]any{"label": n}, n+1, float64(n)*1e300).md)
	}
	r := &queryRun{s: s, q: &query{end: 1 << 62}}
	require.NoError(t, r.match(context.Background()))
	require.NotEmpty(t, r.hits)
	for i := range r.hits {
		h := &r.hits[i]
		require.LessOrEqual(t, sizeField(proto.Size(r.build(h, h.n()))), sizeField(h.header+h.n()*h.pointMax))
		r.measure(h)
		m := r.build(h, h.n())
		pts := m.DataPoints
		most := 0
		for _, p := range pts {
			most = max(most, sizeField(proto.Size(p)))
		}
		require.Equal(t, most, h.pointMax, m.Name)
		m.DataPoints = nil
		require.Equal(t, proto.Size(m), h.header, m.Name)
	}
}

// Ingest, queries and eviction run on different goroutines in the collector.
func TestConcurrentIngestQueryEvict(t *testing.T) {
	s, _ := newTestStore(t, func(c *Config) { c.RingSize = 5 })
	done := make(chan struct{})
	errs := make(chan string, 2)
	go func() {
		defer close(done)
		for n := 1; n <= 300; n++ {
			s.Ingest(newBuilder(map[string]any{"k8s.namespace.name": "ns", "k8s.pod.name": fmt.Sprint("p", n%7)}).gauge("g", nil, n, 1).md)
		}
	}()
	for _, work := range []func(){
		func() { s.Evict() },
		func() {
			if resp := s.Query(context.Background(), window(&cloudv1.MetricsQueryRequest{Namespace: "ns"})); resp.ErrorMessage != "" {
				errs <- resp.ErrorMessage
			}
		},
	} {
		go func() {
			for {
				select {
				case <-done:
					errs <- ""
					return
				default:
					work()
				}
			}
		}()
	}
	require.Empty(t, <-errs)
	require.Empty(t, <-errs)
	resp := mustQuery(t, s, &cloudv1.MetricsQueryRequest{Namespace: "ns"})
	require.Len(t, resp.Metrics, 7)
}
