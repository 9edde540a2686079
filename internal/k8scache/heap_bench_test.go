package k8scache

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
)

// BenchmarkCachedPodHeap reports the heap that one cached pod costs after the cache's
// transform, without an apiserver: pods are decoded from protobuf as the informer decodes
// them, turned into what the cache keeps, and kept, 20 per ReplicaSet as in bench-e2e's
// cluster (a pending pod of a Deployment with one container, requests, labels and a
// 64-byte annotation). "running" gives the same pods the status a kubelet writes for a
// running container (five conditions, a container status, IPs), which the cache keeps
// whole because the cloud receives it. The informer's index (a key and a map entry per
// pod) comes on top.
func BenchmarkCachedPodHeap(b *testing.B) {
	b.Run("pending", func(b *testing.B) { benchmarkCachedPodHeap(b, false) })
	b.Run("running", func(b *testing.B) { benchmarkCachedPodHeap(b, true) })
}

func benchmarkCachedPodHeap(b *testing.B, running bool) {
	const n = 10_000
	raws := make([][]byte, n)
	for i := range raws {
		raw, err := benchPod(i, running).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		raws[i] = raw
	}
	transform := Pods.transformFunc()
	var perPod float64
	for b.Loop() {
		pods := make([]*slim.Pod, n)
		before := heapInUse()
		for i, raw := range raws {
			p := &corev1.Pod{}
			if err := p.Unmarshal(raw); err != nil {
				b.Fatal(err)
			}
			obj, _ := transform(p)
			pods[i] = obj.(*slim.Pod)
		}
		perPod = float64(heapInUse()-before) / n
		runtime.KeepAlive(pods)
	}
	b.ReportMetric(perPod, "heap-B/cached-pod")
}

// BenchmarkPodEventDecode is what the informer does with each pod update of bench-e2e's
// label changes before any handler sees it, in a hot loop: decode the pod from protobuf,
// with the managedFields of the controller-manager that created it and of the patch, and
// turn it into what the cache keeps. (The whole process spends about 200-400 µs of CPU per
// such update: docs/benchmarks.md, "The floor".)
func BenchmarkPodEventDecode(b *testing.B) {
	p := benchPod(7, false)
	p.Labels["rev"] = "u1"
	at := metav1.Unix(1767225600, 0)
	p.ManagedFields = []metav1.ManagedFieldsEntry{
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &at, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(
			`{"f:metadata":{"f:annotations":{".":{},"f:example.com/config":{}},"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{},"f:tier":{}},` +
				`"f:ownerReferences":{".":{},"k:{\"uid\":\"rs-uid-app-000-5d4f9c\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:env":{".":{},` +
				`"k:{\"name\":\"MODE\"}":{".":{},"f:name":{},"f:value":{}}},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},` +
				`"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}}},"f:resources":{".":{},"f:requests":{".":{},` +
				`"f:cpu":{},"f:memory":{}}},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},` +
				`"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}`)},
		{Manager: "bench-e2e", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &at, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(
			`{"f:metadata":{"f:labels":{"f:rev":{}}}}`)},
	}
	raw, err := p.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	transform := Pods.transformFunc()
	b.ReportAllocs()
	for b.Loop() {
		p := &corev1.Pod{}
		if err := p.Unmarshal(raw); err != nil {
			b.Fatal(err)
		}
		if _, err := transform(p); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPod is the i-th pod of bench-e2e's cluster, 20 per ReplicaSet (a pending pod of a
// Deployment with one container, requests, labels and a 64-byte annotation); running gives
// it the status a kubelet writes.
func benchPod(i int, running bool) *corev1.Pod {
	const perReplicaSet = 20
	rs := fmt.Sprintf("app-%03d-5d4f9c", i/perReplicaSet)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%05d", rs, i), GenerateName: rs + "-", Namespace: fmt.Sprintf("inv-%02d", i%50),
			UID: types.UID(fmt.Sprintf("0b7c5c7e-1f2a-4d7b-9a8e-%012d", i)), ResourceVersion: fmt.Sprint(100000 + i),
			CreationTimestamp: metav1.Unix(1767225600, 0),
			Labels:            map[string]string{"app": rs[:7], "tier": "backend", "pod-template-hash": "5d4f9c"},
			Annotations:       map[string]string{"example.com/config": string(make([]byte, 64))},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs, UID: types.UID("rs-uid-" + rs),
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default",
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.k8s.io/pause:3.10",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "bench"}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
				}},
			}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable},
	}
	if running {
		p.Spec.NodeName = fmt.Sprintf("node-%02d", i%20)
		p.Status = runningStatus(i)
	}
	return p
}

// runningStatus is the status of a running pod of one container as the kubelet reports it.
func runningStatus(i int) corev1.PodStatus {
	started := metav1.Unix(1767225700, 0)
	ip := fmt.Sprintf("10.244.%d.%d", i/250, i%250)
	host := fmt.Sprintf("10.0.0.%d", i%20)
	cond := func(t corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: started}
	}
	return corev1.PodStatus{
		Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBurstable, StartTime: &started,
		HostIP: host, HostIPs: []corev1.HostIP{{IP: host}}, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{
			cond(corev1.PodReadyToStartContainers), cond(corev1.PodInitialized), cond(corev1.PodReady),
			cond(corev1.ContainersReady), cond(corev1.PodScheduled),
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", Ready: true, Started: ptr.To(true),
			Image: "registry.k8s.io/pause:3.10", ImageID: "registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
			ContainerID: fmt.Sprintf("containerd://%064d", i),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
			VolumeMounts: []corev1.VolumeMountStatus{{
				Name: "kube-api-access-x7k2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true,
				RecursiveReadOnly: ptr.To(corev1.RecursiveReadOnlyDisabled),
			}},
		}},
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
