package kestrelexporter // import "github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter"

import (
	"bytes"
	"cmp"
	"container/list"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/inventorysources"
	"github.com/kestrelai/otelcol-kestrel/internal/logmap"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// The mirror is the exporter's copy of the inventory: the latest state of every object
// (as its marshalled cloud.v1 message) that inventory records described. Inventory
// records never enter the exporterhelper queue; ConsumeLogs applies them to the mirror
// in the order the pipeline delivers them, and one sender goroutine sends the changed
// objects, in the order they first changed, while the connection is Ready. So:
//   - an object's states can never be reordered, whatever num_consumers and retries do;
//   - repeated changes of one object while it waits are coalesced; memory is bounded by
//     the size of the cluster, not the length of an outage;
//   - after every (re)connect the connection replays the whole mirror as its snapshot
//     (cloudconn.SnapshotFunc) and then sends InventoryCommit: no apiserver List needed;
//   - an InventoryCommit that a receiver asks for while Ready goes out after every
//     object change absorbed before it, through the same sender.

// kind identifies the cloud.v1 message type of an entry, in snapshot order.
type kind uint8

const (
	kindNamespace kind = iota
	kindNode
	kindWorkload
	kindPod
	kindService
	kindNetworkPolicy
	kindAuthorizationPolicy
	numKinds
)

// kindEvents are the event names of the records each kind comes from.
var kindEvents = [numKinds]string{
	schema.EventInventoryNamespace, schema.EventInventoryNode, schema.EventInventoryWorkload, schema.EventInventoryPod,
	schema.EventInventoryService, schema.EventInventoryNetworkPolicy, schema.EventInventoryAuthorizationPolicy,
}

type mirrorKey struct {
	kind kind
	uid  string
}

type entry struct {
	key     mirrorKey
	seq     uint64 // creation order, which replays keep within a kind
	data    []byte // the message, action unset, deterministically marshalled
	action  cloudv1.Action
	deleted bool          // a DELETE waits to be sent; the entry goes once it is
	epoch   uint64        // snapshot epoch of the last record about the object
	dirty   *list.Element // place in the send order; nil when there is nothing to send
}

// identify returns the mirror key of an inventory message.
func identify(m proto.Message) (mirrorKey, bool) {
	switch p := m.(type) {
	case *cloudv1.Namespace:
		return mirrorKey{kindNamespace, p.GetUid()}, true
	case *cloudv1.Node:
		return mirrorKey{kindNode, p.GetUid()}, true
	case *cloudv1.Workload:
		return mirrorKey{kindWorkload, p.GetUid()}, true
	case *cloudv1.Pod:
		return mirrorKey{kindPod, p.GetUid()}, true
	case *cloudv1.Service:
		return mirrorKey{kindService, p.GetUid()}, true
	case *cloudv1.NetworkPolicy:
		return mirrorKey{kindNetworkPolicy, p.GetMetadata().GetUid()}, true
	case *cloudv1.AuthorizationPolicy:
		return mirrorKey{kindAuthorizationPolicy, p.GetMetadata().GetUid()}, true
	}
	return mirrorKey{}, false
}

func getAction(m proto.Message) cloudv1.Action {
	return m.(interface{ GetAction() cloudv1.Action }).GetAction()
}

func setAction(m proto.Message, a cloudv1.Action) {
	switch p := m.(type) {
	case *cloudv1.Namespace:
		p.Action = a
	case *cloudv1.Node:
		p.Action = a
	case *cloudv1.Workload:
		p.Action = a
	case *cloudv1.Pod:
		p.Action = a
	case *cloudv1.Service:
		p.Action = a
	case *cloudv1.NetworkPolicy:
		p.Action = a
	case *cloudv1.AuthorizationPolicy:
		p.Action = a
	}
}

func newMessage(k kind) proto.Message {
	switch k {
	case kindNamespace:
		return &cloudv1.Namespace{}
	case kindNode:
		return &cloudv1.Node{}
	case kindWorkload:
		return &cloudv1.Workload{}
	case kindPod:
		return &cloudv1.Pod{}
	case kindService:
		return &cloudv1.Service{}
	case kindNetworkPolicy:
		return &cloudv1.NetworkPolicy{}
	default:
		return &cloudv1.AuthorizationPolicy{}
	}
}

// message rebuilds the entry's message with the given action.
func (e *entry) message(a cloudv1.Action) (proto.Message, error) {
	m := newMessage(e.key.kind)
	if err := proto.Unmarshal(e.data, m); err != nil {
		return nil, err
	}
	setAction(m, a)
	return m, nil
}

var marshalOpts = proto.MarshalOptions{Deterministic: true}

type mirror struct {
	logger          *zap.Logger
	telemetry       *metadata.TelemetryBuilder
	dropped         func(ctx context.Context, eventName, reason string, n int)
	snapshotTimeout time.Duration

	// sendMu serialises the sender with snapshot replays, so that no delta can be
	// written between the replay of an object and the commit that follows it.
	sendMu sync.Mutex

	mu      sync.Mutex
	entries map[mirrorKey]*entry
	order   *list.List // of *entry, in the order their pending change first happened
	seq     uint64
	epoch   uint64
	// sweepFrom is the epoch of the snapshot in progress (0: none): entries no record of
	// the snapshot mentions are deleted when it completes.
	sweepFrom uint64
	flags     *cloudv1.InventoryCommit // from the latest snapshot_complete; nil before the first
	primed    chan struct{}            // closed by the first snapshot_complete
	announced chan struct{}            // closed by the first snapshot_start: a source is coming
	// committed: the current session's InventoryCommit carried sessionFlags, after a
	// replay of a primed mirror (sessionPrimed) or not.
	committed     bool
	sessionFlags  *cloudv1.InventoryCommit
	sessionPrimed bool
	// resync asks the sender to send every object and an InventoryCommit, because the
	// cloud's committed view is incomplete (committed before the first snapshot) or its
	// integration flags changed.
	resync bool

	wake chan struct{}
}

func newMirror(logger *zap.Logger, tb *metadata.TelemetryBuilder, snapshotTimeout time.Duration, dropped func(context.Context, string, string, int)) *mirror {
	return &mirror{
		logger:          logger,
		telemetry:       tb,
		dropped:         dropped,
		snapshotTimeout: snapshotTimeout,
		entries:         map[mirrorKey]*entry{},
		order:           list.New(),
		primed:          make(chan struct{}),
		announced:       make(chan struct{}),
		wake:            make(chan struct{}, 1),
	}
}

// split separates inventory records from the rest. It returns ld itself for the side that
// has everything, so the common case of a batch without inventory copies nothing.
func split(ld plog.Logs) (inventory, rest plog.Logs) {
	n, inv := 0, 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				n++
				if logmap.IsInventory(lrs.At(k).EventName()) {
					inv++
				}
			}
		}
	}
	switch inv {
	case 0:
		return plog.NewLogs(), ld
	case n:
		return ld, plog.NewLogs()
	}
	inventory, rest = plog.NewLogs(), plog.NewLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		var dst [2]plog.ResourceLogs
		var have [2]bool
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			var dsl [2]plog.ScopeLogs
			var haveSL [2]bool
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				side := 1
				if logmap.IsInventory(lrs.At(k).EventName()) {
					side = 0
				}
				if !have[side] {
					out := inventory
					if side == 1 {
						out = rest
					}
					dst[side] = out.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(dst[side].Resource())
					dst[side].SetSchemaUrl(rl.SchemaUrl())
					have[side] = true
				}
				if !haveSL[side] {
					dsl[side] = dst[side].ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(dsl[side].Scope())
					dsl[side].SetSchemaUrl(sl.SchemaUrl())
					haveSL[side] = true
				}
				lrs.At(k).CopyTo(dsl[side].LogRecords().AppendEmpty())
			}
		}
	}
	return inventory, rest
}

