package kestrelexporter

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter/internal/metadatatest"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/inventorysources"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

const (
	waitFor = 5 * time.Second
	tick    = 2 * time.Millisecond
)

// sessionConn is a test double of cloudconn.Connection with sessions: connect runs the
// registered snapshot functions, then "sends" the InventoryCommit and turns Ready, as the
// kestrel_command extension does.
type sessionConn struct {
	mu      sync.Mutex
	state   cloudconn.State
	subs    map[int]func(cloudconn.State)
	nextSub int
	snaps   map[int]cloudconn.SnapshotFunc // by registration, in order
	nextSnp int
	sent    []proto.Message
	fail    func(proto.Message) error
}

func newSessionConn() *sessionConn {
	return &sessionConn{subs: map[int]func(cloudconn.State){}, snaps: map[int]cloudconn.SnapshotFunc{}}
}

// SendAcknowledged is Send against a server that does not acknowledge.
func (c *sessionConn) SendAcknowledged(ctx context.Context, payload proto.Message) (cloudconn.Acknowledgement, error) {
	if err := c.Send(ctx, payload); err != nil {
		return nil, err
	}
	return func(context.Context) error { return nil }, nil
}

func (c *sessionConn) Send(_ context.Context, payload proto.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == cloudconn.Disconnected {
		return cloudconn.ErrNotConnected
	}
	if c.fail != nil {
		if err := c.fail(payload); err != nil {
			return err
		}
	}
	c.sent = append(c.sent, payload)
	return nil
}

func (c *sessionConn) Handle(proto.Message, cloudconn.Handler) (func(), error) {
	return func() {}, nil
}

func (c *sessionConn) MaxMessageBytes() int { return 10 << 20 }

func (c *sessionConn) RegisterSnapshot(fn cloudconn.SnapshotFunc) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextSnp++
	id := c.nextSnp
	c.snaps[id] = fn
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.snaps, id)
	}
}

func (c *sessionConn) State() cloudconn.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *sessionConn) Subscribe(fn func(cloudconn.State)) func() {
	c.mu.Lock()
	id := c.nextSub
	c.nextSub++
	c.subs[id] = fn
	st := c.state
	c.mu.Unlock()
	fn(st)
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.subs, id)
	}
}

func (c *sessionConn) setState(st cloudconn.State) {
	c.mu.Lock()
	c.state = st
	subs := make([]func(cloudconn.State), 0, len(c.subs))
	for _, fn := range c.subs {
		subs = append(subs, fn)
	}
	c.mu.Unlock()
	for _, fn := range subs {
		fn(st)
	}
}

// connect runs one connection sequence and returns what it sent up to the commit.
func (c *sessionConn) connect(ctx context.Context) error {
	c.setState(cloudconn.Syncing)
	c.mu.Lock()
	var snaps []cloudconn.SnapshotFunc
	for _, id := range slices.Sorted(maps.Keys(c.snaps)) {
		snaps = append(snaps, c.snaps[id])
	}
	c.mu.Unlock()
	commit := &cloudv1.InventoryCommit{}
	for _, fn := range snaps {
		flags, err := fn(ctx, func(m proto.Message) error { return c.Send(ctx, m) })
		if err != nil {
			return err
		}
		proto.Merge(commit, flags)
	}
	if err := c.Send(ctx, commit); err != nil {
		return err
	}
	c.setState(cloudconn.Ready)
	return nil
}

func (c *sessionConn) payloads() []proto.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]proto.Message(nil), c.sent...)
}

func (c *sessionConn) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = nil
}

// inventory builds log records; each rec is an event name and attributes.
type invRec struct {
	event string
	attrs map[string]any
}

func invLogs(t *testing.T, recs ...invRec) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, r := range recs {
		lr := lrs.AppendEmpty()
		lr.SetEventName(r.event)
		require.NoError(t, lr.Attributes().FromRaw(r.attrs))
	}
	return ld
}

