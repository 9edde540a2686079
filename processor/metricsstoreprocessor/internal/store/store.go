// Package store is the in-memory, compressed rolling window behind the metrics_store processor.
//
// Layout: series live in 1024-slot slabs and are found through an open-addressing index by an
// (interned family, interned Kubernetes context, interned label set) key. Samples are
// Prometheus XOR2 chunks (timestamp, start timestamp, value); histograms and summaries keep
// their sum in the chunk and the rest in a small delta-encoded side stream. Queries find
// candidates through per-context indexes (namespace, pod, workload). Slabs are not returned
// to the heap when series go away; freed slots are reused.
package store // import "github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/internal/store"

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/workload"
)

// Config bounds the store. All limits must be positive (the processor's Config validates them).
type Config struct {
	Retention        time.Duration
	MaxSeries        int
	RingSize         int
	MaxBytes         int64
	MaxResponseBytes int
	// ResourceLabels are the resource attribute keys that become series labels. Other resource
	// attributes (apart from the Kubernetes context) are not part of a series' identity.
	ResourceLabels []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Reasons, in the order of the arrays in Counts; the strings are the telemetry attribute values.
const (
	DropOutOfOrder = iota
	DropDuplicate
	DropTooOld
	DropNoRecordedValue
	DropSeriesRefused
	numDropReasons
)

const (
	EvictRing = iota
	EvictRetention
	EvictMaxBytes
	numEvictReasons
)

var (
	DropReasons  = [numDropReasons]string{"out_of_order", "duplicate", "too_old", "no_recorded_value", "series_refused"}
	EvictReasons = [numEvictReasons]string{"ring", "retention", "max_bytes"}
)

// Counts is what one Ingest or Evict call did, for the processor's telemetry.
type Counts struct {
	PointsStored  int64
	PointsDropped [numDropReasons]int64
	PointsEvicted [numEvictReasons]int64
	SeriesEvicted [numEvictReasons]int64
	// SeriesRefused counts distinct new series refused because max_series was reached.
	SeriesRefused int64
}

const (
	slabBits = 10
	slabSize = 1 << slabBits
	// seriesOverhead approximates the heap cost of a series besides its slab slot and index
	// bucket (both accounted when allocated) and its chunk bytes: the context posting.
	seriesOverhead = 8
	// lowWaterPercent is where a max_bytes eviction stops, so that evictions come in batches
	// rather than on every write once the budget is reached.
	lowWaterPercent = 90
)

type seriesKey struct{ fam, ctx, labels uint32 }

type slab [slabSize]series

// Store is safe for concurrent use: ingest and eviction take the write lock, queries the read lock.
type Store struct {
	cfg            Config
	slack          int // samples a chunk may hold beyond RingSize before it is re-encoded
	now            func() time.Time
	epoch          time.Time
	resourceLabels map[string]struct{}

	mu       sync.RWMutex
	resolver podowner.Resolver
	syms     symbols

	ctxs        []k8sContext
	ctxIDs      map[contextKey]uint32
	freeCtxs    []uint32
	byNamespace map[uint32][]uint32
	byPod       map[uint32][]uint32
	byWorkload  map[uint32][]uint32

	labelSets  []labelSet
	labelIDs   map[string]uint32
	freeLabels []uint32

	families     []family
	familyIDs    map[familyKey]uint32
	freeFamilies []uint32

	slabs      []*slab
	nextSeries uint32
	freeSeries []uint32
	index      seriesIndex
	live       int
	bytes      int64

	// Scratch state used under the write lock.
	iter       chunkenc.Iterator
	auxDec     auxDecoder
	auxScratch []byte
	scratch    batch
}

// New returns an empty store.
func New(cfg Config) *Store {
	s := &Store{
		cfg:            cfg,
		slack:          max(1, cfg.RingSize/4),
		now:            cfg.Now,
		resourceLabels: map[string]struct{}{},
		syms:           newSymbols(),
		ctxs:           make([]k8sContext, 1), // ID 0 is never used, so 0 can mean "none"
		ctxIDs:         map[contextKey]uint32{},
		byNamespace:    map[uint32][]uint32{},
		byPod:          map[uint32][]uint32{},
		byWorkload:     map[uint32][]uint32{},
		labelSets:      make([]labelSet, 1),
		labelIDs:       map[string]uint32{},
		families:       make([]family, 1),
		familyIDs:      map[familyKey]uint32{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.epoch = s.now()
	for _, k := range cfg.ResourceLabels {
		s.resourceLabels[k] = struct{}{}
	}
	return s
}

// Stats returns the number of series and the estimated bytes in use.
func (s *Store) Stats() (series int, bytes int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live, s.bytes
}

// SetResolver replaces the exact owner source and re-resolves the workload of every context.
func (s *Store) SetResolver(r podowner.Resolver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resolver = r
	for id := range s.ctxs {
		c := &s.ctxs[id]
		if !c.live {
			continue
		}
		s.unindexWorkload(uint32(id))
		s.resolveWorkload(uint32(id))
	}
}

func (s *Store) slot(id uint32) *series { return &s.slabs[id>>slabBits][id&(slabSize-1)] }

// tick is the write clock used for least-recently-written eviction, in whole seconds.
func (s *Store) tick(now time.Time) uint32 {
	d := now.Sub(s.epoch) / time.Second
	return uint32(min(max(d, 0), windowedBit-1))
}

// Ingest stores every data point of md. It never modifies md.
func (s *Store) Ingest(md pmetric.Metrics) Counts {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.scratch
	b.reset(s, now)
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		b.setResource(rm.Resource().Attributes())
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				b.metric(ms.At(k), sm.Scope())
			}
		}
	}
	b.finish()
	if s.bytes > s.cfg.MaxBytes {
		s.enforceBudget(now, &b.counts)
	}
	return b.counts
}

