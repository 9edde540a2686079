// Package logmap is the one mapping from pdata log records to cloud.v1 payloads. A table keyed
// by the record's event name picks the mapper; a record the table does not know, or one that
// lacks what its payload needs, is counted per reason and dropped, never sent half-filled.
package logmap

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// Reason says why a record was dropped. The values are stable: they are metric attribute values.
type Reason string

const (
	// ReasonUnknownEvent: no mapper for the record's event name.
	ReasonUnknownEvent Reason = "unknown_event_name"
	// ReasonMissingAttribute: a required attribute is absent or empty.
	ReasonMissingAttribute Reason = "missing_attribute"
	// ReasonInvalidAttribute: an attribute has the wrong type or an unparseable value.
	ReasonInvalidAttribute Reason = "invalid_attribute"
)

// PodLogs messages are capped so that one busy pod in a large batch cannot produce a message
// beyond the gRPC message limit (10 MiB); the old operator sent 100-line batches.
const (
	maxPodLogEntries = 1000
	maxPodLogBytes   = 1 << 20
)

// Item is one payload to send, in the order the records appeared.
type Item struct {
	// Payload is the inner cloud.v1 message, e.g. *cloudv1.KubernetesEvent or *cloudv1.PodLogs.
	Payload proto.Message
	// EventName is the event name whose mapper built Payload ("" for application logs).
	EventName string
	// Records is the number of log records that went into Payload.
	Records int
}

// Drop counts the records dropped for one event name and reason.
type Drop struct {
	EventName string
	Reason    Reason
	Count     int
	// Detail names the offending attribute of the first such record ("" for unknown events).
	Detail string
}

// Result is what Map produced from one plog.Logs.
type Result struct {
	Items []Item
	Drops []Drop
	// owner holds, per record in traversal order, the index of the Item it went into, or -1
	// when it was dropped. It lets Unsent rebuild the records behind any suffix of Items.
	owner []int
}

// Unsent returns the records of ld that went into Items[from:], with their resource and
// scope. Dropped records are never part of it, so a retry neither resends nor recounts
// them. ld must be the plog.Logs that Map produced r from.
func (r *Result) Unsent(ld plog.Logs, from int) plog.Logs {
	from = max(from, 0)
	return Filter(ld, func(i int, _ plog.LogRecord) bool { return r.owner[i] >= from })
}

// Filter returns the records of ld for which keep is true, with their resource and scope.
// keep gets the record's index in traversal order and may be called twice per record. ld
// is only read; it is returned itself when every record is kept, so that the common case
// copies nothing.
func Filter(ld plog.Logs, keep func(i int, lr plog.LogRecord) bool) plog.Logs {
	n, kept := 0, 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k, n = k+1, n+1 {
				if keep(n, lrs.At(k)) {
					kept++
				}
			}
		}
	}
	switch kept {
	case n:
		return ld
	case 0:
		return plog.NewLogs()
	}
	out := plog.NewLogs()
	idx := 0
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		var orl plog.ResourceLogs
		haveRL := false
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			var osl plog.ScopeLogs
			haveSL := false
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k, idx = k+1, idx+1 {
				if !keep(idx, lrs.At(k)) {
					continue
				}
				if !haveRL {
					orl = out.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(orl.Resource())
					orl.SetSchemaUrl(rl.SchemaUrl())
					haveRL = true
				}
				if !haveSL {
					osl = orl.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(osl.Scope())
					osl.SetSchemaUrl(sl.SchemaUrl())
					haveSL = true
				}
				lrs.At(k).CopyTo(osl.LogRecords().AppendEmpty())
			}
		}
	}
	return out
}

// mapFunc maps one record. It returns the index of the Item the record went into, or a drop
// reason and the offending attribute.
type mapFunc func(b *batch, r *record) (item int, reason Reason, detail string)

