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
	"google.golang.org/protobuf/reflect/protoreflect"

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

// kind identifies the cloud.v1 message type of an entry: its index in
// schema.InventoryOrder, the order in which snapshots replay the kinds.
type kind uint8

// messages are the cloud.v1 messages that inventory records become, by event name.
var messages = map[string]proto.Message{
	schema.EventInventoryNamespace:           &cloudv1.Namespace{},
	schema.EventInventoryNode:                &cloudv1.Node{},
	schema.EventInventoryWorkload:            &cloudv1.Workload{},
	schema.EventInventoryPod:                 &cloudv1.Pod{},
	schema.EventInventoryService:             &cloudv1.Service{},
	schema.EventInventoryNetworkPolicy:       &cloudv1.NetworkPolicy{},
	schema.EventInventoryAuthorizationPolicy: &cloudv1.AuthorizationPolicy{},
}

// kinds are the message types of schema.InventoryOrder; kindOf finds a type's kind.
var kinds, kindOf = func() ([]protoreflect.MessageType, map[protoreflect.FullName]kind) {
	types := make([]protoreflect.MessageType, len(schema.InventoryOrder))
	of := make(map[protoreflect.FullName]kind, len(types))
	for i, ev := range schema.InventoryOrder {
		types[i] = messages[ev].ProtoReflect().Type()
		of[types[i].Descriptor().FullName()] = kind(i)
	}
	return types, of
}()

type mirrorKey struct {
	kind kind
	uid  string
}

type entry struct {
	key    mirrorKey
	seq    uint64 // creation order, which replays keep within a kind
	data   []byte // the message, action unset, deterministically marshalled
	action cloudv1.Action
	epoch  uint64        // snapshot epoch of the last record about the object
	dirty  *list.Element // place in the send order; nil when there is nothing to send
}

// deleted reports whether a DELETE waits to be sent; the entry goes once it is.
func (e *entry) deleted() bool { return e.action == cloudv1.Action_ACTION_DELETE }

// identify returns the mirror key of an inventory message.
func identify(m proto.Message) (mirrorKey, bool) {
	k, ok := kindOf[m.ProtoReflect().Descriptor().FullName()]
	if !ok {
		return mirrorKey{}, false
	}
	uid := ""
	switch p := m.(type) {
	case interface{ GetUid() string }:
		uid = p.GetUid()
	case interface{ GetMetadata() *cloudv1.ObjectMeta }: // the policies
		uid = p.GetMetadata().GetUid()
	}
	return mirrorKey{k, uid}, true
}

func getAction(m proto.Message) cloudv1.Action {
	return m.(interface{ GetAction() cloudv1.Action }).GetAction()
}

// setAction sets the action field that every inventory message has.
func setAction(m proto.Message, a cloudv1.Action) {
	pr := m.ProtoReflect()
	pr.Set(pr.Descriptor().Fields().ByName("action"), protoreflect.ValueOfEnum(protoreflect.EnumNumber(a)))
}

