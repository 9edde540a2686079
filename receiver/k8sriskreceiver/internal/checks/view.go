package checks

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
)

// Store reads the cached objects of one resource: one indexer when it is watched cluster-wide,
// one per namespace when it is watched per namespace.
type Store []cache.Indexer

// List returns every object.
func (s Store) List() []any {
	if len(s) == 1 {
		return s[0].List()
	}
	var out []any
	for _, idx := range s {
		out = append(out, idx.List()...)
	}
	return out
}

// InNamespace returns the objects of namespace ns.
func (s Store) InNamespace(ns string) []any {
	var out []any
	for _, idx := range s {
		objs, err := idx.ByIndex(cache.NamespaceIndex, ns)
		if err == nil {
			if len(s) == 1 {
				return objs
			}
			out = append(out, objs...)
		}
	}
	return out
}

// Get returns the object ns/name (name alone for cluster-scoped kinds).
func (s Store) Get(ns, name string) (any, bool) {
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	for _, idx := range s {
		if obj, ok, err := idx.GetByKey(key); err == nil && ok {
			return obj, true
		}
	}
	return nil, false
}

// PodSpec is the spec of a pod that no cached pod template describes, which the receiver
// reads itself (k8scache keeps little of a pod), slimmed like a template.
type PodSpec struct {
	UID         types.UID
	Generation  int64
	Spec        *corev1.PodSpec
	Annotations map[string]string
	// Err is why the spec could not be read, if it could not.
	Err error
}

// View is what the checks read: the cached objects, which of them could not be listed, the
// pod specs the receiver read, and the observed traffic.
type View struct {
	Stores map[*k8scache.Resource]Store
	// Missing holds, per resource that could not be listed (forbidden, not served), why.
	Missing map[*k8scache.Resource]error
	// PodSpecs returns the spec read for the pod with uid, if any.
	PodSpecs func(uid types.UID) (*PodSpec, bool)
	// Flows are the observed edges to consider and FlowSources the running flow sources.
	Flows       func() []flowgraph.Stat
	FlowSources func() int
	Now         func() time.Time

	rbac   *rbacIndex
	byNode map[string]nodeRequests
}

// Store returns the store of r; an empty one when r is not watched.
func (v *View) Store(r *k8scache.Resource) Store { return v.Stores[r] }

// InvalidateRBAC drops what was derived from RBAC objects (and ServiceAccounts); call it when
// one changed.
func (v *View) InvalidateRBAC() { v.rbac = nil }

// InvalidatePods drops what was derived from pods; call it when one was added, deleted,
// bound or resized.
func (v *View) InvalidatePods() { v.byNode = nil }