// absorb applies the inventory records of ld to the mirror and returns the other records.
func (m *mirror) absorb(ctx context.Context, mapper *logmap.Mapper, ld plog.Logs) plog.Logs {
	inv, rest := split(ld)
	if inv.LogRecordCount() == 0 {
		return rest
	}
	res := mapper.Map(inv)
	for _, d := range res.Drops {
		m.dropped(ctx, d.EventName, string(d.Reason), d.Count)
		m.logger.Debug("Dropped inventory records that map to no cloud.v1 message",
			zap.String("event_name", d.EventName), zap.String("reason", string(d.Reason)),
			zap.String("attribute", d.Detail), zap.Int("records", d.Count))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	res.Each(inv, func(lr plog.LogRecord, it *logmap.Item) {
		switch {
		case lr.EventName() == schema.EventInventorySnapshotStart:
			m.epoch++
			m.sweepFrom = m.epoch
			closeOnce(m.announced)
		case it == nil:
		case lr.EventName() == schema.EventInventorySnapshotComplete:
			m.commitLocked(it.Payload.(*cloudv1.InventoryCommit))
		default:
			m.applyLocked(ctx, it)
		}
	})
	m.recordSizeLocked(ctx)
	return rest
}

func (m *mirror) recordSizeLocked(ctx context.Context) {
	m.telemetry.KestrelExporterInventoryObjects.Record(ctx, int64(len(m.entries)))
}

func (m *mirror) applyLocked(ctx context.Context, it *logmap.Item) {
	key, ok := identify(it.Payload)
	if !ok {
		return
	}
	action := getAction(it.Payload)
	setAction(it.Payload, cloudv1.Action_ACTION_UNSPECIFIED)
	data, err := marshalOpts.Marshal(it.Payload)
	if err != nil {
		m.dropped(ctx, it.EventName, reasonRejected, it.Records)
		m.logger.Debug("Dropped an inventory record whose message cannot be marshalled", zap.String("event_name", it.EventName), zap.Error(err))
		return
	}
	e := m.entries[key]
	if action == cloudv1.Action_ACTION_DELETE {
		if e == nil || e.deleted {
			return
		}
		e.data, e.action, e.deleted = data, action, true
		m.markLocked(e)
		return
	}
	if e != nil && !e.deleted && bytes.Equal(e.data, data) {
		e.epoch = m.epoch // unchanged: nothing to send, but the snapshot saw it
		return
	}
	if e == nil {
		m.seq++
		e = &entry{key: key, seq: m.seq}
		m.entries[key] = e
	}
	e.data, e.action, e.deleted, e.epoch = data, action, false, m.epoch
	m.markLocked(e)
}

// markLocked queues the entry's current state for sending, keeping its place if it
// already waits (its newest state goes out then).
func (m *mirror) markLocked(e *entry) {
	if e.dirty == nil {
		e.dirty = m.order.PushBack(e)
	}
	m.signal()
}

func (m *mirror) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *mirror) commitLocked(c *cloudv1.InventoryCommit) {
	if m.sweepFrom != 0 {
		for _, e := range m.entries {
			if !e.deleted && e.epoch < m.sweepFrom {
				e.action, e.deleted = cloudv1.Action_ACTION_DELETE, true
				m.markLocked(e)
			}
		}
		m.sweepFrom = 0
	}
	m.flags = c
	closeOnce(m.primed)
	if m.committed && (!m.sessionPrimed || !proto.Equal(c, m.sessionFlags)) {
		m.resync = true
		m.signal()
	}
}

