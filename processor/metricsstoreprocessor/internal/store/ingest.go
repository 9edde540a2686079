package store

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/workload"
)

// Kubernetes context attribute keys. Resource attributes use the semantic-convention keys;
// point attributes may also use the short Prometheus-style labels.
const (
	attrNamespace = "k8s.namespace.name"
	attrPod       = "k8s.pod.name"
	attrContainer = "k8s.container.name"
	attrNode      = "k8s.node.name"
)

// workloadAttrs are the k8s.<kind>.name keys of workload.Kinds, in its precedence order: the
// first present sets the kind.
var workloadAttrs = func() []string {
	keys := make([]string, len(workload.Kinds))
	for i, k := range workload.Kinds {
		keys[i] = "k8s." + strings.ToLower(k) + ".name"
	}
	return keys
}()

type kv struct{ k, v string }

// set stores the Kubernetes context attribute k in c and reports whether k is one. bestKind
// is the index in workloadAttrs of the key c.workload came from (len(workloadAttrs) if none).
func (c *rawContext) set(k string, v pcommon.Value, bestKind *int) bool {
	switch k {
	case attrNamespace:
		c.namespace = v.AsString()
	case attrPod:
		c.pod = v.AsString()
	case attrContainer:
		c.container = v.AsString()
	case attrNode:
		c.node = v.AsString()
	default:
		i := slices.Index(workloadAttrs, k)
		if i < 0 {
			return false
		}
		if name := v.AsString(); name != "" && i < *bestKind {
			*bestKind = i
			c.workload = podowner.Ref{Kind: workload.Kinds[i], Name: name}
		}
	}
	return true
}

// batch is the per-Ingest state; it lives in the Store to reuse its buffers.
type batch struct {
	s      *Store
	counts Counts
	minT   int64 // points older than this are outside the retention window
	write  uint32

	// Current resource.
	resCtx    rawContext
	resLabels []kv
	resIDs    struct {
		ok          bool
		ctx, labels uint32
	}

	kvs     []kv
	ids     []uint32
	key     []byte
	aux     auxPoint
	refused map[seriesKey]struct{}

	// Entries created in this batch; those no series ended up using are freed in finish.
	newCtxs, newLabels, newFamilies []uint32
}

func (b *batch) reset(s *Store, now time.Time) {
	b.s = s
	b.counts = Counts{}
	b.minT = now.Add(-s.cfg.Retention).UnixMilli()
	b.write = s.tick(now)
	clear(b.refused)
	b.newCtxs, b.newLabels, b.newFamilies = b.newCtxs[:0], b.newLabels[:0], b.newFamilies[:0]
}

func (b *batch) setResource(attrs pcommon.Map) {
	b.resCtx = rawContext{}
	b.resLabels = b.resLabels[:0]
	b.resIDs.ok = false
	bestKind := len(workloadAttrs)
	attrs.Range(func(k string, v pcommon.Value) bool {
		if !b.resCtx.set(k, v, &bestKind) {
			if _, ok := b.s.resourceLabels[k]; ok {
				b.resLabels = append(b.resLabels, kv{k, v.AsString()})
			}
		}
		return true
	})
	sortLabels(&b.resLabels)
}

// sortLabels sorts by key and keeps the first of duplicate keys, so callers put the labels
// that must win first.
func sortLabels(kvs *[]kv) {
	slices.SortStableFunc(*kvs, func(a, b kv) int { return cmp.Compare(a.k, b.k) })
	*kvs = slices.CompactFunc(*kvs, func(a, b kv) bool { return a.k == b.k })
}

