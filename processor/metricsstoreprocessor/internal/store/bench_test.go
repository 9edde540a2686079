package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// The benchmark cluster: 20 namespaces × 25 Deployments × 4 pods = 2,000 pods, each exporting
// 50 single-series metrics every 15 s = 100,000 series. Per pod: 20 counters (cumulative sums
// growing by 0–100), 15 memory-like gauges (moving by multiples of 4 KiB), 10 constants
// (limits, info) and 5 ratios with three decimals. Timestamps carry 0–4 ms of scrape jitter
// unless aligned is set.
const (
	benchNamespaces  = 20
	benchDeployments = 25
	benchPods        = 4
	benchMetrics     = 50
	benchRounds      = 60
	benchSeries      = benchNamespaces * benchDeployments * benchPods * benchMetrics
)

type benchPod struct {
	md     pmetric.Metrics
	points []pmetric.NumberDataPoint
	state  []float64
	key    string // the naive baseline's series key prefix
}

type benchCluster struct {
	pods []*benchPod
	rng  *rand.Rand
}

func newBenchCluster() *benchCluster {
	c := &benchCluster{rng: rand.New(rand.NewPCG(1, 2))}
	for ns := range benchNamespaces {
		for d := range benchDeployments {
			for p := range benchPods {
				c.pods = append(c.pods, c.newPod(ns, d, p))
			}
		}
	}
	return c
}

func (c *benchCluster) newPod(ns, d, p int) *benchPod {
	namespace := fmt.Sprintf("team-%02d", ns)
	deploy := fmt.Sprintf("service-%02d", d)
	pod := fmt.Sprintf("%s-7d9f8b6c5d-%c%c%c%c%c", deploy, 'b'+rune(ns%20), 'c'+rune(d%20), 'd'+rune(p), 'x', 'z')
	res := map[string]any{
		"k8s.namespace.name": namespace, "k8s.pod.name": pod, "k8s.container.name": "app",
		"k8s.node.name": fmt.Sprintf("node-%03d", (ns*benchDeployments+d)%100), "k8s.deployment.name": deploy,
		"service.name": deploy, "service.instance.id": pod, "host.arch": "amd64",
	}
	bp := &benchPod{md: pmetric.NewMetrics(), key: fmt.Sprint(res)}
	rm := bp.md.ResourceMetrics().AppendEmpty()
	_ = rm.Resource().Attributes().FromRaw(res)
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for j := range benchMetrics {
		m := ms.AppendEmpty()
		var dp pmetric.NumberDataPoint
		switch {
		case j < 20:
			m.SetName(fmt.Sprintf("app.requests.%02d", j))
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp = sum.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(-time.Hour)))
			bp.state = append(bp.state, float64(c.rng.IntN(1e6)))
		case j < 35:
			m.SetName(fmt.Sprintf("app.memory.%02d", j))
			dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
			bp.state = append(bp.state, float64(c.rng.IntN(1<<18)*4096))
		case j < 45:
			m.SetName(fmt.Sprintf("app.limit.%02d", j))
			dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
			bp.state = append(bp.state, float64(c.rng.IntN(64)*(1<<28)))
		default:
			m.SetName(fmt.Sprintf("app.utilization.%02d", j))
			dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
			bp.state = append(bp.state, 0)
		}
		bp.points = append(bp.points, dp)
	}
	return bp
}

// round sets every pod's points to scrape r.
func (c *benchCluster) round(r int, aligned bool) {
	for _, p := range c.pods {
		t := at(r)
		if !aligned {
			t = t.Add(time.Duration(c.rng.IntN(5)) * time.Millisecond)
		}
		stamp := pcommon.NewTimestampFromTime(t)
		for j, dp := range p.points {
			switch {
			case j < 20:
				p.state[j] += float64(c.rng.IntN(101))
				dp.SetIntValue(int64(p.state[j]))
			case j < 35:
				p.state[j] += float64((c.rng.IntN(11) - 5) * 4096)
				dp.SetDoubleValue(p.state[j])
			case j < 45:
				dp.SetDoubleValue(p.state[j])
			default:
				dp.SetDoubleValue(float64(c.rng.IntN(1000)) / 1000)
			}
			dp.SetTimestamp(stamp)
		}
	}
}

func benchStoreConfig() Config {
	return Config{
		Retention: 24 * time.Hour, MaxSeries: 200_000, RingSize: benchRounds, MaxBytes: 1 << 40,
		MaxResponseBytes: 8 << 20, ResourceLabels: []string{"service.name", "service.namespace", "service.instance.id"},
		Now: func() time.Time { return at(benchRounds) },
	}
}