// table is the one place that says which event name becomes which cloud.v1 message.
var table = map[string]mapFunc{
	schema.EventK8sEvent:                     (*batch).k8sEvent,
	schema.EventNetworkFlow:                  (*batch).flow,
	schema.EventL7AccessLog:                  (*batch).l7AccessLog,
	schema.EventInventoryWorkload:            (*batch).workload,
	schema.EventInventoryPod:                 inventory(schema.EventInventoryPod, schema.PodFields, func(m *cloudv1.Pod, a cloudv1.Action) { m.Action = a }),
	schema.EventInventoryNamespace:           inventory(schema.EventInventoryNamespace, schema.NamespaceFields, func(m *cloudv1.Namespace, a cloudv1.Action) { m.Action = a }),
	schema.EventInventoryNode:                inventory(schema.EventInventoryNode, schema.NodeFields, func(m *cloudv1.Node, a cloudv1.Action) { m.Action = a }),
	schema.EventInventoryService:             inventory(schema.EventInventoryService, schema.ServiceFields, func(m *cloudv1.Service, a cloudv1.Action) { m.Action = a }),
	schema.EventInventoryNetworkPolicy:       (*batch).networkPolicy,
	schema.EventInventoryAuthorizationPolicy: (*batch).authorizationPolicy,
	schema.EventInventorySnapshotStart:       (*batch).snapshotStart,
	schema.EventInventorySnapshotComplete:    (*batch).snapshotComplete,
	schema.EventPodStatusChange:              (*batch).podStatusChange,
	schema.EventNodeConditionChange:          (*batch).nodeConditionChange,
	schema.EventWorkloadRolloutStatus:        (*batch).workloadRolloutStatus,
	schema.EventRiskFinding:                  (*batch).riskFinding,
	schema.EventRiskAssessment:               (*batch).riskAssessment,
	"":                                       (*batch).podLog,
}

// Known reports whether Map has a mapper for eventName.
func Known(eventName string) bool {
	_, ok := table[eventName]
	return ok
}

// Mapper maps plog.Logs to cloud.v1 payloads. It is safe for concurrent use.
type Mapper struct {
	now func() time.Time
}

// NewMapper returns a Mapper whose clock (PodLogs.collection_timestamp) is now, or
// time.Now when now is nil.
func NewMapper(now func() time.Time) *Mapper {
	if now == nil {
		now = time.Now
	}
	return &Mapper{now: now}
}

// Map maps every record of ld. ld is only read.
func (m *Mapper) Map(ld plog.Logs) Result {
	b := batch{
		now:   m.now,
		total: ld.LogRecordCount(),
	}
	b.res.owner = make([]int, 0, b.total)
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		rec := record{res: rl.Resource().Attributes()}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				rec.lr = lrs.At(k)
				rec.attrs = rec.lr.Attributes()
				b.res.owner = append(b.res.owner, b.one(&rec))
			}
		}
	}
	return b.res
}

// record is one log record plus its resource attributes. A reader of one map of a list
// attribute reads a record whose attrs are that map, with no resource attributes and no lr.
type record struct {
	res   pcommon.Map
	attrs pcommon.Map // lr's attributes
	lr    plog.LogRecord
}

// attr looks a key up on the record first, then on the resource.
func (r *record) attr(key string) (pcommon.Value, bool) {
	if v, ok := r.attrs.Get(key); ok {
		return v, true
	}
	return r.res.Get(key)
}

// noAttrs is the resource of the maps of list attributes.
var noAttrs = pcommon.NewMap()

// batch is the state of one Map call.
type batch struct {
	now   func() time.Time
	total int
	res   Result
	// noRecordTime leaves the time a record was seen unset (Fingerprint).
	noRecordTime bool

	collected *timestamppb.Timestamp // PodLogs.collection_timestamp, shared by the batch
	groups    map[podKey]group
	dropIdx   map[dropKey]int

	// Slabs for the per-line messages, so that lines do not cost two allocations each. A
	// full slab is replaced, never grown: growing would move messages that are already
	// referenced.
	entries []cloudv1.LogEntry
	stamps  []timestamppb.Timestamp

	rd     reader // see batch.reader
	elemRd elemReader
}

// firstSlab is the size of a batch's first slab, so that a few log lines in a large batch
// of other records cost little.
const firstSlab = 64

// next returns a new zero element of *slab, starting a new slab when it is full. Each new
// slab is twice the size of the last, but no larger than the records left in the batch
// (len(b.res.owner) is the index of the record being mapped).
func next[T any](b *batch, slab *[]T) *T {
	s := *slab
	if len(s) == cap(s) {
		s = make([]T, 0, min(max(firstSlab, 2*cap(s)), b.total-len(b.res.owner)))
	}
	s = s[:len(s)+1]
	*slab = s
	return &s[len(s)-1]
}

type podKey struct {
	namespace, pod, uid, container, node string
}

// group is the open PodLogs of one pod/container.
type group struct {
	logs  *cloudv1.PodLogs
	item  int
	bytes int
}