// Evict removes points older than the retention window and series left without points.
func (s *Store) Evict() Counts {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var c Counts
	s.evictExpired(now, &c)
	return c
}

func (s *Store) evictExpired(now time.Time, c *Counts) {
	minT := now.Add(-s.cfg.Retention).UnixMilli()
	for id := uint32(0); id < s.nextSeries; id++ {
		sr := s.slot(id)
		if sr.fam == 0 {
			continue
		}
		if sr.maxT < minT {
			s.deleteSeries(id, EvictRetention, c)
			continue
		}
		s.iter = iterate(sr.chunk, s.iter)
		if s.iter.Next() != chunkenc.ValNone && s.iter.AtT() < minT {
			c.PointsEvicted[EvictRetention] += int64(s.rewrite(sr, 0, minT, 0, nil))
		}
	}
}

// enforceBudget evicts expired data and then the least recently written series until the
// estimate is back under the low-water mark.
func (s *Store) enforceBudget(now time.Time, c *Counts) {
	s.evictExpired(now, c)
	low := s.cfg.MaxBytes / 100 * lowWaterPercent
	if s.bytes <= low {
		return
	}
	type cand struct{ write, id uint32 }
	cands := make([]cand, 0, s.live)
	for id := uint32(0); id < s.nextSeries; id++ {
		if sr := s.slot(id); sr.fam != 0 {
			cands = append(cands, cand{sr.tick(), id})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(cmp.Compare(a.write, b.write), cmp.Compare(a.id, b.id))
	})
	for _, cd := range cands {
		if s.bytes <= low {
			return
		}
		s.deleteSeries(cd.id, EvictMaxBytes, c)
	}
}

// deleteSeries frees a series and whatever interned entries only it used.
func (s *Store) deleteSeries(id uint32, reason int, c *Counts) {
	sr := s.slot(id)
	c.PointsEvicted[reason] += int64(numSamples(sr.chunk))
	c.SeriesEvicted[reason]++
	s.bytes -= seriesBytes(sr)
	s.removeSeries(id)
	ctx := &s.ctxs[sr.ctx]
	if i := slices.Index(ctx.series, id); i >= 0 {
		last := len(ctx.series) - 1
		ctx.series[i] = ctx.series[last]
		ctx.series = ctx.series[:last]
	}
	if len(ctx.series) == 0 {
		s.deleteContext(sr.ctx)
	}
	s.labelSets[sr.labels].refs--
	if s.labelSets[sr.labels].refs == 0 {
		s.deleteLabelSet(sr.labels)
	}
	s.families[sr.fam].refs--
	if s.families[sr.fam].refs == 0 {
		s.deleteFamily(sr.fam)
	}
	*sr = series{}
	s.freeSeries = append(s.freeSeries, id)
	s.live--
}