// fill ingests benchRounds scrapes of the cluster and returns the time spent in Ingest.
func fill(s *Store, c *benchCluster, aligned bool) time.Duration {
	var spent time.Duration
	for r := range benchRounds {
		c.round(r, aligned)
		began := time.Now()
		for _, p := range c.pods {
			s.Ingest(p.md)
		}
		spent += time.Since(began)
	}
	return spent
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// naiveStore is the baseline: one string key per series and a preallocated slice of raw
// samples, the layout of the operator this processor replaces.
type naiveStore map[string][]struct {
	ts int64
	v  float64
}

func (n naiveStore) fill(c *benchCluster) {
	for r := range benchRounds {
		c.round(r, false)
		for _, p := range c.pods {
			ms := p.md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
			for j, dp := range p.points {
				key := ms.At(j).Name() + p.key
				pts, ok := n[key]
				if !ok {
					pts = make([]struct {
						ts int64
						v  float64
					}, 0, benchRounds)
				}
				v := dp.DoubleValue()
				if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
					v = float64(dp.IntValue())
				}
				n[key] = append(pts, struct {
					ts int64
					v  float64
				}{int64(dp.Timestamp()), v})
			}
		}
	}
}

// BenchmarkMemory reports the heap held by 100,000 series × 60 points, the chunk bytes per
// sample, ingest throughput, and the same heap for the naive baseline.
func BenchmarkMemory(b *testing.B) {
	for _, aligned := range []bool{false, true} {
		b.Run(map[bool]string{false: "jittered", true: "aligned"}[aligned], func(b *testing.B) {
			for range b.N {
				c := newBenchCluster()
				before := heapInUse()
				s := New(benchStoreConfig())
				spent := fill(s, c, aligned)
				after := heapInUse()
				n, estimate := s.Stats()
				if n != benchSeries {
					b.Fatalf("series = %d", n)
				}
				var chunkBytes, samples int
				for id := range uint32(n) {
					chunkBytes += len(s.slot(id).chunk) - chunkHeader
					samples += numSamples(s.slot(id).chunk)
				}
				heap := float64(after - before)
				b.ReportMetric(heap/(1<<20), "heap-MiB")
				b.ReportMetric(heap/benchSeries, "heap-B/series")
				b.ReportMetric(float64(estimate)/(1<<20), "estimate-MiB")
				b.ReportMetric(float64(chunkBytes)/float64(samples), "chunk-B/sample")
				b.ReportMetric(float64(benchSeries*benchRounds)/spent.Seconds(), "ingest-points/s")
				runtime.KeepAlive(s)
				runtime.KeepAlive(c) // the input batches are not part of the store

				if aligned {
					continue
				}
				c = newBenchCluster()
				before = heapInUse()
				naive := naiveStore{}
				naive.fill(c)
				naiveHeap := float64(heapInUse() - before)
				b.ReportMetric(naiveHeap/(1<<20), "naive-heap-MiB")
				b.ReportMetric(naiveHeap/heap, "naive/store")
				runtime.KeepAlive(naive)
				runtime.KeepAlive(c)
			}
		})
	}
}

func percentile(d []time.Duration, p float64) float64 {
	slices.Sort(d)
	return float64(d[min(len(d)-1, int(math.Ceil(p*float64(len(d))))-1)].Microseconds())
}

// BenchmarkQueryWorkload measures one Deployment's metrics (4 pods × 50 series × 60 points)
// out of the 100,000-series store; the baseline scans the naive map for the same series.
func BenchmarkQueryWorkload(b *testing.B) {
	c := newBenchCluster()
	s := New(benchStoreConfig())
	fill(s, c, false)
	req := func(i int) *cloudv1.MetricsQueryRequest {
		return &cloudv1.MetricsQueryRequest{
			Namespace: fmt.Sprintf("team-%02d", i%benchNamespaces), WorkloadName: fmt.Sprintf("service-%02d", i%benchDeployments),
			WorkloadKind: "Deployment", StartTime: ts(at(0)), EndTime: ts(at(benchRounds)),
		}
	}
	resp := s.Query(context.Background(), req(0))
	if len(resp.Metrics) != benchPods*benchMetrics || resp.Truncated {
		b.Fatalf("got %d series, truncated %v", len(resp.Metrics), resp.Truncated)
	}
	b.ReportMetric(float64(proto.Size(resp)), "response-B")

	b.Run("store", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := range b.N {
			began := time.Now()
			s.Query(context.Background(), req(i))
			lat = append(lat, time.Since(began))
		}
		b.ReportMetric(percentile(lat, 0.5), "p50-µs")
		b.ReportMetric(percentile(lat, 0.99), "p99-µs")
	})
	b.Run("naive", func(b *testing.B) {
		naive := naiveStore{}
		naive.fill(newBenchCluster())
		lat := make([]time.Duration, 0, b.N)
		for i := range b.N {
			began := time.Now()
			ns := fmt.Sprintf("k8s.namespace.name:team-%02d", i%benchNamespaces)
			deploy := fmt.Sprintf("k8s.deployment.name:service-%02d ", i%benchDeployments)
			var out [][]float64
			for k, pts := range naive {
				if strings.Contains(k, ns) && strings.Contains(k, deploy) {
					vs := make([]float64, len(pts))
					for j, p := range pts {
						vs[j] = p.v
					}
					out = append(out, vs)
				}
			}
			if len(out) != benchPods*benchMetrics {
				b.Fatalf("naive matched %d", len(out))
			}
			lat = append(lat, time.Since(began))
		}
		b.ReportMetric(percentile(lat, 0.5), "p50-µs")
		b.ReportMetric(percentile(lat, 0.99), "p99-µs")
	})
}