// identity returns the interned context and label set of a point with attributes attrs.
func (b *batch) identity(attrs pcommon.Map) (ctx, labels uint32) {
	s := b.s
	if attrs.Len() == 0 {
		if !b.resIDs.ok {
			b.resIDs.ctx = s.contextID(&b.resCtx, b)
			b.resIDs.labels = s.labelSetID(b.resLabels, b)
			b.resIDs.ok = true
		}
		return b.resIDs.ctx, b.resIDs.labels
	}
	var pc rawContext
	var short rawContext
	bestKind := len(workloadAttrs)
	b.kvs = b.kvs[:0]
	attrs.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "namespace":
			short.namespace = v.AsString()
		case "pod":
			short.pod = v.AsString()
		case "container":
			short.container = v.AsString()
		case "node":
			short.node = v.AsString()
		default:
			if !pc.set(k, v, &bestKind) {
				b.kvs = append(b.kvs, kv{k, v.AsString()})
			}
		}
		return true
	})
	pc.namespace = cmp.Or(pc.namespace, short.namespace)
	pc.pod = cmp.Or(pc.pod, short.pod)
	pc.container = cmp.Or(pc.container, short.container)
	pc.node = cmp.Or(pc.node, short.node)
	if pc.namespace == "" && pc.pod == "" {
		// The point refines the resource's context (e.g. per-container points of a pod
		// resource). A point naming its own namespace or pod describes another object (e.g.
		// kube-state-metrics series) and takes none of the resource's context.
		rc := b.resCtx
		rc.container = cmp.Or(pc.container, rc.container)
		rc.node = cmp.Or(pc.node, rc.node)
		if pc.workload.Name != "" {
			rc.workload = pc.workload
		}
		pc = rc
	}
	b.kvs = append(b.kvs, b.resLabels...)
	sortLabels(&b.kvs)
	return s.contextID(&pc, b), s.labelSetID(b.kvs, b)
}

func (b *batch) metric(m pmetric.Metric, scope pcommon.InstrumentationScope) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		b.numbers(m, scope, m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		b.numbers(m, scope, m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		if dps.Len() == 0 {
			return
		}
		fam := b.s.familyID(m, scope, b)
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if b.skipNoValue(dp.Flags()) {
				continue
			}
			a := &b.aux
			a.reset()
			a.flags = histFlags(dp.HasMin(), dp.HasMax(), dp.HasSum())
			a.count, a.min, a.max = dp.Count(), dp.Min(), dp.Max()
			a.bounds = append(a.bounds, dp.ExplicitBounds().AsRaw()...)
			a.counts = append(a.counts, dp.BucketCounts().AsRaw()...)
			b.point(fam, m.Type(), dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), dp.Sum(), a)
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		if dps.Len() == 0 {
			return
		}
		fam := b.s.familyID(m, scope, b)
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if b.skipNoValue(dp.Flags()) {
				continue
			}
			a := &b.aux
			a.reset()
			a.flags = histFlags(dp.HasMin(), dp.HasMax(), dp.HasSum())
			a.count, a.min, a.max = dp.Count(), dp.Min(), dp.Max()
			a.scale, a.zeroCount, a.zeroThreshold = dp.Scale(), dp.ZeroCount(), dp.ZeroThreshold()
			a.posOffset, a.negOffset = dp.Positive().Offset(), dp.Negative().Offset()
			a.counts = append(a.counts, dp.Positive().BucketCounts().AsRaw()...)
			a.neg = append(a.neg, dp.Negative().BucketCounts().AsRaw()...)
			b.point(fam, m.Type(), dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), dp.Sum(), a)
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		if dps.Len() == 0 {
			return
		}
		fam := b.s.familyID(m, scope, b)
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if b.skipNoValue(dp.Flags()) {
				continue
			}
			a := &b.aux
			a.reset()
			a.flags = flagSum
			a.count = dp.Count()
			qs := dp.QuantileValues()
			for j := 0; j < qs.Len(); j++ {
				a.bounds = append(a.bounds, qs.At(j).Quantile())
				a.values = append(a.values, qs.At(j).Value())
			}
			b.point(fam, m.Type(), dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), dp.Sum(), a)
		}
	}
}