type dropKey struct {
	eventName string
	reason    Reason
}

func (b *batch) one(r *record) int {
	name := r.lr.EventName()
	// contrib's k8s_events receiver sets no event name; its records are recognised by the
	// event UID it always sets.
	if name == "" {
		if _, ok := r.lr.Attributes().Get(schema.AttrK8sEventUID); ok {
			name = schema.EventK8sEvent
		}
	}
	fn, ok := table[name]
	if !ok {
		b.drop(name, ReasonUnknownEvent, "")
		return -1
	}
	item, reason, detail := fn(b, r)
	if reason != "" {
		b.drop(name, reason, detail)
		return -1
	}
	return item
}

func (b *batch) drop(name string, reason Reason, detail string) {
	key := dropKey{eventName: name, reason: reason}
	if i, ok := b.dropIdx[key]; ok {
		b.res.Drops[i].Count++
		return
	}
	if b.dropIdx == nil {
		b.dropIdx = make(map[dropKey]int)
	}
	b.dropIdx[key] = len(b.res.Drops)
	b.res.Drops = append(b.res.Drops, Drop{EventName: name, Reason: reason, Count: 1, Detail: detail})
}

// emit adds the payload built from one record, unless reading the record failed.
func (b *batch) emit(rd *reader, eventName string, payload proto.Message) (int, Reason, string) {
	if rd.reason != "" {
		return -1, rd.reason, rd.detail
	}
	return b.add(eventName, payload, 1), "", ""
}

func (b *batch) add(eventName string, payload proto.Message, records int) int {
	b.res.Items = append(b.res.Items, Item{Payload: payload, EventName: eventName, Records: records})
	return len(b.res.Items) - 1
}

func (b *batch) k8sEvent(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	uid := rd.Required(schema.AttrK8sEventUID)
	reason := rd.Required(schema.AttrK8sEventReason)
	kind := rd.Required(schema.AttrK8sObjectKind)
	objName := rd.Required(schema.AttrK8sObjectName)
	name := rd.Str(schema.AttrK8sEventName)
	namespace := rd.Str(schema.AttrK8sNamespaceName)
	objUID := rd.Str(schema.AttrK8sObjectUID)
	apiVersion := rd.Str(schema.AttrK8sObjectAPIVersion)
	resourceVersion := rd.Str(schema.AttrK8sObjectResourceVersion)
	fieldPath := rd.Str(schema.AttrK8sObjectFieldPath)
	component := rd.Str(schema.AttrK8sEventSourceComponent)
	host := rd.Str(schema.AttrK8sNodeName)
	eventType := rd.Str(schema.AttrK8sEventType)
	if eventType == "" {
		eventType = validUTF8(r.lr.SeverityText())
	}
	action := rd.action()
	count := rd.count(schema.AttrK8sEventCount)
	first := rd.Time(schema.AttrK8sEventStartTime)
	last := rd.Time(schema.AttrK8sEventLastTime)
	if last == nil {
		last = newTimestamp(r.lr.Timestamp())
	}
	return b.emit(&rd, schema.EventK8sEvent, &cloudv1.KubernetesEvent{
		Name:      name,
		Namespace: namespace,
		Uid:       uid,
		EventType: eventType,
		Reason:    reason,
		Message:   validUTF8(r.lr.Body().AsString()),
		InvolvedObject: &cloudv1.ObjectReference{
			Kind:            kind,
			Namespace:       namespace,
			Name:            objName,
			Uid:             objUID,
			ApiVersion:      apiVersion,
			ResourceVersion: resourceVersion,
			FieldPath:       fieldPath,
		},
		Source:         &cloudv1.EventSource{Component: component, Host: host},
		FirstTimestamp: first,
		LastTimestamp:  last,
		Count:          count,
		Action:         action,
	})
}