// BenchmarkIngest measures steady-state ingest (full rings, so every append may re-encode)
// in data points per second on one goroutine.
func BenchmarkIngest(b *testing.B) {
	c := newBenchCluster()
	s := New(benchStoreConfig())
	fill(s, c, false)
	b.ResetTimer()
	var spent time.Duration
	for i := range b.N {
		c.round(benchRounds+i, false)
		began := time.Now()
		for _, p := range c.pods {
			s.Ingest(p.md)
		}
		spent += time.Since(began)
	}
	b.ReportMetric(float64(b.N*benchSeries)/spent.Seconds(), "points/s")
}

// BenchmarkBytesPerPoint reports the stored bytes per point (chunk plus side stream) of one
// series of each type after 60 scrapes 15 s apart with 0–4 ms jitter: a counter, a gauge, a
// 12-bucket histogram, a 20+4-bucket exponential histogram and a 3-quantile summary, all
// with values that move every scrape.
func BenchmarkBytesPerPoint(b *testing.B) {
	for range b.N {
		rng := rand.New(rand.NewPCG(7, 8))
		s := New(benchStoreConfig())
		counts := make([]uint64, 13)
		pos, neg := make([]uint64, 20), make([]uint64, 4)
		var total uint64
		for r := range benchRounds {
			bld := newBuilder(map[string]any{"k8s.pod.name": "p"})
			stamp := pcommon.NewTimestampFromTime(at(r).Add(time.Duration(rng.IntN(5)) * time.Millisecond))
			start := pcommon.NewTimestampFromTime(base.Add(-time.Hour))
			total += uint64(rng.IntN(100))
			add := func(name string) pmetric.Metric { return bld.metric(name) }

			c := add("counter").SetEmptySum().DataPoints().AppendEmpty()
			c.SetTimestamp(stamp)
			c.SetStartTimestamp(start)
			c.SetIntValue(int64(total))
			g := add("gauge").SetEmptyGauge().DataPoints().AppendEmpty()
			g.SetTimestamp(stamp)
			g.SetDoubleValue(float64(rng.IntN(1<<20) * 4096))

			for i := range counts {
				counts[i] += uint64(rng.IntN(10))
			}
			h := add("histogram").SetEmptyHistogram().DataPoints().AppendEmpty()
			h.SetTimestamp(stamp)
			h.SetStartTimestamp(start)
			h.SetCount(total)
			h.SetSum(float64(total) * 0.137)
			h.ExplicitBounds().FromRaw([]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})
			h.BucketCounts().FromRaw(counts)

			for i := range pos {
				pos[i] += uint64(rng.IntN(10))
			}
			neg[rng.IntN(len(neg))]++
			e := add("exponential").SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
			e.SetTimestamp(stamp)
			e.SetStartTimestamp(start)
			e.SetCount(total)
			e.SetSum(float64(total) * 0.137)
			e.SetScale(3)
			e.Positive().SetOffset(-5)
			e.Positive().BucketCounts().FromRaw(pos)
			e.Negative().BucketCounts().FromRaw(neg)

			q := add("summary").SetEmptySummary().DataPoints().AppendEmpty()
			q.SetTimestamp(stamp)
			q.SetCount(total)
			q.SetSum(float64(total) * 0.137)
			for _, quantile := range []float64{0.5, 0.9, 0.99} {
				qv := q.QuantileValues().AppendEmpty()
				qv.SetQuantile(quantile)
				qv.SetValue(float64(rng.IntN(1000)) / 1000)
			}
			s.Ingest(bld.md)
		}
		for id := range uint32(s.live) {
			sr := s.slot(id)
			n := len(sr.chunk) - chunkHeader
			if sr.aux != nil {
				n += len(sr.aux.buf)
			}
			b.ReportMetric(float64(n)/benchRounds, s.syms.str(s.families[sr.fam].key.name)+"-B/point")
		}
	}
}
