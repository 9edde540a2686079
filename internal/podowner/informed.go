package podowner

import (
	"slices"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
)

// Informed resolves pods from the process-wide informers of Pods, ReplicaSets and Jobs in
// a k8scache.Cache, so it costs no extra watch when k8s_inventory already runs against the
// same apiserver. Until the informers have synced, and for pods created since, it knows
// less than the apiserver; chain it with Names for those.
type Informed struct {
	pods, replicaSets, jobs *k8scache.Informer
	releases                []func()
}

// Open starts an Informed resolver for the apiserver api describes, for a component whose
// kubernetes section is set. Failing list or watch calls (no RBAC, apiserver down) are not
// fatal: they are logged and reported as a recoverable component status while the
// informers retry, and the component falls back to other resolvers meanwhile.
func Open(api *k8sapi.Config, logger *zap.Logger, host component.Host) (*Informed, error) {
	rc, err := api.RestConfig()
	if err != nil {
		return nil, err
	}
	c, err := k8scache.For(rc)
	if err != nil {
		return nil, err
	}
	i := NewInformed(c)
	i.releases = append(i.releases, i.onHealth(func(err error) {
		if err != nil {
			logger.Warn("Cannot watch pods, ReplicaSets or Jobs; workloads of pods come from names and attributes meanwhile", zap.Error(err))
			componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(err))
			return
		}
		logger.Info("Watching pods, ReplicaSets and Jobs again")
		componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusOK))
	}))
	return i, nil
}

var _ Resolver = (*Informed)(nil)

// NewInformed starts (or joins) the cluster-wide informers it needs. Call Close when done.
func NewInformed(c *k8scache.Cache) *Informed {
	i := &Informed{}
	acquire := func(r *k8scache.Resource) *k8scache.Informer {
		inf, release := c.Informer(r, "")
		i.releases = append(i.releases, release)
		return inf
	}
	i.pods = acquire(k8scache.Pods)
	i.replicaSets = acquire(k8scache.ReplicaSets)
	i.jobs = acquire(k8scache.Jobs)
	return i
}

// HasSynced reports whether all three informers hold the apiserver's state.
func (i *Informed) HasSynced() bool {
	return i.pods.HasSynced() && i.replicaSets.HasSynced() && i.jobs.HasSynced()
}

// onHealth calls fn with the first failure among the informers (nil once all are healthy)
// after each change of any informer's health, until the returned function is called. fn
// runs on informer goroutines and must not block.
func (i *Informed) onHealth(fn func(error)) (cancel func()) {
	infs := []*k8scache.Informer{i.pods, i.replicaSets, i.jobs}
	var mu sync.Mutex
	errs := make([]error, len(infs))
	cancels := make([]func(), 0, len(infs))
	for idx, inf := range infs {
		cancels = append(cancels, inf.OnHealth(func(err error) {
			mu.Lock()
			defer mu.Unlock()
			errs[idx] = err
			var first error
			for _, e := range errs {
				if e != nil {
					first = e
					break
				}
			}
			fn(first)
		}))
	}
	return func() {
		for _, c := range cancels {
			c()
		}
	}
}

// Owner implements Resolver.
func (i *Informed) Owner(namespace, pod string) (Ref, bool) {
	p, ok := get[*slim.Pod](i.pods, namespace, pod)
	if !ok {
		return Ref{}, false
	}
	return OwnerOf(p,
		func(ns, name string) *appsv1.ReplicaSet {
			rs, _ := get[*appsv1.ReplicaSet](i.replicaSets, ns, name)
			return rs
		},
		func(ns, name string) *batchv1.Job {
			j, _ := get[*batchv1.Job](i.jobs, ns, name)
			return j
		})
}

// Close releases the informers; they stop when no other component uses them.
func (i *Informed) Close() {
	for _, release := range slices.Backward(i.releases) {
		release()
	}
}

func get[T any](inf *k8scache.Informer, namespace, name string) (T, bool) {
	obj, ok, err := inf.GetIndexer().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		var zero T
		return zero, false
	}
	t, ok := obj.(T)
	return t, ok
}
