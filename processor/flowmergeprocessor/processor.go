package flowmergeprocessor // import "github.com/kestrelai/otelcol-kestrel/processor/flowmergeprocessor"

import (
	"context"
	"encoding/binary"
	"math"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.uber.org/zap"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// maxUnion bounds a label or policy list that merging unites. The hubble receiver already
// unites them per node, so lists of one key rarely differ; the bound keeps a hostile sender
// from making every merge quadratic.
const maxUnion = 256

// endpointKeys are the attributes of one end of a flow.
type endpointKeys struct {
	namespace, pod, kind, name, address, identity, labels string
}

var (
	srcKeys = endpointKeys{
		namespace: schema.AttrSourceNamespace, pod: schema.AttrSourcePod,
		kind: schema.AttrSourceWorkloadKind, name: schema.AttrSourceWorkloadName,
		address: schema.AttrSourceAddress, identity: schema.AttrCiliumSourceIdentity,
		labels: schema.AttrCiliumSourceLabels,
	}
	dstKeys = endpointKeys{
		namespace: schema.AttrDestNamespace, pod: schema.AttrDestPod,
		kind: schema.AttrDestWorkloadKind, name: schema.AttrDestWorkloadName,
		address: schema.AttrDestinationAddress, identity: schema.AttrCiliumDestIdentity,
		labels: schema.AttrCiliumDestLabels,
	}
	// flowKeys are the attributes of the hubble receiver's aggregation key besides the
	// endpoints.
	flowKeys = []string{
		schema.AttrNetworkTransport, schema.AttrDestinationPort, schema.AttrCiliumVerdict,
		schema.AttrCiliumDropReason, schema.AttrCiliumTrafficDirection,
	}
	// unitedKeys are the lists that are united over the window, as the hubble receiver does.
	unitedKeys = []string{
		schema.AttrCiliumSourceLabels, schema.AttrCiliumDestLabels,
		schema.AttrCiliumIngressAllowedBy, schema.AttrCiliumEgressAllowedBy,
		schema.AttrCiliumIngressDeniedBy, schema.AttrCiliumEgressDeniedBy,
	}
)

// aggregate is the merge of the records of one key: the first record (its addresses,
// identities, severity) with the lists united, and the summed span.
type aggregate struct {
	scope string
	lr    plog.LogRecord
	span  flowagg.Span
}

type flowMerge struct {
	logger *zap.Logger
	cfg    *Config
	next   consumer.Logs

	mu  sync.Mutex
	cur map[string]*aggregate

	stop       chan struct{}
	done       chan struct{}
	cancel     context.CancelFunc
	unregister func() // from flowgraph.Register
}

func newProcessor(logger *zap.Logger, cfg *Config, next consumer.Logs) *flowMerge {
	return &flowMerge{logger: logger, cfg: cfg, next: next, cur: map[string]*aggregate{}}
}

func (p *flowMerge) start(context.Context, component.Host) error {
	p.unregister = flowgraph.Register()
	if p.cfg.Window == 0 {
		return nil // nothing is held, so there are no windows to emit
	}
	ctx, cancel := context.WithCancel(context.Background()) // kept in p.cancel, which shutdown calls
	p.stop, p.done, p.cancel = make(chan struct{}), make(chan struct{}), cancel
	go p.run(ctx)
	return nil
}

// run emits the window at every multiple of the window on the wall clock.
func (p *flowMerge) run(ctx context.Context) {
	defer close(p.done)
	for {
		t := time.NewTimer(time.Until(nextBoundary(time.Now(), p.cfg.Window)))
		select {
		case <-p.stop:
			t.Stop()
			return
		case <-t.C:
		}
		p.emit(ctx, p.swap())
	}
}

// nextBoundary is the end of the wall-clock window that now is in: the next multiple of window
// since the zero time, which for windows that divide a minute is a multiple of the window
// within the minute.
func nextBoundary(now time.Time, window time.Duration) time.Time {
	return now.Truncate(window).Add(window)
}

// shutdown stops the window loop, waiting for an emit it is running unless ctx ends first,
// and emits what is left with ctx, so a clean shutdown loses nothing.
func (p *flowMerge) shutdown(ctx context.Context) error {
	if p.stop != nil {
		close(p.stop)
		release := context.AfterFunc(ctx, p.cancel)
		<-p.done
		release()
		p.cancel()
		p.stop = nil
	}
	p.emit(ctx, p.swap())
	if p.unregister != nil {
		p.unregister()
	}
	return nil
}

func (p *flowMerge) swap() map[string]*aggregate {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.cur
	p.cur = make(map[string]*aggregate, len(m))
	return m
}

// processLogs takes the flow aggregates out of ld into the window and passes the rest on;
// with window 0 it passes everything on and only records the aggregates in the flow graph.
func (p *flowMerge) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	if p.cfg.Window == 0 {
		observeAll(ld)
		return ld, nil
	}
	var full []map[string]*aggregate
	var buf []byte
	p.mu.Lock()
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			scope := sl.Scope().Name()
			sl.LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				if lr.EventName() != schema.EventNetworkFlow {
					return false
				}
				span, ok := spanOf(lr)
				if !ok {
					return false // invalid: the exporter reports it
				}
				buf = appendKey(buf[:0], scope, lr.Attributes())
				a, ok := p.cur[string(buf)]
				if ok {
					if span.Count > math.MaxInt64-a.span.Count {
						return false // passed on unmerged rather than overflowing
					}
					a.merge(lr, span)
					return true
				}
				if len(p.cur) >= p.cfg.MaxEntries {
					full = append(full, p.cur)
					p.cur = make(map[string]*aggregate, len(p.cur))
				}
				// The record leaves ld (RemoveIf drops it): the window takes it over, not a copy.
				a = &aggregate{scope: scope, lr: plog.NewLogRecord(), span: span}
				lr.MoveTo(a.lr)
				p.cur[string(buf)] = a
				return true
			})
			return sl.LogRecords().Len() == 0
		})
		return rl.ScopeLogs().Len() == 0
	})
	p.mu.Unlock()
	for _, m := range full {
		p.emit(ctx, m)
	}
	if ld.ResourceLogs().Len() == 0 {
		return ld, processorhelper.ErrSkipProcessingData
	}
	return ld, nil
}

