package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/workload"
)

// maxRequestIDBytes bounds the request_id a response echoes (request IDs are UUIDs).
const maxRequestIDBytes = 256

// thinFloor is how many points per series a response keeps before it starts dropping whole
// series to fit max_response_bytes.
const thinFloor = 10

// ctxField selects the Kubernetes context field a label matcher applies to.
type ctxField int

const (
	fieldNone ctxField = iota
	fieldNamespace
	fieldPod
	fieldContainer
	fieldNode
)

var ctxMatcherKeys = map[string]ctxField{
	attrNamespace: fieldNamespace, "namespace": fieldNamespace,
	attrPod: fieldPod, "pod": fieldPod,
	attrContainer: fieldContainer, "container": fieldContainer,
	attrNode: fieldNode, "node": fieldNode,
}

type matcher struct {
	key, value string
	field      ctxField
}

type query struct {
	namespace, pod, podPrefix  string
	workloadName, workloadKind string
	names                      []string
	matchers                   []matcher
	start, end                 int64 // inclusive, milliseconds
	maxSeries, maxPoints       int
}

func parseQuery(req *cloudv1.MetricsQueryRequest) (*query, error) {
	if req.GetStartTime() == nil || req.GetEndTime() == nil {
		return nil, errors.New("start_time and end_time are required")
	}
	if err := req.GetStartTime().CheckValid(); err != nil {
		return nil, fmt.Errorf("invalid start_time: %w", err)
	}
	if err := req.GetEndTime().CheckValid(); err != nil {
		return nil, fmt.Errorf("invalid end_time: %w", err)
	}
	q := &query{
		namespace:    req.GetNamespace(),
		pod:          req.GetPodName(),
		podPrefix:    req.GetPodNamePrefix(),
		workloadName: req.GetWorkloadName(),
		names:        req.GetMetricNames(),
		// Points are kept in milliseconds: a point at t ms is in [start, end] when
		// start <= t*1e6 ns <= end, hence the rounding up of start and down of end.
		start:     req.GetStartTime().GetSeconds()*1000 + (int64(req.GetStartTime().GetNanos())+999_999)/1_000_000,
		end:       req.GetEndTime().GetSeconds()*1000 + int64(req.GetEndTime().GetNanos())/1_000_000,
		maxSeries: int(req.GetMaxSeries()),
		maxPoints: int(req.GetMaxDataPoints()),
	}
	if req.GetStartTime().AsTime().After(req.GetEndTime().AsTime()) {
		return nil, errors.New("start_time is after end_time")
	}
	if q.maxSeries < 0 || q.maxPoints < 0 {
		return nil, errors.New("max_series and max_data_points must not be negative")
	}
	if k := req.GetWorkloadKind(); k != "" {
		kind, err := workload.ParseKind(k)
		if err != nil {
			return nil, err
		}
		q.workloadKind = kind
	}
	for k, v := range req.GetLabelMatchers() {
		q.matchers = append(q.matchers, matcher{key: k, value: v, field: ctxMatcherKeys[k]})
	}
	return q, nil
}

// hit is a matched series with at least one point in range.
type hit struct {
	id       uint32
	lo, hi   int // sample indexes of the first and last point to return
	pointMax int // upper bound of one point's size as a repeated-field entry
	header   int // size of the OTelMetric without its points
	stsGuess bool
	approx   bool // pointMax is a bound for any number point, not this series' maximum
}

func (h *hit) n() int { return h.hi - h.lo + 1 }

