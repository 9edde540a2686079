package slim

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func TestPodsOfOneReplicaSetShareLabelsResourcesAndOwners(t *testing.T) {
	pod := func(name, cpu string, owner string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": owner}, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner, UID: types.UID("uid-" + owner), Controller: ptr.To(true),
			}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("64Mi")},
			}}}},
		}
	}
	a, b, c := NewPod(pod("a", "100m", "web-1")), NewPod(pod("b", "100m", "web-1")), NewPod(pod("c", "200m", "web-2"))
	assert.Same(t, a.Spec.Resources, b.Spec.Resources)
	assert.Equal(t, reflect.ValueOf(a.Labels).Pointer(), reflect.ValueOf(b.Labels).Pointer(), "one label map")
	assert.NotEqual(t, reflect.ValueOf(a.Labels).Pointer(), reflect.ValueOf(c.Labels).Pointer())
	assert.Equal(t, map[string]string{"app": "web-2"}, c.Labels)
	assert.Same(t, &a.OwnerReferences[0], &b.OwnerReferences[0])
	assert.NotSame(t, a.Spec.Resources, c.Spec.Resources)
	assert.NotSame(t, &a.OwnerReferences[0], &c.OwnerReferences[0])
	assert.Equal(t, "200m", c.Spec.Resources.Requests.Cpu().String())
	assert.Equal(t, "web-2", c.OwnerReferences[0].Name)
	assert.Len(t, b.OwnerReferences, 1)
}
