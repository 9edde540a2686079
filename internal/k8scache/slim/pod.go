// Package slim holds the slimmed types that internal/k8scache keeps instead of the API's
// own, for kinds whose full objects would dominate the collector's memory. It depends on
// the API types only, so that packages without a Kubernetes client (internal/schema) can
// read cached objects too.
package slim // import "github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Pod is what the cache keeps of a pod, and the one place that says which of a pod's
// fields are kept: k8scache's transform builds it from the decoded corev1.Pod
// (NewPod), and every consumer reads it, so a field a consumer needs is added here. A
// corev1.Pod is a 1,240-byte struct before any of its strings, most of it spec and status
// fields nobody reads; this type is a third of that. Field names and types are those of
// corev1.Pod, so code reads both alike. Like every cached object it is shared and must
// not be modified.
type Pod struct {
	// ObjectMeta keeps the name, namespace, UID, resourceVersion, generation, creation and
	// deletion times, labels and owner references (labels and owners shared by the pods of
	// one controller, intern.go); no annotations, finalizers or managedFields. It makes Pod a metav1.Object
	// for the informer's key and index functions.
	metav1.ObjectMeta

	Spec   PodSpec
	Status PodStatus

	// labels keeps the interned ObjectMeta.Labels alive (intern.go).
	labels *labelSet
}

// PodSpec is what is kept of a pod's spec.
type PodSpec struct {
	NodeName           string
	ServiceAccountName string
	// Resources are spec.resources, or else the sum of the containers' requests and limits
	// (nil when there are none); the pods of one ReplicaSet share them (intern.go).
	Resources *corev1.ResourceRequirements
}

// PodStatus is what is kept of a pod's status: what the inventory's records and incident
// rules read (the conditions and container statuses go to the cloud whole).
type PodStatus struct {
	Phase                 corev1.PodPhase
	PodIP                 string
	QOSClass              corev1.PodQOSClass
	Conditions            []corev1.PodCondition
	InitContainerStatuses []corev1.ContainerStatus
	ContainerStatuses     []corev1.ContainerStatus
}

var _ interface {
	metav1.Object
	runtime.Object
} = (*Pod)(nil)

// NewPod returns what the cache keeps of p. The result shares p's strings, maps and status
// slices, and p's repeated strings are replaced, in place, by equal canonical copies
// (intern.go); p must not be modified afterwards.
func NewPod(p *corev1.Pod) *Pod {
	res := p.Spec.Resources
	if res == nil && len(p.Spec.Containers) > 0 {
		res = sumResources(p.Spec.Containers)
	}
	labels, labelsRef := internLabels(p.Labels)
	canonStatus(&p.Status)
	canon(&p.Namespace)
	canon(&p.Spec.NodeName)
	canon(&p.Spec.ServiceAccountName)
	return &Pod{
		labels: labelsRef,
		ObjectMeta: metav1.ObjectMeta{
			Name:                       p.Name,
			Namespace:                  p.Namespace,
			UID:                        p.UID,
			ResourceVersion:            p.ResourceVersion,
			Generation:                 p.Generation,
			CreationTimestamp:          p.CreationTimestamp,
			DeletionTimestamp:          p.DeletionTimestamp,
			DeletionGracePeriodSeconds: p.DeletionGracePeriodSeconds,
			Labels:                     labels,
			OwnerReferences:            internOwners(p.OwnerReferences),
		},
		Spec: PodSpec{
			NodeName:           p.Spec.NodeName,
			ServiceAccountName: p.Spec.ServiceAccountName,
			Resources:          internResources(res),
		},
		Status: PodStatus{
			Phase:                 p.Status.Phase,
			PodIP:                 p.Status.PodIP,
			QOSClass:              p.Status.QOSClass,
			Conditions:            p.Status.Conditions,
			InitContainerStatuses: p.Status.InitContainerStatuses,
			ContainerStatuses:     p.Status.ContainerStatuses,
		},
	}
}

// GetObjectKind implements runtime.Object: cached objects carry no type information.
func (*Pod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object.
func (p *Pod) DeepCopyObject() runtime.Object {
	if c := p.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopy returns a copy of p that shares nothing with it.
func (p *Pod) DeepCopy() *Pod {
	if p == nil {
		return nil
	}
	out := new(Pod)
	p.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies p into out, sharing nothing with p.
func (p *Pod) DeepCopyInto(out *Pod) {
	*out = *p
	out.labels = nil // the copy's labels are a map of its own, not the interned one
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec.Resources = p.Spec.Resources.DeepCopy()
	status := (&corev1.PodStatus{
		Conditions:            p.Status.Conditions,
		InitContainerStatuses: p.Status.InitContainerStatuses,
		ContainerStatuses:     p.Status.ContainerStatuses,
	}).DeepCopy()
	out.Status.Conditions = status.Conditions
	out.Status.InitContainerStatuses = status.InitContainerStatuses
	out.Status.ContainerStatuses = status.ContainerStatuses
}

// sumResources adds up the containers' requests and limits; nil when there are none.
func sumResources(cs []corev1.Container) *corev1.ResourceRequirements {
	var req, lim corev1.ResourceList
	add := func(dst *corev1.ResourceList, src corev1.ResourceList) {
		for name, q := range src {
			if *dst == nil {
				*dst = corev1.ResourceList{}
			}
			sum := (*dst)[name]
			sum.Add(q)
			(*dst)[name] = sum
		}
	}
	for i := range cs {
		add(&req, cs[i].Resources.Requests)
		add(&lim, cs[i].Resources.Limits)
	}
	if req == nil && lim == nil {
		return nil
	}
	return &corev1.ResourceRequirements{Requests: req, Limits: lim}
}