// Query answers req. Problems (invalid request, cancellation) are reported in error_message;
// the answer never exceeds Config.MaxResponseBytes when marshalled.
func (s *Store) Query(ctx context.Context, req *cloudv1.MetricsQueryRequest) *cloudv1.MetricsQueryResponse {
	resp := &cloudv1.MetricsQueryResponse{RequestId: validUTF8(req.GetRequestId())}
	if len(resp.RequestId) > maxRequestIDBytes {
		// Echoing an unbounded ID would break the response size limit.
		resp.RequestId = validUTF8(resp.RequestId[:maxRequestIDBytes])
		resp.ErrorMessage = fmt.Sprintf("request_id is longer than %d bytes", maxRequestIDBytes)
		return resp
	}
	q, err := parseQuery(req)
	if err != nil {
		resp.ErrorMessage = err.Error()
		return resp
	}
	// Points older than the retention window may linger until the next eviction; never
	// show them, so results do not depend on eviction timing.
	q.start = max(q.start, s.now().Add(-s.cfg.Retention).UnixMilli())

	s.mu.RLock()
	defer s.mu.RUnlock()
	r := &queryRun{s: s, q: q}
	if err := r.match(ctx); err != nil {
		resp.ErrorMessage = "query cancelled: " + err.Error()
		return resp
	}
	resp.TotalSeriesMatched = int32(min(len(r.hits), 1<<31-1))
	hits := r.hits
	if q.maxSeries > 0 && len(hits) > q.maxSeries {
		hits = hits[:q.maxSeries]
		resp.Truncated = true
	}
	budget := s.cfg.MaxResponseBytes - sizeString(resp.RequestId) - 2*6 - 2 // totals and truncated
	kept, perSeries, thinned := fit(hits, budget)
	if kept < len(hits) || thinned {
		// Bounds were not enough; measure the points exactly and fit again.
		for i := range hits {
			r.measure(&hits[i])
		}
		kept, perSeries, thinned = fit(hits, budget)
	}
	resp.Truncated = resp.Truncated || thinned || kept < len(hits)
	resp.Metrics = make([]*cloudv1.OTelMetric, kept)
	for i := range kept {
		resp.Metrics[i] = r.build(&hits[i], perSeries)
	}
	resp.TotalSeriesReturned = int32(kept)
	return resp
}

type queryRun struct {
	s    *Store
	q    *query
	it   chunkenc.Iterator
	dec  auxDecoder
	hits []hit
}

// match finds the series that pass every filter and have points in range, in a stable
// order: by namespace, workload, pod, container, node, then metric name and labels.
func (r *queryRun) match(ctx context.Context) error {
	s := r.s
	ctxs, guesses := r.contexts()
	slices.SortFunc(ctxs, func(a, b uint32) int { return s.compareContexts(a, b) })
	var ids []uint32
	for _, cid := range ctxs {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids = ids[:0]
		for _, id := range s.ctxs[cid].series {
			if r.seriesMatches(s.slot(id)) {
				ids = append(ids, id)
			}
		}
		slices.SortFunc(ids, func(a, b uint32) int { return s.compareSeries(a, b) })
		for _, id := range ids {
			if h, ok := r.scan(id, false); ok {
				h.stsGuess = guesses[cid]
				h.header = r.headerSize(&h)
				r.hits = append(r.hits, h)
			}
		}
	}
	return nil
}

// contexts returns the candidate contexts that pass the Kubernetes filters, using the most
// selective index available. guesses marks contexts matched only because a StatefulSet
// query names the pod's "<name>-<ordinal>" prefix.
func (r *queryRun) contexts() ([]uint32, map[uint32]bool) {
	s, q := r.s, r.q
	var cands []uint32
	symbolList := func(idx map[uint32][]uint32, str string) []uint32 {
		if sym, ok := s.syms.lookup(str); ok {
			return idx[sym]
		}
		return nil
	}
	guessSTS := q.workloadKind == podowner.KindStatefulSet && q.workloadName != ""
	switch {
	case q.pod != "":
		cands = symbolList(s.byPod, q.pod)
	case q.workloadName != "" && !guessSTS:
		cands = symbolList(s.byWorkload, q.workloadName)
	case q.namespace != "":
		cands = symbolList(s.byNamespace, q.namespace)
	default:
		for id := range s.ctxs {
			if s.ctxs[id].live {
				cands = append(cands, uint32(id))
			}
		}
	}
	out := make([]uint32, 0, len(cands))
	var guesses map[uint32]bool
	for _, id := range cands {
		ok, guess := r.contextMatches(&s.ctxs[id])
		if !ok {
			continue
		}
		out = append(out, id)
		if guess {
			if guesses == nil {
				guesses = map[uint32]bool{}
			}
			guesses[id] = true
		}
	}
	return out, guesses
}

func (r *queryRun) contextMatches(c *k8sContext) (ok, stsGuess bool) {
	s, q := r.s, r.q
	ns, pod := s.syms.str(c.key.namespace), s.syms.str(c.key.pod)
	if (q.namespace != "" && ns != q.namespace) || (q.pod != "" && pod != q.pod) || !strings.HasPrefix(pod, q.podPrefix) {
		return false, false
	}
	for _, m := range q.matchers {
		if m.field != fieldNone && s.syms.str(c.field(m.field)) != m.value {
			return false, false
		}
	}
	kind := kindName(c.workloadKind)
	if c.workloadName != 0 || q.workloadName == "" {
		return (q.workloadName == "" || s.syms.str(c.workloadName) == q.workloadName) &&
			(q.workloadKind == "" || kind == q.workloadKind), false
	}
	// Pod names alone say nothing reliable about StatefulSets, unless the query says the
	// workload is one.
	guess := q.workloadKind == podowner.KindStatefulSet && podowner.IsStatefulSetPod(q.workloadName, pod)
	return guess, guess
}

