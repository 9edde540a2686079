package k8sinventoryreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver"

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver/internal/metadata"
)

const (
	// maxBatch bounds the records of one ConsumeLogs call.
	maxBatch = 1000
	// settlePoll is how often the initial sync is checked; client-go offers no event for
	// "synced", its own WaitForCacheSync polls too.
	settlePoll = 100 * time.Millisecond
	// recheckInterval is how often time-based rollout rules (e.g. not ready for 10 min)
	// are evaluated between object changes.
	recheckInterval = 30 * time.Second
	// gather is how long changes after the snapshot collect before they go down the
	// pipeline together: every ConsumeLogs costs the processors their bookkeeping and
	// wakes each stage, which for single pod updates cost more than the records.
	gather = 50 * time.Millisecond
)

// resourcesOf are the resources whose objects become the records of each inventory event
// (AuthorizationPolicies are watched once their API is found).
var resourcesOf = map[string][]*k8scache.Resource{
	schema.EventInventoryNamespace: {k8scache.Namespaces},
	schema.EventInventoryNode:      {k8scache.Nodes},
	schema.EventInventoryWorkload: {
		k8scache.Deployments, k8scache.StatefulSets, k8scache.DaemonSets, k8scache.ReplicaSets, k8scache.Jobs, k8scache.CronJobs,
	},
	schema.EventInventoryPod:           {k8scache.Pods},
	schema.EventInventoryService:       {k8scache.Services},
	schema.EventInventoryNetworkPolicy: {k8scache.NetworkPolicies},
}

// kinds are the resources watched besides CRDs and AuthorizationPolicies, in the snapshot
// order of their records.
var kinds = func() []*k8scache.Resource {
	var out []*k8scache.Resource
	for _, ev := range schema.InventoryOrder {
		out = append(out, resourcesOf[ev]...)
	}
	return out
}()

type opKind uint8

const (
	opAdd opKind = iota
	opUpdate
	opDelete
	// opSnapshotDone follows the last object of the initial state in the queue.
	opSnapshotDone
	// opAuthzCheck asks to look for the AuthorizationPolicy API again.
	opAuthzCheck
)

type item struct {
	op       opKind
	obj, old any
}

// queue is the unbounded FIFO between the informers' handlers and the collector's single
// worker. Unbounded because handlers must not block: client-go buffers per handler too.
type queue struct {
	mu     sync.Mutex
	items  []item
	signal chan struct{}
}

func newQueue() *queue { return &queue{signal: make(chan struct{}, 1)} }

func (q *queue) push(it item) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue) popAll() []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

// watched is one informer this collection uses.
type watched struct {
	inf        *k8scache.Informer
	release    func()
	reg        cache.ResourceEventHandlerRegistration
	stopHealth func()
	source     string // name for status and logs: resource, or resource@namespace
}

// collector is one collection run: from the informers' initial state through the
// snapshot to deltas, until its context ends (shutdown or a lost lease).
type collector struct {
	r      *inventoryReceiver
	cache  *k8scache.Cache
	cfg    *Config
	logger *zap.Logger
	now    func() time.Time
	q      *queue

	watches   []*watched
	byRes     map[*k8scache.Resource][]*watched
	authzRes  *k8scache.Resource
	authzWait time.Duration
	authzTmr  *time.Timer

	started      time.Time
	snapshotDone bool
	emitted      schema.Integrations
	recheckFlags bool
	policies     map[types.UID]string // targets last emitted per policy, joined
	dirtyNS      map[string]struct{}  // namespaces whose pods changed since targets were computed
	owners       map[types.UID]string // ownerWorkload of pods, for one batch: policies of a namespace share its pods
	rollouts     map[types.UID]*rolloutTrack
	invalid      map[types.UID]string // resourceVersion of invalid objects already reported
	sent         map[uint64]uint64    // fingerprint of the status record last emitted, by object (emitStatus)

	out plog.Logs
	lrs plog.LogRecordSlice
}

func newCollector(r *inventoryReceiver, c *k8scache.Cache) *collector {
	return &collector{
		r:        r,
		cache:    c,
		cfg:      r.cfg,
		logger:   r.logger,
		now:      time.Now,
		q:        newQueue(),
		byRes:    map[*k8scache.Resource][]*watched{},
		policies: map[types.UID]string{},
		dirtyNS:  map[string]struct{}{},
		owners:   map[types.UID]string{},
		rollouts: map[types.UID]*rolloutTrack{},
		invalid:  map[types.UID]string{},
		sent:     map[uint64]uint64{},
	}
}

func (c *collector) run(ctx context.Context) {
	c.started = c.now()
	defer c.stop()
	c.r.announce(ctx)
	// CRDs first: whether the AuthorizationPolicy API exists decides what the snapshot covers.
	c.watch(k8scache.CustomResourceDefinitions, "")
	if !c.settle(ctx, false) {
		return
	}
	c.startAuthz()
	for _, res := range kinds {
		for _, ns := range c.namespaces(res) {
			c.watch(res, ns)
		}
	}
	if len(c.cfg.EventTypes) > 0 {
		for _, ns := range c.namespaces(k8scache.Events) {
			c.watch(k8scache.EventsOfType(c.cfg.EventTypes), ns)
		}
	}
	if !c.settle(ctx, true) {
		return
	}
	c.q.push(item{op: opSnapshotDone})
	c.newBatch()
	c.loop(ctx)
}

