package k8sriskreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver"

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/sourcestatus"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/checks"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/metadata"
)

// settlePoll is how often the initial sync is checked; client-go offers no event for
// "synced", its own WaitForCacheSync polls too.
const settlePoll = 100 * time.Millisecond

// contextResources are the resources the checks read besides their subjects.
var contextResources = []*k8scache.Resource{
	k8scache.NetworkPolicies, k8scache.PodDisruptionBudgets, k8scache.ServiceAccounts,
	k8scache.ResourceQuotas, k8scache.LimitRanges,
}

type riskReceiver struct {
	cfg     *Config
	set     receiver.Settings
	logger  *zap.Logger
	next    consumer.Logs
	obsrecv *receiverhelper.ObsReport
	tb      *metadata.TelemetryBuilder
	status  *sourcestatus.Reporter

	// restConfig builds the client configuration; tests replace it.
	restConfig func() (*rest.Config, error)
	// tick is the engine's loop period; tests shorten it.
	tick time.Duration

	cancel context.CancelFunc
	done   chan struct{}
	unread func() // from flowgraph.Read, set by Start
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*riskReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "http",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &riskReceiver{
		cfg: cfg, set: set, logger: set.Logger, next: next, obsrecv: obsrecv, tb: tb,
		status:     sourcestatus.New(set.Logger, "Cannot read or write; the checks that need it report skip", "Recovered"),
		restConfig: cfg.RestConfig,
		tick:       200 * time.Millisecond,
	}, nil
}

// Start begins assessing in the background. It fails only when no client configuration can
// be built; an unreachable or forbidding apiserver is reported through component status and
// retried, and what cannot be read makes the checks that need it report skip.
func (r *riskReceiver) Start(_ context.Context, host component.Host) error {
	rc, err := r.restConfig()
	if err != nil {
		return fmt.Errorf("k8s_risk: %w", err)
	}
	c, err := k8scache.For(rc)
	if err != nil {
		return err
	}
	r.status.SetHost(host)
	// The flow sources record edges only while someone reads them. Registering here, before
	// Start returns, is before the first window of any flow source ends (30 s by default), so
	// the attack chains see every flow received since the collector started.
	r.unread = flowgraph.Read()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		w := newWatcher(r, c)
		defer w.stop()
		if !w.start(ctx) {
			return
		}
		newEngine(r, c, w).run(ctx)
	}()
	return nil
}

// Shutdown stops assessing and releases the informers.
func (r *riskReceiver) Shutdown(ctx context.Context) error {
	defer r.tb.Shutdown()
	if r.cancel == nil {
		return nil
	}
	r.unread()
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watched is one informer the receiver uses.
type watched struct {
	inf        *k8scache.Informer
	release    func()
	reg        cache.ResourceEventHandlerRegistration
	stopHealth func()
	source     string // resource, or resource@namespace
}

// watcher holds the receiver's informers and turns their events into queue items.
type watcher struct {
	r     *riskReceiver
	cache *k8scache.Cache
	q     *queue
	byRes map[*k8scache.Resource][]*watched
	all   []*watched
}

func newWatcher(r *riskReceiver, c *k8scache.Cache) *watcher {
	return &watcher{r: r, cache: c, q: newQueue(), byRes: map[*k8scache.Resource][]*watched{}}
}

// resources are those the receiver watches.
func (w *watcher) resources() []*k8scache.Resource {
	out := slices.Concat(checks.SubjectResources, contextResources)
	if w.r.cfg.PolicyReports.Enabled {
		out = append(out, k8scache.CustomResourceDefinitions)
	}
	return out
}

// start watches every resource and waits until each has its initial state or cannot have
// it; false when ctx ended first.
func (w *watcher) start(ctx context.Context) bool {
	for _, res := range w.resources() {
		for _, ns := range w.namespaces(res) {
			w.watch(res, ns)
		}
	}
	tick := time.NewTicker(settlePoll)
	defer tick.Stop()
	for {
		pending := 0
		for _, x := range w.all {
			if !x.reg.HasSynced() && !unavailable(x.inf.Err()) {
				pending++
			}
		}
		if pending == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// namespaces returns the namespaces to watch res in: "" for all, or the include list.
func (w *watcher) namespaces(res *k8scache.Resource) []string {
	if !res.Namespaced || len(w.r.cfg.Namespaces.Include) == 0 {
		return []string{""}
	}
	return w.r.cfg.Namespaces.Include
}

func (w *watcher) watch(res *k8scache.Resource, ns string) {
	inf, release := w.cache.Informer(res, ns)
	x := &watched{inf: inf, release: release, source: res.Name}
	if ns != "" {
		x.source += "@" + ns
	}
	x.stopHealth = inf.OnHealth(func(err error) {
		w.r.status.Set(x.source, err)
		w.q.push(item{op: opHealth})
	})
	if err := inf.Err(); err != nil {
		w.r.status.Set(x.source, err)
	}
	// Adding a handler to a running informer fails only after it stopped, which it has not.
	x.reg, _ = inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, _ bool) { w.q.push(item{op: opAdd, res: res, obj: obj}) },
		UpdateFunc: func(old, obj any) { w.q.push(item{op: opUpdate, res: res, obj: obj, old: old}) },
		DeleteFunc: func(obj any) { w.q.push(item{op: opDelete, res: res, obj: obj}) },
	})
	w.all = append(w.all, x)
	w.byRes[res] = append(w.byRes[res], x)
}

// events returns the informer events since the last call.
func (w *watcher) events() []item { return w.q.popAll() }

func (w *watcher) stop() {
	for _, x := range w.all {
		_ = x.inf.RemoveEventHandler(x.reg)
		x.stopHealth()
		x.release()
	}
	w.all = nil
}

// stores returns the indexers of every resource.
func (w *watcher) stores() map[*k8scache.Resource]checks.Store {
	out := map[*k8scache.Resource]checks.Store{}
	for res, xs := range w.byRes {
		for _, x := range xs {
			out[res] = append(out[res], x.inf.GetIndexer())
		}
	}
	return out
}

// missing returns, per resource that cannot be read, why.
func (w *watcher) missing() map[*k8scache.Resource]error {
	out := map[*k8scache.Resource]error{}
	for res, xs := range w.byRes {
		for _, x := range xs {
			if err := x.inf.Err(); unavailable(err) {
				out[res] = fmt.Errorf("%s: %w", x.source, err)
				break
			}
		}
	}
	return out
}

// unavailable reports errors that retrying will not fix soon: missing permissions or an
// API the server does not serve.
func unavailable(err error) bool {
	return err != nil && (apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err))
}

type opKind uint8

const (
	opAdd opKind = iota
	opUpdate
	opDelete
	// opHealth: an informer's health changed.
	opHealth
)

type item struct {
	op       opKind
	res      *k8scache.Resource
	obj, old any
}

// queue is the unbounded FIFO between the informers' handlers and the engine. Unbounded
// because handlers must not block: client-go buffers per handler too.
type queue struct {
	mu    sync.Mutex
	items []item
}

func newQueue() *queue { return &queue{} }

func (q *queue) push(it item) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
}

func (q *queue) popAll() []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}