func (c *k8sContext) field(f ctxField) uint32 {
	switch f {
	case fieldNamespace:
		return c.key.namespace
	case fieldPod:
		return c.key.pod
	case fieldContainer:
		return c.key.container
	default:
		return c.key.node
	}
}

func (r *queryRun) seriesMatches(sr *series) bool {
	s, q := r.s, r.q
	if len(q.names) > 0 && !slices.Contains(q.names, s.syms.str(s.families[sr.fam].key.name)) {
		return false
	}
	pairs := s.labelSets[sr.labels].pairs
	for _, m := range q.matchers {
		if m.field != fieldNone {
			continue
		}
		got := ""
		for i := 0; i < len(pairs); i += 2 {
			if s.syms.str(pairs[i]) == m.key {
				got = s.syms.str(pairs[i+1])
				break
			}
		}
		if got != m.value { // an empty matcher value selects series without the label
			return false
		}
	}
	return true
}

func (s *Store) compareContexts(a, b uint32) int {
	x, y := &s.ctxs[a], &s.ctxs[b]
	str := s.syms.str
	return cmp.Or(
		strings.Compare(str(x.key.namespace), str(y.key.namespace)),
		strings.Compare(str(x.workloadName), str(y.workloadName)),
		strings.Compare(str(x.key.pod), str(y.key.pod)),
		strings.Compare(str(x.key.container), str(y.key.container)),
		strings.Compare(str(x.key.node), str(y.key.node)),
		strings.Compare(str(x.key.rawName), str(y.key.rawName)),
		cmp.Compare(x.key.rawKind, y.key.rawKind),
	)
}

func (s *Store) compareSeries(a, b uint32) int {
	x, y := s.slot(a), s.slot(b)
	fx, fy := &s.families[x.fam], &s.families[y.fam]
	if c := cmp.Or(strings.Compare(s.syms.str(fx.key.name), s.syms.str(fy.key.name)), cmp.Compare(fx.key.typ, fy.key.typ)); c != 0 {
		return c
	}
	px, py := s.labelSets[x.labels].pairs, s.labelSets[y.labels].pairs
	for i := 0; i < len(px) && i < len(py); i++ {
		if c := strings.Compare(s.syms.str(px[i]), s.syms.str(py[i])); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(px), len(py))
}

// measure replaces an approximate hit's size bound with its points' actual maximum.
func (r *queryRun) measure(h *hit) {
	if h.approx {
		exact, _ := r.scan(h.id, true)
		h.lo, h.hi, h.pointMax, h.approx = exact.lo, exact.hi, exact.pointMax, false
	}
}

// scalarPointMax bounds the size of any gauge or sum point as a repeated-field entry: two
// Timestamps of at most 1+5 (seconds up to year 2554) + 1+5 (nanos) bytes, and a double.
var scalarPointMax = sizeField(2*sizeField(12) + 9)

// scan finds the points of series id inside the query range and bounds their size. Unless
// exact is set, a number series that lies entirely inside the range (the usual "last N
// minutes" query) is not decoded and gets the generic bound.
func (r *queryRun) scan(id uint32, exact bool) (hit, bool) {
	s, q := r.s, r.q
	sr := s.slot(id)
	if sr.maxT < q.start {
		return hit{}, false
	}
	kind := s.families[sr.fam].key.typ
	n := numSamples(sr.chunk)
	skip := max(0, n-s.cfg.RingSize) // only the newest RingSize are visible
	r.it = iterate(sr.chunk, r.it)
	if !exact && sr.aux == nil && sr.maxT <= q.end && r.it.Next() != chunkenc.ValNone && r.it.AtT() >= q.start {
		h := hit{id: id, lo: skip, hi: n - 1, pointMax: scalarPointMax, approx: true}
		if q.maxPoints > 0 && h.n() > q.maxPoints {
			h.lo = h.hi - q.maxPoints + 1
		}
		return h, true
	}
	r.it = iterate(sr.chunk, r.it)
	if sr.aux != nil {
		r.dec.reset(sr.aux.buf, kind)
	}
	h := hit{id: id, lo: -1}
	maxSize := 0
	for i := 0; r.it.Next() != chunkenc.ValNone; i++ {
		var a *auxPoint
		if sr.aux != nil {
			a = r.dec.next()
		}
		t, v := r.it.At()
		if i < skip || t < q.start {
			continue
		}
		if t > q.end {
			break
		}
		if h.lo < 0 {
			h.lo = i
		}
		h.hi = i
		maxSize = max(maxSize, sizePoint(r.it.AtST(), t, v, a, kind))
	}
	if h.lo < 0 {
		return hit{}, false
	}
	if q.maxPoints > 0 && h.n() > q.maxPoints {
		h.lo = h.hi - q.maxPoints + 1
	}
	h.pointMax = sizeField(maxSize)
	return h, true
}

