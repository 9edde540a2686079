package k8sinventoryreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
)

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default",
			Containers:         []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
}

// workloads creates one object of every kind the receiver reports in ns and waits for
// the controllers' ReplicaSet and pods, so that they are all in the initial snapshot.
func workloads(t *testing.T, cs *kubernetes.Clientset, ns string) {
	ctx := t.Context()
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"tier": "front"}},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: sel, Template: podTemplate("web")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1), ServiceName: "db",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Template: podTemplate("db"),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}}, Template: podTemplate("agent")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	jobTemplate := podTemplate("once")
	jobTemplate.Spec.RestartPolicy = corev1.RestartPolicyNever
	_, err = cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "once"},
		Spec:       batchv1.JobSpec{Template: jobTemplate},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 0 * * *", JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: jobTemplate},
		}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	bare := podTemplate("debug")
	bare.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "debug", Labels: bare.Labels},
		Spec:       bare.Spec,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{"team": "shop"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web-ingress"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *sel,
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(8080))}}}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	debug, err := cs.CoreV1().Pods(ns).Get(ctx, "debug", metav1.GetOptions{})
	require.NoError(t, err)
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	_, err = cs.CoreV1().Events(ns).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "debug.backoff"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "debug", UID: debug.UID, APIVersion: "v1"},
		Reason:         "BackOff", Message: "Back-off restarting failed container", Type: corev1.EventTypeWarning,
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, FirstTimestamp: now, LastTimestamp: now, Count: 3,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().Events(ns).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "debug.scheduled"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "debug"},
		Reason:         "Scheduled", Message: "normal events are not reported by default", Type: corev1.EventTypeNormal,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The controllers' objects: the ReplicaSet and the pods of the Deployment, StatefulSet and Job.
	require.Eventually(t, func() bool {
		rs, err1 := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		pods, err2 := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err1 == nil && err2 == nil && len(rs.Items) == 1 && len(pods.Items) == 4
	}, waitFor, tick)
}