func nsRec(name, action string, labels ...string) invRec {
	a := map[string]any{schema.AttrK8sNamespaceName: name, schema.AttrNamespaceUID: name + "-uid", schema.AttrAction: action}
	for i := 0; i+1 < len(labels); i += 2 {
		a[schema.AttrK8sNamespaceLabelPrefix+labels[i]] = labels[i+1]
	}
	return invRec{schema.EventInventoryNamespace, a}
}

func podRec(name, phase, action string) invRec {
	return invRec{schema.EventInventoryPod, map[string]any{
		schema.AttrK8sPodName: name, schema.AttrK8sPodUID: name + "-uid", schema.AttrK8sNamespaceName: "prod",
		schema.AttrK8sPodStatusPhase: phase, schema.AttrAction: action,
	}}
}

var (
	startRec = invRec{schema.EventInventorySnapshotStart, map[string]any{}}
	doneRec  = invRec{schema.EventInventorySnapshotComplete, map[string]any{schema.AttrIntegrationFlux: true}}
)

func ns(name string, action cloudv1.Action, labels map[string]string) *cloudv1.Namespace {
	return &cloudv1.Namespace{Name: name, Uid: name + "-uid", Labels: labels, Action: action}
}

func pod(name, phase string, action cloudv1.Action) *cloudv1.Pod {
	return &cloudv1.Pod{Name: name, Uid: name + "-uid", Namespace: "prod", Phase: phase, Action: action}
}

// newMirrorExporter builds the exporter as the factory does, started against conn.
func newMirrorExporter(t *testing.T, conn *sessionConn, mutate func(*Config)) (exporter.Logs, *componenttest.Telemetry) {
	t.Helper()
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.InitialSnapshotTimeout = waitFor
	if mutate != nil {
		mutate(cfg)
	}
	exp, err := createLogs(context.Background(), metadatatest.NewSettings(tt), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), hostWith(conn)))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return exp, tt
}

func waitPayloads(t *testing.T, conn *sessionConn, want ...proto.Message) {
	t.Helper()
	require.Eventually(t, func() bool { return len(conn.payloads()) >= len(want) }, waitFor, tick, "got %d of %d payloads", len(conn.payloads()), len(want))
	assertPayloads(t, want, conn.payloads())
}

func TestMirrorReplaysOnEveryConnectWithoutTheReceiver(t *testing.T) {
	conn := newSessionConn()
	exp, _ := newMirrorExporter(t, conn, nil)
	ctx := context.Background()

	// Disconnected: the snapshot is absorbed, nothing is sent.
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, startRec, nsRec("prod", schema.ActionCreate), podRec("web", "Pending", schema.ActionCreate), podRec("gone", "Running", schema.ActionCreate), doneRec)))
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, podRec("web", "Running", schema.ActionUpdate), podRec("gone", "Running", schema.ActionDelete))))
	assert.Empty(t, conn.payloads())

	// Connect: the latest state, as CREATE, then the commit with the receiver's flags.
	for range 2 {
		require.NoError(t, conn.connect(ctx))
		assertPayloads(t, []proto.Message{
			ns("prod", cloudv1.Action_ACTION_CREATE, nil),
			pod("web", "Running", cloudv1.Action_ACTION_CREATE),
			&cloudv1.InventoryCommit{HasFlux: true},
		}, conn.payloads())
		conn.setState(cloudconn.Disconnected)
		conn.reset()
	}
}