func (b *batch) podLog(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	key := podKey{
		pod:       rd.Required(schema.AttrK8sPodName),
		namespace: rd.Required(schema.AttrK8sNamespaceName),
		uid:       rd.Str(schema.AttrK8sPodUID),
		container: rd.Str(schema.AttrK8sContainerName),
		node:      rd.Str(schema.AttrK8sNodeName),
	}
	line := rd.int(schema.AttrLogFileRecordNumber)
	errType := rd.Str(schema.AttrExceptionType)
	errMessage := rd.Str(schema.AttrExceptionMessage)
	stack := rd.Str(schema.AttrExceptionStacktrace)
	if rd.reason != "" {
		return -1, rd.reason, rd.detail
	}

	e := next(b, &b.entries)
	e.Timestamp = b.entryTime(r.lr)
	e.Message = validUTF8(r.lr.Body().AsString())
	e.Level = level(r.lr)
	e.LineNumber = line
	if errType != "" || errMessage != "" || stack != "" {
		e.ErrorInfo = &cloudv1.LogErrorInfo{ErrorType: errType, ErrorMessage: errMessage, StackTrace: stack}
	}
	size := len(e.Message) + len(errType) + len(errMessage) + len(stack)

	g, ok := b.groups[key]
	if !ok || len(g.logs.LogEntries) >= maxPodLogEntries || g.bytes+size > maxPodLogBytes {
		g = group{logs: &cloudv1.PodLogs{
			PodName:             key.pod,
			Namespace:           key.namespace,
			PodUid:              key.uid,
			ContainerName:       key.container,
			NodeName:            key.node,
			CollectionTimestamp: b.collection(),
		}}
		g.item = b.add("", g.logs, 0)
		if b.groups == nil {
			b.groups = make(map[podKey]group)
		}
	}
	g.logs.LogEntries = append(g.logs.LogEntries, e)
	g.logs.TotalLines = int64(len(g.logs.LogEntries))
	g.bytes += size
	b.groups[key] = g
	b.res.Items[g.item].Records++
	return g.item, "", ""
}

// entryTime is the record time, else its observed time, else the collection time.
func (b *batch) entryTime(lr plog.LogRecord) *timestamppb.Timestamp {
	t := lr.Timestamp()
	if t == 0 {
		t = lr.ObservedTimestamp()
	}
	if t == 0 {
		return b.collection()
	}
	ts := next(b, &b.stamps)
	ts.Seconds, ts.Nanos = split(t)
	return ts
}

func (b *batch) collection() *timestamppb.Timestamp {
	if b.collected == nil {
		b.collected = timestamppb.New(b.now())
	}
	return b.collected
}

// level maps the severity to the levels the cloud knows; SeverityText is the fallback for
// records without a SeverityNumber. Unknown severities give "".
func level(lr plog.LogRecord) string {
	switch n := lr.SeverityNumber(); {
	case n >= plog.SeverityNumberTrace && n <= plog.SeverityNumberDebug4:
		return "DEBUG"
	case n >= plog.SeverityNumberInfo && n <= plog.SeverityNumberInfo4:
		return "INFO"
	case n >= plog.SeverityNumberWarn && n <= plog.SeverityNumberWarn4:
		return "WARN"
	case n >= plog.SeverityNumberError && n <= plog.SeverityNumberError4:
		return "ERROR"
	case n >= plog.SeverityNumberFatal && n <= plog.SeverityNumberFatal4:
		return "FATAL"
	}
	text := lr.SeverityText()
	for _, l := range textLevels {
		if strings.EqualFold(text, l.text) {
			return l.level
		}
	}
	return ""
}

var textLevels = []struct{ text, level string }{
	{"trace", "DEBUG"}, {"debug", "DEBUG"},
	{"info", "INFO"}, {"notice", "INFO"},
	{"warn", "WARN"}, {"warning", "WARN"},
	{"error", "ERROR"}, {"err", "ERROR"},
	{"fatal", "FATAL"}, {"critical", "FATAL"}, {"crit", "FATAL"}, {"panic", "FATAL"},
	{"alert", "FATAL"}, {"emerg", "FATAL"}, {"emergency", "FATAL"},
}

// reader reads a record's attributes and keeps the first problem it meets, so that a mapper
// reads everything first and builds its payload only when the record is complete. It is
// the schema.Reader of the inventory tables.
type reader struct {
	rec *record
	// In the reader of one map of a list attribute, list is the attribute, which problems
	// name, and parent the reader of the record (or of the map) that holds it, to which
	// problems go up. maps is the list attribute that Maps found.
	list   string
	maps   pcommon.Slice
	parent *reader
	spare  *elemReader // reused for the maps of list attributes
	reason Reason
	detail string
}

// elemReader reads one map of a list attribute.
type elemReader struct {
	reader
	rec record
}

var _ schema.Reader = (*reader)(nil)

// reader returns the batch's reader, set to read r; the inventory mappers use it because
// reading through schema.Reader would move a reader of their own to the heap.
func (b *batch) reader(r *record) *reader {
	b.rd = reader{rec: r, spare: &b.elemRd}
	return &b.rd
}