func (s *Store) allocSeries() uint32 {
	if n := len(s.freeSeries); n > 0 {
		id := s.freeSeries[n-1]
		s.freeSeries = s.freeSeries[:n-1]
		return id
	}
	id := s.nextSeries
	if int(id>>slabBits) == len(s.slabs) {
		s.slabs = append(s.slabs, new(slab))
		s.bytes += int64(slabSize) * int64(sizeofSeries)
	}
	s.nextSeries++
	return id
}

// --- interned tables ---

func (s *Store) contextID(raw *rawContext, b *batch) uint32 {
	var key contextKey
	found := true
	lookup := func(str string) uint32 {
		id, ok := s.syms.lookup(str)
		found = found && ok
		return id
	}
	key.namespace = lookup(raw.namespace)
	key.pod = lookup(raw.pod)
	key.container = lookup(raw.container)
	key.node = lookup(raw.node)
	key.rawName = lookup(raw.workload.Name)
	key.rawKind = kindIndex(raw.workload.Kind)
	if found {
		if id, ok := s.ctxIDs[key]; ok {
			return id
		}
	}
	ref := func(str string) uint32 {
		id, n := s.syms.ref(str)
		s.bytes += n
		return id
	}
	key.namespace = ref(raw.namespace)
	key.pod = ref(raw.pod)
	key.container = ref(raw.container)
	key.node = ref(raw.node)
	key.rawName = ref(raw.workload.Name)
	var id uint32
	if n := len(s.freeCtxs); n > 0 {
		id = s.freeCtxs[n-1]
		s.freeCtxs = s.freeCtxs[:n-1]
	} else {
		id = uint32(len(s.ctxs))
		s.ctxs = append(s.ctxs, k8sContext{})
	}
	s.ctxs[id] = k8sContext{key: key, live: true}
	s.ctxIDs[key] = id
	s.byNamespace[key.namespace] = append(s.byNamespace[key.namespace], id)
	if key.pod != 0 {
		s.byPod[key.pod] = append(s.byPod[key.pod], id)
	}
	s.resolveWorkload(id)
	s.bytes += contextOverhead
	b.newCtxs = append(b.newCtxs, id)
	return id
}

func (s *Store) resolveWorkload(id uint32) {
	c := &s.ctxs[id]
	explicit := podowner.Ref{Kind: kindName(c.key.rawKind), Name: s.syms.str(c.key.rawName)}
	ref := workload.Resolve(s.resolver, s.syms.str(c.key.namespace), s.syms.str(c.key.pod), explicit)
	kind := kindIndex(ref.Kind)
	if kind == 0 || ref.Name == "" {
		return // a resolver answer outside the supported kinds is treated as unknown
	}
	name, n := s.syms.ref(ref.Name)
	s.bytes += n
	c.workloadName, c.workloadKind = name, kind
	s.byWorkload[name] = append(s.byWorkload[name], id)
}

func (s *Store) unindexWorkload(id uint32) {
	c := &s.ctxs[id]
	if c.workloadName == 0 {
		return
	}
	removeFromIndex(s.byWorkload, c.workloadName, id)
	s.bytes -= s.syms.unref(c.workloadName)
	c.workloadName, c.workloadKind = 0, 0
}

func removeFromIndex(idx map[uint32][]uint32, key, id uint32) {
	list := idx[key]
	if i := slices.Index(list, id); i >= 0 {
		list[i] = list[len(list)-1]
		list = list[:len(list)-1]
	}
	if len(list) == 0 {
		delete(idx, key)
		return
	}
	idx[key] = list
}