func TestMirrorSendsOnlyChangesWhileReady(t *testing.T) {
	conn := newSessionConn()
	exp, tt := newMirrorExporter(t, conn, nil)
	ctx := context.Background()
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, startRec, nsRec("prod", schema.ActionCreate, "team", "a"), doneRec)))
	require.NoError(t, conn.connect(ctx))
	conn.reset()

	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t,
		nsRec("prod", schema.ActionUpdate, "team", "a"), // unchanged: nothing
		nsRec("dev", schema.ActionCreate),
		nsRec("prod", schema.ActionUpdate, "team", "b"),
		nsRec("dev", schema.ActionDelete),
	)))
	// prod changed once (labelled b); dev ends deleted, whether or not its creation was
	// sent before its deletion coalesced with it.
	var prods []proto.Message
	require.Eventually(t, func() bool {
		prods = nil
		devDeleted := false
		for _, p := range conn.payloads() {
			switch n := p.(*cloudv1.Namespace); n.Name {
			case "prod":
				prods = append(prods, p)
			case "dev":
				devDeleted = n.Action == cloudv1.Action_ACTION_DELETE
			}
		}
		return devDeleted && len(prods) > 0
	}, waitFor, tick)
	assertPayloads(t, []proto.Message{ns("prod", cloudv1.Action_ACTION_UPDATE, map[string]string{"team": "b"})}, prods)

	// The deleted object is forgotten; the next replay has only prod.
	conn.setState(cloudconn.Disconnected)
	conn.reset()
	require.NoError(t, conn.connect(ctx))
	assertPayloads(t, []proto.Message{ns("prod", cloudv1.Action_ACTION_CREATE, map[string]string{"team": "b"}), &cloudv1.InventoryCommit{HasFlux: true}}, conn.payloads())
	metadatatest.AssertEqualKestrelExporterInventoryObjects(t, tt, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}

func TestMirrorFirstCommitWaitsForTheSnapshot(t *testing.T) {
	conn := newSessionConn()
	exp, _ := newMirrorExporter(t, conn, nil)
	ctx := context.Background()
	// The snapshot has started (no inventory source registered in this process, so only
	// snapshot_start says one is coming) when the connection comes up.
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, startRec, nsRec("a", schema.ActionCreate))))
	connected := make(chan error, 1)
	go func() { connected <- conn.connect(ctx) }()
	select {
	case err := <-connected:
		t.Fatalf("the commit went out before the snapshot was complete (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, nsRec("b", schema.ActionCreate), doneRec)))
	require.NoError(t, <-connected)
	assertPayloads(t, []proto.Message{
		ns("a", cloudv1.Action_ACTION_CREATE, nil), ns("b", cloudv1.Action_ACTION_CREATE, nil), &cloudv1.InventoryCommit{HasFlux: true},
	}, conn.payloads())
}

func TestMirrorResyncsWhenTheFirstCommitWasEarly(t *testing.T) {
	conn := newSessionConn()
	exp, _ := newMirrorExporter(t, conn, func(cfg *Config) { cfg.InitialSnapshotTimeout = 0 })
	ctx := context.Background()
	require.NoError(t, conn.connect(ctx))
	assertPayloads(t, []proto.Message{&cloudv1.InventoryCommit{}}, conn.payloads())
	conn.reset()

	// A snapshot_complete with the same flags while that commit is in flight asks for no
	// other resync.
	var inFlight sync.Once
	conn.mu.Lock()
	conn.fail = func(p proto.Message) error {
		if proto.Equal(p, &cloudv1.InventoryCommit{HasFlux: true}) {
			inFlight.Do(func() { assert.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, doneRec))) })
		}
		return nil
	}
	conn.mu.Unlock()

	// The snapshot arrives while Ready: its objects stream as changes, then the commit
	// goes out again behind a full resend.
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, startRec, nsRec("a", schema.ActionCreate), doneRec)))
	require.Eventually(t, func() bool {
		p := conn.payloads()
		return len(p) > 0 && proto.Equal(p[len(p)-1], &cloudv1.InventoryCommit{HasFlux: true})
	}, waitFor, tick)
	p := conn.payloads()
	assert.True(t, proto.Equal(p[len(p)-2], ns("a", cloudv1.Action_ACTION_CREATE, nil)), "the commit follows the full inventory: %v", p)
	n := len(p)
	require.Never(t, func() bool { return len(conn.payloads()) > n }, 200*time.Millisecond, tick, "a second resync")

	// A later snapshot_complete with the same flags changes nothing; new flags resync.
	conn.reset()
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, doneRec)))
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, invRec{schema.EventInventorySnapshotComplete, map[string]any{schema.AttrIntegrationArgoCD: true}})))
	waitPayloads(t, conn, ns("a", cloudv1.Action_ACTION_CREATE, nil), &cloudv1.InventoryCommit{HasArgocd: true})
}