// namespaces returns the namespaces to watch res in: "" for all, or the include list.
func (c *collector) namespaces(res *k8scache.Resource) []string {
	if !res.Namespaced || len(c.cfg.Namespaces.Include) == 0 {
		return []string{""}
	}
	return c.cfg.Namespaces.Include
}

// excluded reports whether objects of namespace ns are left out.
func (c *collector) excluded(ns string) bool {
	return slices.Contains(c.cfg.Namespaces.Exclude, ns)
}

// watch starts (or joins) the informer of res in ns and feeds its events to the queue.
func (c *collector) watch(res *k8scache.Resource, ns string) {
	inf, release := c.cache.Informer(res, ns)
	w := &watched{inf: inf, release: release, source: res.Name}
	if ns != "" {
		w.source += "@" + ns
	}
	w.stopHealth = inf.OnHealth(func(err error) { c.r.status.Set(w.source, err) })
	if err := inf.Err(); err != nil {
		c.r.status.Set(w.source, err)
	}
	// Adding a handler to a running informer fails only after it stopped, which it has not.
	w.reg, _ = inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, _ bool) { c.q.push(item{op: opAdd, obj: obj}) },
		UpdateFunc: func(old, obj any) { c.q.push(item{op: opUpdate, obj: obj, old: old}) },
		DeleteFunc: func(obj any) { c.q.push(item{op: opDelete, obj: obj}) },
	})
	c.watches = append(c.watches, w)
	c.byRes[res] = append(c.byRes[res], w)
}

func (c *collector) unwatch(w *watched) {
	_ = w.inf.RemoveEventHandler(w.reg)
	w.stopHealth()
	w.release()
	c.r.status.Set(w.source, nil)
	for i, x := range c.watches {
		if x == w {
			c.watches = append(c.watches[:i], c.watches[i+1:]...)
			break
		}
	}
	list := c.byRes[w.inf.Resource]
	for i, x := range list {
		if x == w {
			c.byRes[w.inf.Resource] = append(list[:i], list[i+1:]...)
			break
		}
	}
}

func (c *collector) stop() {
	if c.authzTmr != nil {
		c.authzTmr.Stop()
	}
	for len(c.watches) > 0 {
		c.unwatch(c.watches[len(c.watches)-1])
	}
}

// settle waits until every informer has delivered its initial state to our handler or
// cannot (forbidden, or the API is not served) and, with needData, at least one has data.
// A kind that fails is reported in the status and left out; it joins in once it works.
// ctx ending returns false.
func (c *collector) settle(ctx context.Context, needData bool) bool {
	tick := time.NewTicker(settlePoll)
	defer tick.Stop()
	for {
		synced, pending := 0, 0
		for _, w := range c.watches {
			switch {
			case w.reg.HasSynced():
				synced++
			case unavailable(w.inf.Err()):
			default:
				pending++
			}
		}
		if pending == 0 && (synced > 0 || !needData) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// unavailable reports errors that retrying will not fix soon: missing permissions or an
// API the server does not serve. Unauthorized (bad credentials) is not among them, so that
// a broken identity never produces an empty snapshot.
func unavailable(err error) bool {
	return err != nil && (apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err))
}

func (c *collector) loop(ctx context.Context) {
	tick := time.NewTicker(recheckInterval)
	defer tick.Stop()
	wait := time.NewTimer(gather)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.q.signal:
			if c.snapshotDone {
				wait.Reset(gather)
				select {
				case <-ctx.Done():
					return
				case <-wait.C:
				}
			}
		case <-tick.C:
			c.recheckRollouts()
		}
		for _, it := range c.q.popAll() {
			c.handle(it)
			if c.lrs.Len() >= maxBatch {
				c.flush(ctx)
			}
		}
		c.refreshTargets()
		if c.recheckFlags && c.snapshotDone {
			c.recheckFlags = false
			c.integrationsChanged()
		}
		c.flush(ctx)
	}
}

func (c *collector) newBatch() {
	c.out = plog.NewLogs()
	sl := c.out.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(c.r.set.BuildInfo.Version)
	c.lrs = sl.LogRecords()
}

// record appends a record stamped now.
func (c *collector) record(eventName string, sev plog.SeverityNumber) plog.LogRecord {
	lr := c.lrs.AppendEmpty()
	stamp(lr, eventName, sev, c.now())
	return lr
}

// newRecord returns a record stamped now that is not in the batch yet.
func (c *collector) newRecord(eventName string, sev plog.SeverityNumber) plog.LogRecord {
	lr := plog.NewLogRecord()
	stamp(lr, eventName, sev, c.now())
	return lr
}

func stamp(lr plog.LogRecord, eventName string, sev plog.SeverityNumber, now time.Time) {
	lr.SetEventName(eventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
	lr.SetSeverityNumber(sev)
}

func (c *collector) flush(ctx context.Context) {
	n := c.lrs.Len()
	if n == 0 || ctx.Err() != nil {
		return
	}
	ld := c.out
	c.newBatch()
	octx := c.r.obsrecv.StartLogsOp(ctx)
	err := c.r.next.ConsumeLogs(octx, ld)
	c.r.obsrecv.EndLogsOp(octx, "k8s", n, err)
	if err != nil {
		c.logger.Warn("The pipeline refused inventory records", zap.Int("records", n), zap.Error(err))
	}
}