// spanOf reads the count and the event-time range of an aggregate record (internal/schema:
// the Timestamp is the first event, an absent count is 1, an absent last_seen the Timestamp).
func spanOf(lr plog.LogRecord) (flowagg.Span, bool) {
	attrs := lr.Attributes()
	s := flowagg.Span{Count: 1, First: int64(min(uint64(lr.Timestamp()), math.MaxInt64))}
	s.Last = s.First
	if v, ok := attrs.Get(schema.AttrAggregateCount); ok {
		if v.Type() != pcommon.ValueTypeInt || v.Int() < 1 {
			return s, false
		}
		s.Count = v.Int()
	}
	if v, ok := attrs.Get(schema.AttrAggregateLastSeen); ok {
		if v.Type() != pcommon.ValueTypeStr {
			return s, false
		}
		t, err := time.Parse(time.RFC3339Nano, v.Str())
		if err != nil || t.UnixNano() < s.First {
			return s, false
		}
		s.Last = t.UnixNano()
	}
	return s, true
}

// appendKey appends the hubble receiver's aggregation key of a record: the scope, the L4 and
// verdict attributes, and for each end its workload or pod, else (an endpoint outside
// Kubernetes) its first label and address, else its identity and address.
func appendKey(b []byte, scope string, attrs pcommon.Map) []byte {
	b = appendStr(b, scope)
	for _, k := range flowKeys {
		b = appendAttr(b, attrs, k)
	}
	for _, e := range [...]*endpointKeys{&srcKeys, &dstKeys} {
		b = appendAttr(b, attrs, e.namespace)
		b = appendAttr(b, attrs, e.pod)
		b = appendAttr(b, attrs, e.kind)
		b = appendAttr(b, attrs, e.name)
		if _, ok := attrs.Get(e.pod); ok {
			continue
		}
		if _, ok := attrs.Get(e.name); ok {
			continue
		}
		b = appendAttr(b, attrs, e.address)
		if l, ok := attrs.Get(e.labels); ok && l.Type() == pcommon.ValueTypeSlice && l.Slice().Len() > 0 {
			b = append(b, 2)
			b = appendStr(b, l.Slice().At(0).AsString())
		} else {
			b = appendAttr(b, attrs, e.identity)
		}
	}
	return b
}