func (b *batch) numbers(m pmetric.Metric, scope pcommon.InstrumentationScope, dps pmetric.NumberDataPointSlice) {
	if dps.Len() == 0 {
		return
	}
	fam := b.s.familyID(m, scope, b)
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		if b.skipNoValue(dp.Flags()) {
			continue
		}
		v := dp.DoubleValue()
		if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
			v = float64(dp.IntValue())
		}
		b.point(fam, m.Type(), dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), v, nil)
	}
}

// skipNoValue drops points flagged "no recorded value" (the OTLP staleness marker): they
// carry no sample, and the cloud sees the gap instead.
func (b *batch) skipNoValue(f pmetric.DataPointFlags) bool {
	if f.NoRecordedValue() {
		b.counts.PointsDropped[DropNoRecordedValue]++
		return true
	}
	return false
}

func histFlags(hasMin, hasMax, hasSum bool) uint8 {
	var f uint8
	if hasMin {
		f |= flagMin
	}
	if hasMax {
		f |= flagMax
	}
	if hasSum {
		f |= flagSum
	}
	return f
}

// toMillis converts an OTLP timestamp to the store's millisecond resolution.
func toMillis(ts pcommon.Timestamp) int64 {
	return int64(uint64(ts) / uint64(time.Millisecond))
}

func (b *batch) point(fam uint32, typ pmetric.MetricType, attrs pcommon.Map, start, ts pcommon.Timestamp, v float64, a *auxPoint) {
	s := b.s
	t := toMillis(ts)
	if t < b.minT {
		b.counts.PointsDropped[DropTooOld]++
		return
	}
	ctx, labels := b.identity(attrs)
	key := seriesKey{fam, ctx, labels}
	id, ok := s.findSeries(key)
	if !ok {
		if s.live >= s.cfg.MaxSeries {
			b.refuse(key)
			return
		}
		id = s.createSeries(key, typ)
	}
	sr := s.slot(id)
	switch {
	case t == sr.maxT:
		b.counts.PointsDropped[DropDuplicate]++
		return
	case t < sr.maxT:
		b.counts.PointsDropped[DropOutOfOrder]++
		return
	}
	b.counts.PointsEvicted[EvictRing] += int64(s.appendSample(sr, b.write, toMillis(start), t, v, a))
	b.counts.PointsStored++
}

func (b *batch) refuse(key seriesKey) {
	b.counts.PointsDropped[DropSeriesRefused]++
	if b.refused == nil {
		b.refused = map[seriesKey]struct{}{}
	}
	if _, seen := b.refused[key]; !seen {
		b.refused[key] = struct{}{}
		b.counts.SeriesRefused++
	}
}

func (s *Store) createSeries(key seriesKey, typ pmetric.MetricType) uint32 {
	id := s.allocSeries()
	sr := s.slot(id)
	sr.fam, sr.ctx, sr.labels = key.fam, key.ctx, key.labels
	sr.maxT = math.MinInt64
	if typ != pmetric.MetricTypeGauge && typ != pmetric.MetricTypeSum {
		sr.aux = &auxStream{kind: typ}
	}
	sr.chunk = emptyChunk(0)
	s.bytes += seriesBytes(sr)
	s.insertSeries(id)
	c := &s.ctxs[key.ctx]
	c.series = append(c.series, id)
	s.labelSets[key.labels].refs++
	s.families[key.fam].refs++
	s.live++
	return id
}

// finish frees the interned entries this batch created but no series used (refused series).
func (b *batch) finish() {
	s := b.s
	for _, id := range b.newCtxs {
		if c := &s.ctxs[id]; c.live && len(c.series) == 0 {
			s.deleteContext(id)
		}
	}
	for _, id := range b.newLabels {
		if ls := &s.labelSets[id]; ls.live && ls.refs == 0 {
			s.deleteLabelSet(id)
		}
	}
	for _, id := range b.newFamilies {
		if f := &s.families[id]; f.live && f.refs == 0 {
			s.deleteFamily(id)
		}
	}
}