func (s *Store) deleteContext(id uint32) {
	c := &s.ctxs[id]
	s.unindexWorkload(id)
	removeFromIndex(s.byNamespace, c.key.namespace, id)
	if c.key.pod != 0 {
		removeFromIndex(s.byPod, c.key.pod, id)
	}
	delete(s.ctxIDs, c.key)
	for _, sym := range [...]uint32{c.key.namespace, c.key.pod, c.key.container, c.key.node, c.key.rawName} {
		s.bytes -= s.syms.unref(sym)
	}
	s.bytes -= contextOverhead
	*c = k8sContext{}
	s.freeCtxs = append(s.freeCtxs, id)
}

func (s *Store) labelSetID(kvs []kv, b *batch) uint32 {
	ids := b.ids[:0]
	found := true
	for _, p := range kvs {
		k, ok1 := s.syms.lookup(p.k)
		v, ok2 := s.syms.lookup(p.v)
		found = found && ok1 && ok2
		ids = append(ids, k, v)
	}
	b.ids = ids
	if found {
		b.key = appendLabelKey(b.key[:0], ids)
		if id, ok := s.labelIDs[string(b.key)]; ok {
			return id
		}
	}
	pairs := make([]uint32, 0, 2*len(kvs))
	for _, p := range kvs {
		k, nk := s.syms.ref(p.k)
		v, nv := s.syms.ref(p.v)
		s.bytes += nk + nv
		pairs = append(pairs, k, v)
	}
	key := string(appendLabelKey(nil, pairs))
	var id uint32
	if n := len(s.freeLabels); n > 0 {
		id = s.freeLabels[n-1]
		s.freeLabels = s.freeLabels[:n-1]
	} else {
		id = uint32(len(s.labelSets))
		s.labelSets = append(s.labelSets, labelSet{})
	}
	s.labelSets[id] = labelSet{pairs: pairs, key: key, live: true}
	s.labelIDs[key] = id
	s.bytes += labelSetOverhead + int64(8*len(pairs))
	b.newLabels = append(b.newLabels, id)
	return id
}

func (s *Store) deleteLabelSet(id uint32) {
	ls := &s.labelSets[id]
	for _, sym := range ls.pairs {
		s.bytes -= s.syms.unref(sym)
	}
	delete(s.labelIDs, ls.key)
	s.bytes -= labelSetOverhead + int64(8*len(ls.pairs))
	*ls = labelSet{}
	s.freeLabels = append(s.freeLabels, id)
}

func (s *Store) familyID(m pmetric.Metric, scope pcommon.InstrumentationScope, b *batch) uint32 {
	name, ok := s.syms.lookup(m.Name())
	key := familyKey{name: name, typ: m.Type()}
	id, exists := s.familyIDs[key]
	if !ok || !exists {
		var n int64
		key.name, n = s.syms.ref(m.Name())
		s.bytes += n + familyOverhead
		if k := len(s.freeFamilies); k > 0 {
			id = s.freeFamilies[k-1]
			s.freeFamilies = s.freeFamilies[:k-1]
		} else {
			id = uint32(len(s.families))
			s.families = append(s.families, family{})
		}
		s.families[id] = family{key: key, live: true}
		s.familyIDs[key] = id
		b.newFamilies = append(b.newFamilies, id)
	}
	f := &s.families[id]
	// Descriptive fields follow the newest data; only changed strings are copied.
	setStr(&f.description, m.Description(), &s.bytes)
	setStr(&f.unit, m.Unit(), &s.bytes)
	setStr(&f.scopeName, scope.Name(), &s.bytes)
	setStr(&f.scopeVer, scope.Version(), &s.bytes)
	return id
}

func setStr(dst *string, src string, bytes *int64) {
	if src = validUTF8(src); *dst != src {
		*bytes += int64(len(src) - len(*dst))
		*dst = strings.Clone(src)
	}
}

func (s *Store) deleteFamily(id uint32) {
	f := &s.families[id]
	delete(s.familyIDs, f.key)
	s.bytes -= s.syms.unref(f.key.name)
	s.bytes -= familyOverhead + int64(len(f.description)+len(f.unit)+len(f.scopeName)+len(f.scopeVer))
	*f = family{}
	s.freeFamilies = append(s.freeFamilies, id)
}
