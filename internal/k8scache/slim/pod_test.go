package slim

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestNewPodKeepsWhatConsumersRead(t *testing.T) {
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-x", GenerateName: "web-", Namespace: "prod", UID: "uid", ResourceVersion: "7", Generation: 2,
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"}, Finalizers: []string{"f"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web", UID: "rs", Controller: ptr.To(true)}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: corev1.PodSpec{
			NodeName: "n1", ServiceAccountName: "sa", HostNetwork: true,
			Containers: []corev1.Container{
				{Name: "a", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}},
				{Name: "b", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("150m")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				}},
			},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.1", HostIP: "10.1.0.1", QOSClass: corev1.PodQOSBurstable,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "a", Image: "nginx", RestartCount: 2, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}}},
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "init"}},
		},
	}
	want := full.DeepCopy() // NewPod makes repeated strings canonical in place
	p := NewPod(full)
	assert.Equal(t, metav1.ObjectMeta{
		Name: "web-x", Namespace: "prod", UID: "uid", ResourceVersion: "7", Generation: 2,
		Labels: map[string]string{"app": "web"}, OwnerReferences: want.OwnerReferences,
	}, p.ObjectMeta)
	assert.Equal(t, "n1", p.Spec.NodeName)
	assert.Equal(t, "sa", p.Spec.ServiceAccountName)
	require.NotNil(t, p.Spec.Resources)
	assert.Equal(t, "250m", p.Spec.Resources.Requests.Cpu().String(), "the containers' requests, summed")
	assert.Equal(t, "1Gi", p.Spec.Resources.Limits.Memory().String())
	assert.Equal(t, PodStatus{
		Phase: corev1.PodRunning, PodIP: "10.0.0.1", QOSClass: corev1.PodQOSBurstable,
		Conditions: want.Status.Conditions, ContainerStatuses: want.Status.ContainerStatuses, InitContainerStatuses: want.Status.InitContainerStatuses,
	}, p.Status)

	c, ok := p.DeepCopyObject().(*Pod)
	require.True(t, ok)
	assert.Equal(t, p.ObjectMeta, c.ObjectMeta)
	assert.Equal(t, p.Spec, c.Spec)
	assert.Equal(t, p.Status, c.Status)
	assert.NotEqual(t, reflect.ValueOf(p.Labels).Pointer(), reflect.ValueOf(c.Labels).Pointer(), "the copy shares nothing")
	assert.NotSame(t, p.Spec.Resources, c.Spec.Resources)
	assert.NotSame(t, &p.Status.ContainerStatuses[0], &c.Status.ContainerStatuses[0])
	assert.NotSame(t, p.Status.ContainerStatuses[0].State.Running, c.Status.ContainerStatuses[0].State.Running)
	assert.Nil(t, (*Pod)(nil).DeepCopy())
}