func TestSnapshotThenDeltas(t *testing.T) {
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	ns := env.Namespace(t)
	workloads(t, cs, ns)
	ctx := t.Context()

	rc, _ := isolatedConfig(t, env)
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces.Include = []string{ns}
	sink := &consumertest.LogsSink{}
	r := testReceiver(t, cfg, rc, sink)
	host := &testutil.StatusHost{}
	require.NoError(t, r.Start(ctx, host))

	waitRecord(t, sink, "snapshot_complete", is(schema.EventInventorySnapshotComplete, ""))
	recs := records(sink)
	require.Equal(t, schema.EventInventorySnapshotStart, recs[0].event)
	complete := len(recs) - 1
	for i, r := range recs {
		if r.event == schema.EventInventorySnapshotComplete {
			complete = i
			break
		}
	}
	snapshot := recs[1:complete]
	for _, r := range snapshot {
		if r.event != schema.EventK8sEvent {
			assert.Equal(t, schema.ActionCreate, r.action, "snapshot records are creates: %v", r)
		}
	}
	workloadKinds := map[string]string{}
	for _, r := range find(snapshot, is(schema.EventInventoryWorkload, "")) {
		kind := r.str(schema.AttrWorkloadKind)
		workloadKinds[kind] = r.str(schema.WorkloadKinds[kind] + ".name")
		assert.Equal(t, "default", r.str(schema.AttrServiceAccountName))
		assert.NotEmpty(t, r.str(schema.AttrCreationTime))
	}
	assert.Equal(t, map[string]string{
		"Deployment": "web", "StatefulSet": "db", "DaemonSet": "agent", "Job": "once", "CronJob": "nightly", "Pod": "debug",
		"ReplicaSet": workloadKinds["ReplicaSet"],
	}, workloadKinds)
	assert.Contains(t, workloadKinds["ReplicaSet"], "web-")
	assert.Len(t, find(snapshot, is(schema.EventInventoryPod, "")), 4)
	assert.Len(t, find(snapshot, is(schema.EventInventoryNamespace, "", attr(schema.AttrK8sNamespaceName, ns))), 1)
	assert.Len(t, find(snapshot, is(schema.EventInventoryNamespace, "")), 1, "namespaces outside namespaces::include are left out")
	svc := find(snapshot, is(schema.EventInventoryService, ""))
	require.Len(t, svc, 1)
	assert.Equal(t, "shop", svc[0].attrs["k8s.service.annotation.team"])
	assert.Equal(t, []any{map[string]any{"name": "http", "protocol": "TCP", "port": int64(80), "target_port_name": "http"}}, svc[0].attrs[schema.AttrServicePorts])
	np := find(snapshot, is(schema.EventInventoryNetworkPolicy, ""))
	require.Len(t, np, 1)
	assert.Equal(t, []any{ns + ".Deployment.web"}, np[0].attrs[schema.AttrPolicyTargetWorkloads], "the pod's ReplicaSet resolves to its Deployment")
	assert.Equal(t, "Ingress", np[0].body.(map[string]any)["spec"].(map[string]any)["policyTypes"].([]any)[0])
	events := find(recs, is(schema.EventK8sEvent, ""))
	require.Len(t, events, 1, "only Warning events by default")
	assert.Equal(t, "BackOff", events[0].str(schema.AttrK8sEventReason))
	assert.Equal(t, "debug", events[0].str(schema.AttrK8sObjectName))
	assert.Equal(t, plog.SeverityNumberWarn, events[0].sev)
	assert.Equal(t, componentstatus.StatusOK, host.Last().Status())

	// Changes that no record carries produce nothing. The namespace label that follows is
	// processed after them, so once it arrives they were seen and skipped.
	before := len(records(sink))
	_, err := cs.CoreV1().Pods(ns).Patch(ctx, "debug", types.MergePatchType, []byte(`{"metadata":{"annotations":{"note":"x"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().Services(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"sessionAffinity":"ClientIP"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(`{"metadata":{"annotations":{"note":"x"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(`{"metadata":{"labels":{"team":"shop"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	nsUpdate := waitRecord(t, sink, "namespace label update", is(schema.EventInventoryNamespace, schema.ActionUpdate))
	assert.Equal(t, "shop", nsUpdate.attrs[schema.AttrK8sNamespaceLabelPrefix+"team"])
	assert.Equal(t, []rec{nsUpdate}, records(sink)[before:], "only the label change is news")

	// Updates of each kind.
	_, err = cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"metadata":{"labels":{"tier":"back"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	dep := waitRecord(t, sink, "deployment update", is(schema.EventInventoryWorkload, schema.ActionUpdate, attr(schema.AttrWorkloadKind, "Deployment")))
	assert.Equal(t, "back", dep.attrs["k8s.deployment.label.tier"])
	_, err = cs.CoreV1().Pods(ns).Patch(ctx, "debug", types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"web"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	waitRecord(t, sink, "pod update", is(schema.EventInventoryPod, schema.ActionUpdate, attr(schema.AttrK8sPodName, "debug")))
	waitRecord(t, sink, "bare pod workload update", is(schema.EventInventoryWorkload, schema.ActionUpdate, attr(schema.AttrWorkloadKind, "Pod")))
	// debug now has app=web: the policy's targets grow.
	npUpdate := waitRecord(t, sink, "policy targets update", is(schema.EventInventoryNetworkPolicy, schema.ActionUpdate))
	assert.Equal(t, []any{ns + ".Deployment.web", ns + ".Pod.debug"}, npUpdate.attrs[schema.AttrPolicyTargetWorkloads])

	// A status that looks like CrashLoopBackOff (set through the status subresource, as a
	// kubelet would) is an incident.
	debug, err := cs.CoreV1().Pods(ns).Get(ctx, "debug", metav1.GetOptions{})
	require.NoError(t, err)
	debug.Status.Phase = corev1.PodRunning
	debug.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "app", Image: "registry.k8s.io/pause:3.10", RestartCount: 4,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 1m20s"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}},
	}}
	_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, debug, metav1.UpdateOptions{})
	require.NoError(t, err)
	change := waitRecord(t, sink, "pod status change", is(schema.EventPodStatusChange, schema.ActionUpdate, attr(schema.AttrK8sPodName, "debug")))
	assert.Equal(t, plog.SeverityNumberWarn, change.sev)
	assert.Equal(t, int64(4), change.attrs[schema.AttrPodRestartCount])
	assert.Equal(t, int64(100_000_000), change.attrs[schema.AttrPodCPURequest])
	assert.Equal(t, int64(32<<20), change.attrs[schema.AttrPodMemoryRequest])
	assert.Equal(t, int64(0), change.attrs[schema.AttrPodCPULimit])
	statuses := change.body.(map[string]any)["status"].(map[string]any)["containerStatuses"].([]any)
	assert.Equal(t, "CrashLoopBackOff", statuses[0].(map[string]any)["state"].(map[string]any)["waiting"].(map[string]any)["reason"])

	// Deletes.
	require.NoError(t, cs.CoreV1().Pods(ns).Delete(ctx, "debug", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	waitRecord(t, sink, "pod delete", is(schema.EventInventoryPod, schema.ActionDelete, attr(schema.AttrK8sPodName, "debug")))
	waitRecord(t, sink, "bare pod workload delete", is(schema.EventInventoryWorkload, schema.ActionDelete, attr(schema.AttrWorkloadKind, "Pod")))
	waitRecord(t, sink, "problematic pod delete", is(schema.EventPodStatusChange, schema.ActionDelete))
	require.NoError(t, cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, "web-ingress", metav1.DeleteOptions{}))
	waitRecord(t, sink, "policy delete", is(schema.EventInventoryNetworkPolicy, schema.ActionDelete))
	require.NoError(t, cs.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}))
	waitRecord(t, sink, "service delete", is(schema.EventInventoryService, schema.ActionDelete))
	require.NoError(t, cs.BatchV1().CronJobs(ns).Delete(ctx, "nightly", metav1.DeleteOptions{}))
	waitRecord(t, sink, "cronjob delete", is(schema.EventInventoryWorkload, schema.ActionDelete, attr(schema.AttrWorkloadKind, "CronJob")))
	require.NoError(t, cs.AppsV1().DaemonSets(ns).Delete(ctx, "agent", metav1.DeleteOptions{}))
	waitRecord(t, sink, "daemonset delete", is(schema.EventInventoryWorkload, schema.ActionDelete, attr(schema.AttrWorkloadKind, "DaemonSet")))
}

func TestNoInformerOutlivesShutdown(t *testing.T) {
	env := kubeenv.Shared(t)
	before := k8scache.Running()
	rc, _ := isolatedConfig(t, env)
	sink := &consumertest.LogsSink{}
	r := testReceiver(t, createDefaultConfig().(*Config), rc, sink)
	require.NoError(t, r.Start(t.Context(), &testutil.StatusHost{}))
	waitRecord(t, sink, "snapshot_complete", is(schema.EventInventorySnapshotComplete, ""))
	assert.Greater(t, k8scache.Running(), before)
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Equal(t, before, k8scache.Running())
}