func TestMirrorResyncSendsPendingDeletesAndForgetsThem(t *testing.T) {
	conn := newSessionConn()
	exp, tt := newMirrorExporter(t, conn, func(cfg *Config) { cfg.InitialSnapshotTimeout = 0 })
	ctx := context.Background()
	require.NoError(t, conn.connect(ctx))
	conn.reset()

	// One batch, absorbed at once: a is created and deleted before the sender sees it, and
	// the first snapshot completes, so a resync goes out with a's DELETE pending.
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, nsRec("a", schema.ActionCreate), nsRec("a", schema.ActionDelete), startRec, nsRec("b", schema.ActionCreate), doneRec)))
	waitPayloads(t, conn, ns("a", cloudv1.Action_ACTION_DELETE, nil), ns("b", cloudv1.Action_ACTION_CREATE, nil), &cloudv1.InventoryCommit{HasFlux: true})

	// Once the sender sends the next change it is done with the resync: a is forgotten.
	conn.reset()
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, nsRec("c", schema.ActionCreate))))
	waitPayloads(t, conn, ns("c", cloudv1.Action_ACTION_CREATE, nil))
	metadatatest.AssertEqualKestrelExporterInventoryObjects(t, tt, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
}

func TestMirrorSweepsObjectsAFreshSnapshotDoesNotMention(t *testing.T) {
	conn := newSessionConn()
	exp, _ := newMirrorExporter(t, conn, nil)
	ctx := context.Background()
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, startRec, nsRec("a", schema.ActionCreate), nsRec("b", schema.ActionCreate), doneRec)))
	require.NoError(t, conn.connect(ctx))
	conn.reset()

	// A new snapshot (e.g. after regaining leadership) that lacks b: b was deleted meanwhile.
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, startRec, nsRec("a", schema.ActionCreate), doneRec)))
	waitPayloads(t, conn, ns("b", cloudv1.Action_ACTION_DELETE, nil))
}

func TestMirrorKeepsPerObjectOrderWithConcurrentConsumers(t *testing.T) {
	conn := newSessionConn()
	exp, _ := newMirrorExporter(t, conn, nil)
	ctx := context.Background()
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, startRec, doneRec)))
	require.NoError(t, conn.connect(ctx))
	conn.reset()

	// Many updates of one pod interleaved with events that go through the queue (10
	// consumers): the pod's states reach the cloud in order and end with the last one.
	const n = 200
	for i := range n {
		ld := invLogs(t, podRec("web", fmt.Sprintf("phase-%03d", i), schema.ActionUpdate))
		ev := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
		ev.SetEventName(schema.EventK8sEvent)
		ev.Attributes().PutStr(schema.AttrK8sEventUID, fmt.Sprint("ev-", i))
		ev.Attributes().PutStr(schema.AttrK8sEventReason, "BackOff")
		ev.Attributes().PutStr(schema.AttrK8sObjectKind, "Pod")
		ev.Attributes().PutStr(schema.AttrK8sObjectName, "web")
		require.NoError(t, exp.ConsumeLogs(ctx, ld))
	}
	last := pod("web", fmt.Sprintf("phase-%03d", n-1), cloudv1.Action_ACTION_UPDATE)
	require.Eventually(t, func() bool {
		events, lastPod := 0, proto.Message(nil)
		for _, p := range conn.payloads() {
			switch p.(type) {
			case *cloudv1.KubernetesEvent:
				events++
			case *cloudv1.Pod:
				lastPod = p
			}
		}
		return events == n && lastPod != nil && proto.Equal(lastPod, last)
	}, waitFor, tick)
	prev := ""
	for _, p := range conn.payloads() {
		if pp, ok := p.(*cloudv1.Pod); ok {
			assert.Greater(t, pp.Phase, prev, "pod states must not be reordered")
			prev = pp.Phase
		}
	}
}