// decode rebuilds the message of kind k that data holds, with the given action.
func decode(k kind, data []byte, a cloudv1.Action) (proto.Message, error) {
	m := kinds[k].New().Interface()
	if err := proto.Unmarshal(data, m); err != nil {
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
	// committed: the current session's InventoryCommit went out, with sessionFlags (nil
	// when it went out before the first snapshot was complete).
	committed    bool
	sessionFlags *cloudv1.InventoryCommit
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

// split separates inventory records from the rest. The side that has everything is ld
// itself, so the common case of a batch without inventory copies nothing.
func split(ld plog.Logs) (inventory, rest plog.Logs) {
	isInventory := func(_ int, lr plog.LogRecord) bool { return logmap.IsInventory(lr.EventName()) }
	return logmap.Filter(ld, isInventory), logmap.Filter(ld, func(i int, lr plog.LogRecord) bool { return !isInventory(i, lr) })
}

// absorb applies the inventory records of ld to the mirror and returns the other records.
func (m *mirror) absorb(ctx context.Context, mapper *logmap.Mapper, ld plog.Logs) plog.Logs {
	inv, rest := split(ld)
	if inv.LogRecordCount() == 0 {
		return rest
	}
	res := mapper.Map(inv)
	reportDrops(ctx, m.logger, m.dropped, res.Drops)
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
		if e == nil || e.deleted() {
			return
		}
		e.data, e.action = data, action
		m.markLocked(e)
		return
	}
	if e != nil && !e.deleted() && bytes.Equal(e.data, data) {
		e.epoch = m.epoch // unchanged: nothing to send, but the snapshot saw it
		return
	}
	if e == nil {
		m.seq++
		e = &entry{key: key, seq: m.seq}
		m.entries[key] = e
	}
	e.data, e.action, e.epoch = data, action, m.epoch
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
			if !e.deleted() && e.epoch < m.sweepFrom {
				e.action = cloudv1.Action_ACTION_DELETE
				m.markLocked(e)
			}
		}
		m.sweepFrom = 0
	}
	m.flags = c
	closeOnce(m.primed)
	if m.committed && (m.sessionFlags == nil || !proto.Equal(c, m.sessionFlags)) {
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
				m.logger.Warn("An inventory source is running but has not started a snapshot; committing what there is (see initial_snapshot_timeout)",
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
	deleted, live := m.takeAllLocked()
	for _, t := range deleted {
		// The commit replaces the cloud's inventory: deleted objects need no DELETE.
		delete(m.entries, t.e.key)
	}
	flags := m.flags
	// Committed from here: the session is not Ready (so nothing else sends) until this
	// commit is out, and flags that change meanwhile must resync after it.
	m.committed, m.sessionFlags = true, flags
	m.recordSizeLocked(ctx)
	m.mu.Unlock()

	for _, t := range live {
		msg, err := decode(t.e.key.kind, t.data, cloudv1.Action_ACTION_CREATE)
		if err == nil {
			err = send(msg)
		}
		if err != nil {
			return nil, fmt.Errorf("replaying the inventory: %w", err)
		}
	}
	m.telemetry.KestrelExporterInventoryMessagesSent.Add(ctx, int64(len(live)), metric.WithAttributes(attribute.String("trigger", "snapshot")))
	if flags == nil {
		flags = &cloudv1.InventoryCommit{}
	}
	return flags, nil
}

// taken is an entry and its data as they were when taken for sending. An entry's data is
// replaced, never modified, so it can be read unlocked.
type taken struct {
	e    *entry
	data []byte
}

// takeAllLocked empties the send order for a replay of the whole mirror. It returns the
// entries that wait for a DELETE, and all others in snapshot order: by kind, then creation.
func (m *mirror) takeAllLocked() (deleted, live []taken) {
	for _, e := range m.entries {
		e.dirty = nil
		if e.deleted() {
			deleted = append(deleted, taken{e, e.data})
		} else {
			live = append(live, taken{e, e.data})
		}
	}
	slices.SortFunc(live, func(a, b taken) int {
		return cmp.Or(cmp.Compare(a.e.key.kind, b.e.key.kind), cmp.Compare(a.e.seq, b.e.seq))
	})
	m.order.Init()
	m.resync = false
	return deleted, live
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
	data, action := e.data, e.action
	m.mu.Unlock()

	msg, err := decode(e.key.kind, data, action)
	if err == nil {
		err = conn.Send(sendCtx, msg)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil || status.Code(err) == codes.InvalidArgument:
		if err != nil {
			m.dropped(ctx, schema.InventoryOrder[e.key.kind], reasonRejected, 1)
			m.logger.Debug("Dropped an inventory message the connection rejected", zap.String("event_name", schema.InventoryOrder[e.key.kind]), zap.Error(err))
		} else {
			m.telemetry.KestrelExporterInventoryMessagesSent.Add(ctx, 1, metric.WithAttributes(attribute.String("trigger", "change")))
		}
		if action == cloudv1.Action_ACTION_DELETE && e.deleted() && e.dirty == nil && m.entries[e.key] == e {
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
	deleted, live := m.takeAllLocked()
	// A resync follows a snapshot_complete, so the flags are set. They are the session's
	// from now: a snapshot_complete with the same flags while this resync is in flight
	// needs no other, and a failure below asks for another anyway.
	flags := m.flags
	m.sessionFlags = flags
	m.mu.Unlock()

	fail := func(err error) error {
		m.mu.Lock()
		m.resync = true
		m.mu.Unlock()
		return err
	}
	for i, t := range append(deleted, live...) {
		action := cloudv1.Action_ACTION_CREATE
		if i < len(deleted) {
			action = cloudv1.Action_ACTION_DELETE
		}
		msg, err := decode(t.e.key.kind, t.data, action)
		if err == nil {
			err = conn.Send(ctx, msg)
		}
		if err != nil && status.Code(err) != codes.InvalidArgument {
			return fail(err)
		}
	}
	if err := conn.Send(ctx, flags); err != nil {
		return fail(err)
	}
	m.telemetry.KestrelExporterInventoryMessagesSent.Add(ctx, int64(len(deleted)+len(live)+1), metric.WithAttributes(attribute.String("trigger", "resync")))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range deleted {
		if t.e.dirty == nil && m.entries[t.e.key] == t.e {
			delete(m.entries, t.e.key)
		}
	}
	m.recordSizeLocked(ctx)
	return nil
}