// stateChanged follows the connection: a new session starts uncommitted, Ready lets the
// sender run.
func (m *mirror) stateChanged(st cloudconn.State) {
	if st == cloudconn.Disconnected {
		m.mu.Lock()
		m.committed = false
		m.mu.Unlock()
	}
	if st == cloudconn.Ready {
		m.signal()
	}
}

// snapshot is the mirror's cloudconn.SnapshotFunc. Until the first snapshot is complete
// it waits, so that the cloud does not commit an empty inventory while the receivers are
// still listing: for as long as it takes once a source announced itself (snapshot_start;
// a receiver on standby under leader election announces itself too, so a standby replica
// never commits an empty inventory), else for at most snapshotTimeout. A collector with no
// inventory source at all commits at once.
func (m *mirror) snapshot(ctx context.Context, send func(proto.Message) error) (*cloudv1.InventoryCommit, error) {
	sourceExpected := m.snapshotTimeout > 0 && inventorysources.Running() > 0
	if !isClosed(m.primed) && (sourceExpected || isClosed(m.announced)) {
		var timeout <-chan time.Time
		if m.snapshotTimeout > 0 {
			timer := time.NewTimer(m.snapshotTimeout)
			defer timer.Stop()
			timeout = timer.C
		}
		announced := m.announced
		if isClosed(announced) {
			timeout, announced = nil, nil
		}
	wait:
		for {
			select {
			case <-m.primed:
				break wait
			case <-announced:
				m.logger.Info("Waiting for the first inventory snapshot before committing")
				timeout, announced = nil, nil
			case <-timeout:
				m.logger.Warn("No inventory source and no snapshot yet; committing what there is (see initial_snapshot_timeout)",
					zap.Duration("initial_snapshot_timeout", m.snapshotTimeout))
				break wait
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	m.sendMu.Lock()
	defer m.sendMu.Unlock()
	m.mu.Lock()
	var byKind [numKinds][]*entry
	for k, e := range m.entries {
		e.dirty = nil
		if e.deleted {
			// The commit replaces the cloud's inventory: deleted objects need no DELETE.
			delete(m.entries, k)
			continue
		}
		byKind[e.key.kind] = append(byKind[e.key.kind], e)
	}
	m.order.Init()
	m.resync = false
	flags := m.flags
	primed := isClosed(m.primed)
	// The entries' data is replaced, never modified, so it can be read unlocked.
	snapshot := make([]struct {
		key  mirrorKey
		data []byte
	}, 0, len(m.entries))
	m.recordSizeLocked(ctx)
	for _, es := range byKind {
		slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
		for _, e := range es {
			snapshot = append(snapshot, struct {
				key  mirrorKey
				data []byte
			}{e.key, e.data})
		}
	}
	m.mu.Unlock()

	for _, s := range snapshot {
		msg, err := (&entry{key: s.key, data: s.data}).message(cloudv1.Action_ACTION_CREATE)
		if err == nil {
			err = send(msg)
		}
		if err != nil {
			return nil, fmt.Errorf("replaying the inventory: %w", err)
		}
	}
	m.telemetry.KestrelExporterInventoryMessagesSent.Add(ctx, int64(len(snapshot)), metric.WithAttributes(attribute.String("trigger", "snapshot")))
	m.mu.Lock()
	m.committed, m.sessionFlags, m.sessionPrimed = true, flags, primed
	m.mu.Unlock()
	if flags == nil {
		flags = &cloudv1.InventoryCommit{}
	}
	return flags, nil
}

func closeOnce(ch chan struct{}) {
	if !isClosed(ch) {
		close(ch)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Retries of a failed send back off between these bounds; a change or a new Ready
// retries at once.
const (
	minRetry = 100 * time.Millisecond
	maxRetry = 5 * time.Second
)

// run sends changes while the connection is Ready, until ctx ends.
func (m *mirror) run(ctx context.Context, conn cloudconn.Connection, timeout time.Duration) {
	retry := time.NewTimer(0)
	<-retry.C
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			retry.Stop()
			return
		case <-m.wake:
		case <-retry.C:
		}
		for ctx.Err() == nil && conn.State() == cloudconn.Ready {
			sent, err := m.sendNext(ctx, conn, timeout)
			if err != nil {
				// A broken stream makes the connection reconnect and replay everything;
				// anything else (e.g. a send that timed out) is retried here.
				backoff = min(max(2*backoff, minRetry), maxRetry)
				m.logger.Debug("Sending an inventory change failed", zap.Error(err), zap.Duration("retry_in", backoff))
				retry.Reset(backoff)
				break
			}
			backoff = 0
			if !sent {
				break
			}
		}
	}
}

// sendNext sends a resync, or the oldest pending change. It reports whether it sent.
func (m *mirror) sendNext(ctx context.Context, conn cloudconn.Connection, timeout time.Duration) (bool, error) {
	m.sendMu.Lock()
	defer m.sendMu.Unlock()
	sendCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	m.mu.Lock()
	if m.resync && m.committed {
		m.mu.Unlock()
		return true, m.resyncAll(sendCtx, conn)
	}
	front := m.order.Front()
	if front == nil {
		m.mu.Unlock()
		return false, nil
	}
	e := front.Value.(*entry)
	m.order.Remove(front)
	e.dirty = nil
	data, action, deleted := e.data, e.action, e.deleted
	m.mu.Unlock()

	msg, err := (&entry{key: e.key, data: data}).message(action)
	if err == nil {
		err = conn.Send(sendCtx, msg)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil || status.Code(err) == codes.InvalidArgument:
		if err != nil {
			m.dropped(ctx, kindEvents[e.key.kind], reasonRejected, 1)
			m.logger.Debug("Dropped an inventory message the connection rejected", zap.String("event_name", kindEvents[e.key.kind]), zap.Error(err))
		} else {
			m.telemetry.KestrelExporterInventoryMessagesSent.Add(ctx, 1, metric.WithAttributes(attribute.String("trigger", "change")))
		}
		if deleted && e.deleted && e.dirty == nil && m.entries[e.key] == e {
			delete(m.entries, e.key)
			m.recordSizeLocked(ctx)
		}
		return true, nil
	default:
		// Try again first; a newer state queued meanwhile keeps its place.
		if e.dirty == nil && m.entries[e.key] == e {
			e.dirty = m.order.PushFront(e)
		}
		return false, err
	}
}

// resyncAll sends every object and then an InventoryCommit on the current session:
// whether the cloud stages from the start of the stream or from its last commit, the
// commit then covers the whole inventory.
func (m *mirror) resyncAll(ctx context.Context, conn cloudconn.Connection) error {
	m.mu.Lock()
	var deletes, live []*entry
	for _, e := range m.entries {
		if e.deleted {
			deletes = append(deletes, e)
		} else {
			live = append(live, e)
		}
	}
	type out struct {
		e      *entry
		data   []byte
		action cloudv1.Action
	}
	msgs := make([]out, 0, len(m.entries))
	for _, e := range deletes {
		msgs = append(msgs, out{e, e.data, cloudv1.Action_ACTION_DELETE})
	}
	slices.SortFunc(live, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.key.kind, b.key.kind), cmp.Compare(a.seq, b.seq))
	})
	for _, e := range live {
		msgs = append(msgs, out{e, e.data, cloudv1.Action_ACTION_CREATE})
	}
	for _, e := range m.entries {
		e.dirty = nil
	}
	m.order.Init()
	m.resync = false
	flags := m.flags
	primed := isClosed(m.primed)
	m.mu.Unlock()

	fail := func(err error) error {
		m.mu.Lock()
		m.resync = true
		m.mu.Unlock()
		return err
	}
	for _, o := range msgs {
		msg, err := (&entry{key: o.e.key, data: o.data}).message(o.action)
		if err == nil {
			err = conn.Send(ctx, msg)
		}
		if err != nil && status.Code(err) != codes.InvalidArgument {
			return fail(err)
		}
	}
	if flags == nil {
		flags = &cloudv1.InventoryCommit{}
	}
	if err := conn.Send(ctx, flags); err != nil {
		return fail(err)
	}
	m.telemetry.KestrelExporterInventoryMessagesSent.Add(ctx, int64(len(msgs)+1), metric.WithAttributes(attribute.String("trigger", "resync")))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range msgs {
		if o.action == cloudv1.Action_ACTION_DELETE && o.e.dirty == nil && m.entries[o.e.key] == o.e {
			delete(m.entries, o.e.key)
		}
	}
	m.recordSizeLocked(ctx)
	m.sessionFlags, m.sessionPrimed = flags, primed
	return nil
}
