package slim

import (
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unique"
	"unsafe"
	"weak"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// interner shares equal values between cached objects: the pods of one ReplicaSet have the
// same labels, resources and owner, and keeping one copy for all of them saves most of
// what those fields cost per pod. Cached objects must not be modified anyway, so sharing
// is safe. Entries are weak: a value no cached object uses any more is collected and its
// entry dropped.
type interner[T any] struct {
	mu sync.Mutex
	m  map[string]weak.Pointer[T]
}

// get returns the value interned under key, or interns v (which must not be modified
// afterwards) and returns it.
func (in *interner[T]) get(key string, v *T) *T {
	in.mu.Lock()
	defer in.mu.Unlock()
	if p := in.m[key].Value(); p != nil {
		return p
	}
	if in.m == nil {
		in.m = map[string]weak.Pointer[T]{}
	}
	in.m[key] = weak.Make(v)
	runtime.AddCleanup(v, in.forget, key)
	return v
}

func (in *interner[T]) forget(key string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	// A newer value may have been interned under the key since.
	if in.m[key].Value() == nil {
		delete(in.m, key)
	}
}

var (
	labelsInterned    interner[labelSet]
	resourcesInterned interner[corev1.ResourceRequirements]
	ownersInterned    interner[metav1.OwnerReference]
)

// labelSet holds an interned label map. A weak pointer cannot point at a map itself, so
// every pod that uses the map holds its labelSet too, which keeps the entry alive.
type labelSet struct{ m map[string]string }

// internLabels returns a map equal to l that is shared with every other pod of the same
// labels, and the labelSet that the pod must hold while it uses the map.
func internLabels(l map[string]string) (map[string]string, *labelSet) {
	if len(l) == 0 {
		return l, nil
	}
	var b strings.Builder
	// Label keys and values cannot contain NUL.
	for _, k := range slices.Sorted(maps.Keys(l)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	s := labelsInterned.get(b.String(), &labelSet{m: l})
	return s.m, s
}

// internResources returns the shared copy of r (nil for nil).
func internResources(r *corev1.ResourceRequirements) *corev1.ResourceRequirements {
	if r == nil {
		return nil
	}
	var b strings.Builder
	list := func(l corev1.ResourceList) {
		for _, name := range slices.Sorted(maps.Keys(l)) {
			q := l[name]
			b.WriteString(string(name))
			b.WriteByte('=')
			b.WriteString(q.String())
			b.WriteByte(',')
		}
	}
	list(r.Requests)
	b.WriteByte(';')
	list(r.Limits)
	if len(r.Claims) > 0 {
		return r // rare; not worth a key
	}
	return resourcesInterned.get(b.String(), r)
}

// internOwners returns a slice equal to refs that shares its array with every other
// interned slice of the same owners.
func internOwners(refs []metav1.OwnerReference) []metav1.OwnerReference {
	if len(refs) == 0 {
		return refs
	}
	var b strings.Builder
	for i := range refs {
		r := &refs[i]
		b.WriteString(r.APIVersion + "|" + r.Kind + "|" + r.Name + "|" + string(r.UID) + "|")
		for _, f := range []*bool{r.Controller, r.BlockOwnerDeletion} {
			switch {
			case f == nil:
				b.WriteByte('-')
			case *f:
				b.WriteByte('t')
			default:
				b.WriteByte('f')
			}
		}
		b.WriteByte(';')
	}
	refs = slices.Clip(refs)
	first := ownersInterned.get(b.String(), &refs[0])
	// The key encodes len(refs) owners, so the interned array has that many elements.
	return unsafe.Slice(first, len(refs)) //nolint:gosec // see above
}

// canon replaces *s with the canonical copy of its value (package unique), for strings
// that many pods repeat: namespace, node and image names, phases, condition types and
// reasons. Strings unique to a pod (names, UIDs, IPs, container IDs, messages) are left
// alone: they would only fill unique's map.
func canon[S ~string](s *S) {
	if *s != "" {
		*s = S(unique.Make(string(*s)).Value())
	}
}

// canonStatus makes the repeated strings of a pod's status canonical. The status is the
// decoded object's own, not shared yet, so it may be changed in place.
func canonStatus(s *corev1.PodStatus) {
	canon(&s.Phase)
	canon(&s.QOSClass)
	for i := range s.Conditions {
		c := &s.Conditions[i]
		canon(&c.Type)
		canon(&c.Status)
		canon(&c.Reason)
	}
	for _, list := range [][]corev1.ContainerStatus{s.InitContainerStatuses, s.ContainerStatuses} {
		for i := range list {
			c := &list[i]
			canon(&c.Name)
			canon(&c.Image)
			canon(&c.ImageID)
			for _, st := range []*corev1.ContainerState{&c.State, &c.LastTerminationState} {
				if st.Waiting != nil {
					canon(&st.Waiting.Reason)
				}
				if st.Terminated != nil {
					canon(&st.Terminated.Reason)
				}
			}
			for j := range c.VolumeMounts {
				canon(&c.VolumeMounts[j].MountPath)
			}
		}
	}
}