// workloadOf is the workload reported for a series.
func (r *queryRun) workloadOf(h *hit, c *k8sContext) (name, kind string) {
	if h.stsGuess {
		return r.q.workloadName, podowner.KindStatefulSet
	}
	return r.s.syms.str(c.workloadName), kindName(c.workloadKind)
}

func (r *queryRun) headerSize(h *hit) int {
	s := r.s
	sr := s.slot(h.id)
	f, c := &s.families[sr.fam], &s.ctxs[sr.ctx]
	wlName, wlKind := r.workloadOf(h, c)
	n := sizeString(s.syms.str(f.key.name)) + sizeString(f.description) + sizeString(f.unit) +
		sizeInt(int64(metricType(f.key.typ))) +
		sizeString(s.syms.str(c.key.namespace)) + sizeString(wlName) + sizeString(wlKind) +
		sizeString(s.syms.str(c.key.pod)) + sizeString(s.syms.str(c.key.container)) +
		sizeString(s.syms.str(c.key.node)) + sizeString(f.scopeName) + sizeString(f.scopeVer)
	pairs := s.labelSets[sr.labels].pairs
	for i := 0; i < len(pairs); i += 2 {
		// Map entries always carry both key and value, even when empty.
		n += sizeField(sizeField(len(s.syms.str(pairs[i]))) + sizeField(len(s.syms.str(pairs[i+1]))))
	}
	return n
}

// fit decides how many of hits (a prefix) and how many points per series fit in budget
// bytes. Points are thinned first, down to thinFloor per series; only then are series
// dropped from the end. thinned reports whether any kept series lost points.
func fit(hits []hit, budget int) (kept, perSeries int, thinned bool) {
	most := 0
	for i := range hits {
		most = max(most, hits[i].n())
	}
	total := func(k, m int) int {
		sum := 0
		for i := range m {
			sum += sizeField(hits[i].header + min(hits[i].n(), k)*hits[i].pointMax)
		}
		return sum
	}
	if total(most, len(hits)) <= budget {
		return len(hits), most, false
	}
	floor := min(thinFloor, most)
	used := 0
	for kept < len(hits) {
		c := sizeField(hits[kept].header + min(hits[kept].n(), floor)*hits[kept].pointMax)
		if used+c > budget {
			break
		}
		used += c
		kept++
	}
	// Largest per-series count that still fits for the kept series.
	lo, hi := floor, most
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if total(mid, kept) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	for i := range kept {
		thinned = thinned || hits[i].n() > lo
	}
	return kept, lo, thinned
}

func metricType(t pmetric.MetricType) cloudv1.OTelMetricType {
	switch t {
	case pmetric.MetricTypeGauge:
		return cloudv1.OTelMetricType_OTEL_METRIC_TYPE_GAUGE
	case pmetric.MetricTypeSum:
		return cloudv1.OTelMetricType_OTEL_METRIC_TYPE_SUM
	case pmetric.MetricTypeHistogram:
		return cloudv1.OTelMetricType_OTEL_METRIC_TYPE_HISTOGRAM
	case pmetric.MetricTypeExponentialHistogram:
		return cloudv1.OTelMetricType_OTEL_METRIC_TYPE_EXPONENTIAL_HISTOGRAM
	case pmetric.MetricTypeSummary:
		return cloudv1.OTelMetricType_OTEL_METRIC_TYPE_SUMMARY
	}
	return cloudv1.OTelMetricType_OTEL_METRIC_TYPE_UNSPECIFIED
}

