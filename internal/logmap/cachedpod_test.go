package logmap

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// TestCachedPodMapsAsTheWholePod: the Pod message of a pod as the cache keeps it
// (slim.Pod) is, byte for byte, the one the whole corev1.Pod mapped to before the cache had
// a type of its own (the expected message below is what that path produced).
func TestCachedPodMapsAsTheWholePod(t *testing.T) {
	created := metav1.Unix(1767225600, 0)
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-5d4f-x", GenerateName: "web-5d4f-", Namespace: "prod", UID: "pod-uid", ResourceVersion: "42", Generation: 3,
			CreationTimestamp: created, Finalizers: []string{"example.com/f"},
			Labels:      map[string]string{"app": "web", "pod-template-hash": "5d4f"},
			Annotations: map[string]string{"example.com/note": "not sent"},
			OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d4f", UID: "rs-uid", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)},
				{APIVersion: "v1", Kind: "ConfigMap", Name: "cm", UID: "cm-uid"},
			},
		},
		Spec: corev1.PodSpec{
			NodeName: "worker-1", ServiceAccountName: "web",
			Containers: []corev1.Container{{Name: "app", Image: "nginx", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
			}}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.7", HostIP: "10.1.0.1", QOSClass: corev1.PodQOSBurstable,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: created},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
		},
	}
	for _, action := range []string{schema.ActionCreate, schema.ActionUpdate, schema.ActionDelete} {
		attrs := pcommon.NewMap()
		schema.PodFields.Put(attrs, slim.NewPod(full))
		attrs.PutStr(schema.AttrAction, action)
		got := mapOne(t, rec{eventName: schema.EventInventoryPod, attrs: attrs.AsRaw()})

		want := &cloudv1.Pod{
			Name: "web-5d4f-x", Namespace: "prod", Uid: "pod-uid", PodIp: "10.0.0.7", Phase: "Running", Ready: true,
			Labels: map[string]string{"app": "web", "pod-template-hash": "5d4f"},
			OwnerReferences: []*cloudv1.OwnerReference{
				{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d4f", Uid: "rs-uid", Controller: true, BlockOwnerDeletion: true},
				{ApiVersion: "v1", Kind: "ConfigMap", Name: "cm", Uid: "cm-uid"},
			},
			CreatedAt: timestamppb.New(created.Time),
			Action:    map[string]cloudv1.Action{schema.ActionCreate: cloudv1.Action_ACTION_CREATE, schema.ActionUpdate: cloudv1.Action_ACTION_UPDATE, schema.ActionDelete: cloudv1.Action_ACTION_DELETE}[action],
		}
		det := proto.MarshalOptions{Deterministic: true}
		gotBytes, err := det.Marshal(got)
		require.NoError(t, err)
		wantBytes, err := det.Marshal(want)
		require.NoError(t, err)
		require.Equal(t, wantBytes, gotBytes, "%v", got)
	}
}