func TestMirrorRetriesAFailedChangeFirst(t *testing.T) {
	conn := newSessionConn()
	exp, _ := newMirrorExporter(t, conn, nil)
	ctx := context.Background()
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, startRec, doneRec)))
	require.NoError(t, conn.connect(ctx))
	conn.reset()

	var mu sync.Mutex
	failures := 2
	conn.mu.Lock()
	conn.fail = func(m proto.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if n, ok := m.(*cloudv1.Namespace); ok && n.Name == "a" && failures > 0 {
			failures--
			return status.Error(codes.Unavailable, "stream reset")
		}
		return nil
	}
	conn.mu.Unlock()
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, nsRec("a", schema.ActionCreate), nsRec("b", schema.ActionCreate))))
	// The sender backs off and tries a again before b: the order holds.
	waitPayloads(t, conn, ns("a", cloudv1.Action_ACTION_CREATE, nil), ns("b", cloudv1.Action_ACTION_CREATE, nil))
	mu.Lock()
	defer mu.Unlock()
	assert.Zero(t, failures)
}

func TestSplitKeepsResourcesAndOrder(t *testing.T) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("r", "1")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("s")
	for _, name := range []string{schema.EventInventoryPod, schema.EventK8sEvent, schema.EventInventorySnapshotComplete, ""} {
		sl.LogRecords().AppendEmpty().SetEventName(name)
	}
	inv, rest := split(ld)
	names := func(ld plog.Logs) []string {
		var out []string
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < lrs.Len(); i++ {
			out = append(out, lrs.At(i).EventName())
		}
		assert.Equal(t, "1", ld.ResourceLogs().At(0).Resource().Attributes().AsRaw()["r"])
		assert.Equal(t, "s", ld.ResourceLogs().At(0).ScopeLogs().At(0).Scope().Name())
		return out
	}
	assert.Equal(t, []string{schema.EventInventoryPod, schema.EventInventorySnapshotComplete}, names(inv))
	assert.Equal(t, []string{schema.EventK8sEvent, ""}, names(rest))

	onlyEvents := invLogs(t, invRec{schema.EventK8sEvent, map[string]any{}})
	inv, rest = split(onlyEvents)
	assert.Equal(t, 0, inv.LogRecordCount())
	assert.Equal(t, onlyEvents, rest, "a batch without inventory passes through uncopied")
	// The same plog.Logs, not a copy: a change through one is seen through the other.
	rest.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).SetSeverityText("seen")
	assert.Equal(t, "seen", onlyEvents.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).SeverityText())
}

func TestEventsWaitForTheCloud(t *testing.T) {
	conn := newSessionConn()
	exp, _ := newMirrorExporter(t, conn, func(cfg *Config) {
		cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
		cfg.RetryConfig.MaxInterval = 50 * time.Millisecond
	})
	ctx := context.Background()
	require.Zero(t, createDefaultConfig().(*Config).RetryConfig.MaxElapsedTime, "by default nothing gives up while the cloud is away")

	// Disconnected: the event is queued and retried, the inventory goes to the mirror.
	ld := invLogs(t, startRec, nsRec("prod", schema.ActionCreate), doneRec)
	ev := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	ev.SetEventName(schema.EventK8sEvent)
	ev.Attributes().PutStr(schema.AttrK8sEventUID, "ev-1")
	ev.Attributes().PutStr(schema.AttrK8sEventReason, "BackOff")
	ev.Attributes().PutStr(schema.AttrK8sObjectKind, "Pod")
	ev.Attributes().PutStr(schema.AttrK8sObjectName, "web")
	require.NoError(t, exp.ConsumeLogs(ctx, ld), "queued, not refused")
	assert.Empty(t, conn.payloads())

	require.NoError(t, conn.connect(ctx))
	require.Eventually(t, func() bool {
		for _, p := range conn.payloads() {
			if e, ok := p.(*cloudv1.KubernetesEvent); ok && e.Uid == "ev-1" {
				return true
			}
		}
		return false
	}, waitFor, tick, "the queued event arrives once connected")
	committed := false
	for _, p := range conn.payloads() {
		committed = committed || proto.Equal(p, &cloudv1.InventoryCommit{HasFlux: true})
	}
	assert.True(t, committed, "the mirror was replayed and committed: %v", conn.payloads())
}