func (rd *reader) fail(reason Reason, key string) {
	for rd.parent != nil {
		rd, key = rd.parent, rd.list
	}
	if rd.reason == "" {
		rd.reason, rd.detail = reason, key
	}
}

// Str returns a string attribute, "" when absent.
func (rd *reader) Str(key string) string {
	v, ok := rd.rec.attr(key)
	if !ok {
		return ""
	}
	if v.Type() != pcommon.ValueTypeStr {
		rd.fail(ReasonInvalidAttribute, key)
		return ""
	}
	return validUTF8(v.Str())
}

// Required returns a string attribute and reports it missing when absent or empty.
func (rd *reader) Required(key string) string {
	s := rd.Str(key)
	if s == "" {
		rd.fail(ReasonMissingAttribute, key)
	}
	return s
}

// uintValue returns v when it is a non-negative int. Every count, size, port and number the
// mappers read goes through it: attribute values come from untrusted OTLP senders, and a
// negative one is invalid rather than wrapped into a huge unsigned value (a byte count of
// 2^64-1).
func uintValue(v pcommon.Value) (uint64, bool) {
	n := v.Int() // 0 for other types
	if v.Type() != pcommon.ValueTypeInt || n < 0 {
		return 0, false
	}
	return uint64(n), true
}

// uint returns a non-negative int attribute, 0 when absent; anything else fails key.
func (rd *reader) uint(key string) uint64 {
	v, ok := rd.rec.attr(key)
	if !ok {
		return 0
	}
	u, ok := uintValue(v)
	if !ok {
		rd.fail(ReasonInvalidAttribute, key)
	}
	return u
}

// int returns a non-negative int attribute as an int64 (rd.uint), 0 when absent.
func (rd *reader) int(key string) int64 {
	return int64(min(rd.uint(key), math.MaxInt64)) // no-op: the value was an int64
}

// uint32 returns a non-negative int attribute (rd.uint) as a uint32, saturating rather than
// wrapping.
func (rd *reader) uint32(key string) uint32 {
	return uint32(min(rd.uint(key), math.MaxUint32))
}

// count returns a non-negative int attribute (rd.uint) as an int32 count, saturating rather
// than wrapping.
func (rd *reader) count(key string) int32 {
	return int32(min(rd.uint(key), math.MaxInt32))
}

func (rd *reader) action() cloudv1.Action {
	switch rd.Str(schema.AttrAction) {
	case "", schema.ActionCreate:
		return cloudv1.Action_ACTION_CREATE
	case schema.ActionUpdate:
		return cloudv1.Action_ACTION_UPDATE
	case schema.ActionDelete:
		return cloudv1.Action_ACTION_DELETE
	default:
		rd.fail(ReasonInvalidAttribute, schema.AttrAction)
		return cloudv1.Action_ACTION_UNSPECIFIED
	}
}

// goTimeLayout is time.Time.String()'s layout, which contrib's k8s_events receiver writes.
const goTimeLayout = "2006-01-02 15:04:05.999999999 -0700 MST"

// Time parses a timestamp attribute (RFC 3339, or Go's time.Time.String() layout). Absent and
// zero times give nil: the protocol leaves unset Kubernetes times unset.
func (rd *reader) Time(key string) *timestamppb.Timestamp {
	s := rd.Str(key)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.Parse(goTimeLayout, s)
	}
	if err != nil {
		rd.fail(ReasonInvalidAttribute, key)
		return nil
	}
	if t.IsZero() {
		return nil
	}
	ts := timestamppb.New(t)
	if ts.CheckValid() != nil {
		rd.fail(ReasonInvalidAttribute, key)
		return nil
	}
	return ts
}

func newTimestamp(t pcommon.Timestamp) *timestamppb.Timestamp {
	if t == 0 {
		return nil
	}
	ts := &timestamppb.Timestamp{}
	ts.Seconds, ts.Nanos = split(t)
	return ts
}

// split converts Unix nanoseconds; every uint64 value is within Timestamp's valid range.
func split(t pcommon.Timestamp) (int64, int32) {
	return int64(t / 1e9), int32(t % 1e9) //nolint:gosec // t/1e9 < 2^64/1e9 ≈ 1.8e10 seconds, far inside int64
}

// validUTF8 keeps proto marshalling from failing on the invalid UTF-8 that application logs
// can carry (proto3 strings must be valid UTF-8); valid strings are returned as they are.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