// appendAttr appends an attribute unambiguously: absent, or its type and value.
func appendAttr(b []byte, attrs pcommon.Map, key string) []byte {
	v, ok := attrs.Get(key)
	if !ok {
		return append(b, 0)
	}
	b = append(b, 1)
	b = appendStr(b, v.Type().String())
	return appendStr(b, v.AsString())
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// merge adds a record of the same key.
func (a *aggregate) merge(lr plog.LogRecord, s flowagg.Span) {
	a.span.Count += s.Count
	a.span.First = min(a.span.First, s.First)
	a.span.Last = max(a.span.Last, s.Last)
	dst, src := a.lr.Attributes(), lr.Attributes()
	for _, k := range unitedKeys {
		unite(dst, src, k)
	}
}

// unite appends to dst's list key the elements of src's that it does not hold yet.
func unite(dst, src pcommon.Map, key string) {
	sv, ok := src.Get(key)
	if !ok || sv.Type() != pcommon.ValueTypeSlice {
		return
	}
	dv, ok := dst.Get(key)
	if !ok {
		sv.CopyTo(dst.PutEmpty(key))
		return
	}
	if dv.Type() != pcommon.ValueTypeSlice {
		return
	}
	ds, ss := dv.Slice(), sv.Slice()
next:
	for i := 0; i < ss.Len() && ds.Len() < maxUnion; i++ {
		e := ss.At(i)
		for j := range ds.Len() {
			if ds.At(j).Equal(e) {
				continue next
			}
		}
		e.CopyTo(ds.AppendEmpty())
	}
}

// emit sends a window's aggregates on in plog.Logs of at most flowagg.EmitChunk records,
// each with its summed count and event-time range.
func (p *flowMerge) emit(ctx context.Context, aggs map[string]*aggregate) {
	for len(aggs) > 0 {
		n := min(len(aggs), flowagg.EmitChunk)
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		scopes := map[string]plog.LogRecordSlice{}
		i := 0
		for k, a := range aggs {
			if i == n {
				break
			}
			i++
			lrs, ok := scopes[a.scope]
			if !ok {
				sl := rl.ScopeLogs().AppendEmpty()
				sl.Scope().SetName(a.scope)
				lrs = sl.LogRecords()
				scopes[a.scope] = lrs
			}
			observe(a.lr, a.span)
			lr := lrs.AppendEmpty()
			a.lr.MoveTo(lr)
			a.span.Put(lr)
			delete(aggs, k)
		}
		if err := p.next.ConsumeLogs(ctx, ld); err != nil {
			p.logger.Warn("Merged flow aggregates were refused by the pipeline", zap.Int("records", n), zap.Error(err))
		}
	}
}

// observeAll records the valid flow aggregates of ld, unmerged, in the flow graph.
func observeAll(ld plog.Logs) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if lr.EventName() != schema.EventNetworkFlow {
					continue
				}
				if span, ok := spanOf(lr); ok {
					observe(lr, span)
				}
			}
		}
	}
}

// observe hands an aggregate of allowed traffic (merged, or with window 0 as it came) and its
// span to internal/flowgraph, where k8s_risk looks for attack chains that only observed
// traffic shows: on the collector the agents send to there is no hubble receiver to do it.
// The edge is the one the hubble receiver would record.
func observe(lr plog.LogRecord, span flowagg.Span) {
	attrs := lr.Attributes()
	if strAttr(attrs, schema.AttrCiliumVerdict) != "FORWARDED" {
		return
	}
	flowgraph.Observe(flowgraph.Edge{
		Src: peerOf(attrs, &srcKeys), Dst: peerOf(attrs, &dstKeys),
		Port: uint32Attr(attrs, schema.AttrDestinationPort), Protocol: strAttr(attrs, schema.AttrNetworkTransport),
	}, span.Count, time.Unix(0, span.First), time.Unix(0, span.Last))
}

func peerOf(attrs pcommon.Map, k *endpointKeys) flowgraph.Peer {
	ns := strAttr(attrs, k.namespace)
	if name := strAttr(attrs, k.name); name != "" {
		return flowgraph.Peer{Namespace: ns, Kind: strAttr(attrs, k.kind), Name: name}
	}
	if pod := strAttr(attrs, k.pod); pod != "" {
		return flowgraph.Peer{Namespace: ns, Kind: "Pod", Name: pod}
	}
	identity := uint32Attr(attrs, k.identity)
	labels, ok := attrs.Get(k.labels)
	return flowgraph.Peer{Namespace: ns, Reserved: flowgraph.ReservedOf(identity, func(l string) bool {
		if !ok || labels.Type() != pcommon.ValueTypeSlice {
			return false
		}
		s := labels.Slice()
		for i := range s.Len() {
			if s.At(i).Type() == pcommon.ValueTypeStr && s.At(i).Str() == "reserved:"+l {
				return true
			}
		}
		return false
	})}
}

func strAttr(attrs pcommon.Map, key string) string {
	if v, ok := attrs.Get(key); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// uint32Attr is an int attribute that fits in a uint32 (ports, identities), else 0.
func uint32Attr(attrs pcommon.Map, key string) uint32 {
	if v, ok := attrs.Get(key); ok && v.Type() == pcommon.ValueTypeInt && v.Int() >= 0 && v.Int() <= math.MaxUint32 {
		return uint32(v.Int()) //nolint:gosec // in range: checked above
	}
	return 0
}