// build materialises one series with at most k points: the most recent point always, the
// rest spread evenly over the range.
func (r *queryRun) build(h *hit, k int) *cloudv1.OTelMetric {
	s := r.s
	sr := s.slot(h.id)
	f, c := &s.families[sr.fam], &s.ctxs[sr.ctx]
	wlName, wlKind := r.workloadOf(h, c)
	m := &cloudv1.OTelMetric{
		Name:          s.syms.str(f.key.name),
		Description:   f.description,
		Unit:          f.unit,
		Type:          metricType(f.key.typ),
		Namespace:     s.syms.str(c.key.namespace),
		WorkloadName:  wlName,
		WorkloadKind:  wlKind,
		PodName:       s.syms.str(c.key.pod),
		ContainerName: s.syms.str(c.key.container),
		NodeName:      s.syms.str(c.key.node),
		ScopeName:     f.scopeName,
		ScopeVersion:  f.scopeVer,
	}
	if pairs := s.labelSets[sr.labels].pairs; len(pairs) > 0 {
		m.Labels = make(map[string]string, len(pairs)/2)
		for i := 0; i < len(pairs); i += 2 {
			m.Labels[s.syms.str(pairs[i])] = s.syms.str(pairs[i+1])
		}
	}
	n := h.n()
	k = min(k, n)
	// pick(j) for j = k-1 ... 0 walks the chosen sample indexes upwards to h.hi.
	pick := func(j int) int {
		if k == 1 {
			return h.hi
		}
		return h.hi - j*(n-1)/(k-1)
	}
	points := make([]cloudv1.OTelMetricDataPoint, k)
	stamps := make([]timestamppb.Timestamp, 2*k)
	m.DataPoints = make([]*cloudv1.OTelMetricDataPoint, k)
	kind := f.key.typ
	r.it = iterate(sr.chunk, r.it)
	if sr.aux != nil {
		r.dec.reset(sr.aux.buf, kind)
	}
	j := k - 1
	for i := 0; j >= 0 && r.it.Next() != chunkenc.ValNone; i++ {
		var a *auxPoint
		if sr.aux != nil {
			a = r.dec.next()
		}
		if i != pick(j) {
			continue
		}
		p := &points[k-1-j]
		t, v := r.it.At()
		p.Timestamp = setStamp(&stamps[2*(k-1-j)], t)
		if st := r.it.AtST(); st != 0 {
			p.StartTimestamp = setStamp(&stamps[2*(k-1-j)+1], st)
		}
		fillPoint(p, v, a, kind)
		m.DataPoints[k-1-j] = p
		j--
	}
	return m
}

func setStamp(ts *timestamppb.Timestamp, ms int64) *timestamppb.Timestamp {
	ts.Seconds, ts.Nanos = splitMillis(ms)
	return ts
}

func fillPoint(p *cloudv1.OTelMetricDataPoint, v float64, a *auxPoint, kind pmetric.MetricType) {
	if a == nil {
		p.Value = v
		return
	}
	p.Count = a.count
	if a.flags&flagSum != 0 {
		p.Sum = v
	}
	if a.flags&flagMin != 0 {
		p.Min = a.min
	}
	if a.flags&flagMax != 0 {
		p.Max = a.max
	}
	switch kind {
	case pmetric.MetricTypeHistogram:
		p.BucketBounds = slices.Clone(a.bounds)
		p.BucketCounts = slices.Clone(a.counts)
	case pmetric.MetricTypeExponentialHistogram:
		p.ExponentialHistogram = &cloudv1.ExponentialHistogramData{
			Scale:         a.scale,
			ZeroCount:     a.zeroCount,
			ZeroThreshold: a.zeroThreshold,
			Positive:      &cloudv1.ExponentialHistogramBuckets{Offset: a.posOffset, BucketCounts: slices.Clone(a.counts)},
			Negative:      &cloudv1.ExponentialHistogramBuckets{Offset: a.negOffset, BucketCounts: slices.Clone(a.neg)},
		}
	case pmetric.MetricTypeSummary:
		qs := make([]*cloudv1.QuantileValue, min(len(a.bounds), len(a.values)))
		for i := range qs {
			qs[i] = &cloudv1.QuantileValue{Quantile: a.bounds[i], Value: a.values[i]}
		}
		p.Summary = &cloudv1.SummaryData{QuantileValues: qs}
	}
}
