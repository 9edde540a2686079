package k8sinventoryreceiver

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// BenchmarkRecordAttributes builds the attributes of a pod, a Deployment, a service and a
// node twice and compares them, as an update that changes nothing the records carry does.
// This is the receiver's cost per informer update, without the apiserver.
func BenchmarkRecordAttributes(b *testing.B) {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name: name, Namespace: "prod", UID: types.UID(name + "-uid"), CreationTimestamp: metav1.Unix(1767225600, 0),
			Labels: map[string]string{"app": "web", "tier": "front", "team": "shop", "version": "v1"},
		}
	}
	full := &corev1.Pod{ObjectMeta: meta("web-5d4f-x"), Spec: podTemplate("web").Spec, Status: corev1.PodStatus{
		PodIP: "10.0.0.7", Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
	}}
	full.Spec.NodeName = "worker-1"
	full.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d4f", UID: "rs-uid", Controller: ptr.To(true)}}
	pod := slim.NewPod(full)
	dep := &appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{Template: podTemplate("web")}}
	svc := &corev1.Service{ObjectMeta: meta("web"), Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
		Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
	}}
	node := &corev1.Node{ObjectMeta: meta("worker-1"), Status: corev1.NodeStatus{
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.1.0.1"}, {Type: corev1.NodeHostName, Address: "worker-1"}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
	}}
	deployment, _ := schema.WorkloadFields("Deployment")
	builds := []func(pcommon.Map){
		func(m pcommon.Map) { schema.PodFields.Put(m, pod) },
		func(m pcommon.Map) { deployment.Put(m, deploymentView(dep)) },
		func(m pcommon.Map) { schema.ServiceFields.Put(m, svc) },
		func(m pcommon.Map) { schema.NodeFields.Put(m, node) },
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, build := range builds {
			cur, old := pcommon.NewMap(), pcommon.NewMap()
			build(cur)
			build(old)
			if !cur.Equal(old) {
				b.Fatal(fmt.Sprint(cur.AsRaw()))
			}
		}
	}
}

// BenchmarkPodUpdate runs the receiver's handler on the two pod updates of issue 16's load:
// a label change (one inventory record) and a status update that changes nothing a record
// carries (none). This is the receiver's part of the update path, without the informer.
func BenchmarkPodUpdate(b *testing.B) {
	c := newCollector(&inventoryReceiver{cfg: createDefaultConfig().(*Config)}, nil)
	c.newBatch()
	old := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "app-001-5d4f-x7k2p", Namespace: "inv-01", UID: "0b7e4c1a-2f7d-4d2a-9a6c-3d1f0e5b8c71", CreationTimestamp: metav1.Unix(1767225600, 0),
		Labels:          map[string]string{"app": "app-001", "pod-template-hash": "5d4f"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "app-001-5d4f", UID: "rs-uid", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
	}, Spec: podTemplate("app-001").Spec, Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable}}
	relabelled := old.DeepCopy()
	relabelled.Labels["rev"] = "u1"
	restamped := relabelled.DeepCopy()
	restamped.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable"}}
	b.ReportAllocs()
	for b.Loop() {
		c.handle(item{op: opUpdate, old: old, obj: relabelled})
		c.handle(item{op: opUpdate, old: relabelled, obj: restamped})
		if c.lrs.Len() != 1 {
			b.Fatalf("%d records, want 1", c.lrs.Len())
		}
		c.lrs.RemoveIf(func(plog.LogRecord) bool { return true })
	}
}