func TestMirrorWaitsForAnAnnouncedSourceBeyondTheTimeout(t *testing.T) {
	conn := newSessionConn()
	exp, _ := newMirrorExporter(t, conn, func(cfg *Config) { cfg.InitialSnapshotTimeout = 20 * time.Millisecond })
	ctx := context.Background()

	// A receiver announced a snapshot (e.g. on standby under leader election): the
	// commit waits for it however long it takes.
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, startRec)))
	connected := make(chan error, 1)
	go func() { connected <- conn.connect(ctx) }()
	select {
	case err := <-connected:
		t.Fatalf("committed an empty inventory although a snapshot was announced (err %v)", err)
	case <-time.After(200 * time.Millisecond): // ten times the timeout
	}
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, nsRec("a", schema.ActionCreate), doneRec)))
	require.NoError(t, <-connected)
	assertPayloads(t, []proto.Message{ns("a", cloudv1.Action_ACTION_CREATE, nil), &cloudv1.InventoryCommit{HasFlux: true}}, conn.payloads())
}

func TestMirrorCommitsAtOnceWithoutASource(t *testing.T) {
	conn := newSessionConn()
	newMirrorExporter(t, conn, nil) // initial_snapshot_timeout: waitFor
	start := time.Now()
	require.NoError(t, conn.connect(context.Background()))
	assert.Less(t, time.Since(start), waitFor, "nothing to wait for without an inventory source")
	assertPayloads(t, []proto.Message{&cloudv1.InventoryCommit{}}, conn.payloads())
}

func TestMirrorCommitsAfterTheTimeoutWhenARunningSourceAnnouncesNothing(t *testing.T) {
	t.Cleanup(inventorysources.Register())
	const timeout = 100 * time.Millisecond
	conn := newSessionConn()
	newMirrorExporter(t, conn, func(cfg *Config) { cfg.InitialSnapshotTimeout = timeout })
	start := time.Now()
	connected := make(chan error, 1)
	go func() { connected <- conn.connect(context.Background()) }()
	select {
	case err := <-connected:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("the commit did not go out after the timeout")
	}
	assert.GreaterOrEqual(t, time.Since(start), timeout, "the commit waited for the source")
	assertPayloads(t, []proto.Message{&cloudv1.InventoryCommit{}}, conn.payloads())
}

// Shutdown unregisters the mirror: a reconnect after it replays nothing of this exporter.
func TestShutdownUnregistersTheSnapshot(t *testing.T) {
	conn := newSessionConn()
	ctx := context.Background()
	exp, err := createLogs(ctx, exportertest.NewNopSettings(metadata.Type), createDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, hostWith(conn)))
	require.NoError(t, exp.ConsumeLogs(ctx, invLogs(t, startRec, nsRec("prod", schema.ActionCreate), doneRec)))
	require.NoError(t, conn.connect(ctx))
	waitPayloads(t, conn, ns("prod", cloudv1.Action_ACTION_CREATE, nil), &cloudv1.InventoryCommit{HasFlux: true})

	require.NoError(t, exp.Shutdown(ctx))
	conn.setState(cloudconn.Disconnected)
	conn.reset()
	require.NoError(t, conn.connect(ctx))
	assertPayloads(t, []proto.Message{&cloudv1.InventoryCommit{}}, conn.payloads())
}
