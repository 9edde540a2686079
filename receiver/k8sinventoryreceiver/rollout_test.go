package k8sinventoryreceiver

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/logmap"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
)

// statusRecords returns the status records (rollout, pod status, node condition) the sink
// got, by object UID, in order.
func statusRecords(sink *consumertest.LogsSink) map[string][]plog.LogRecord {
	out := map[string][]plog.LogRecord{}
	for lr := range testutil.LogRecords(sink.AllLogs()...) {
		var uidKey string
		switch lr.EventName() {
		case schema.EventWorkloadRolloutStatus:
			kind, _ := lr.Attributes().Get(schema.AttrWorkloadKind)
			uidKey = schema.WorkloadKinds[kind.Str()] + ".uid"
		case schema.EventPodStatusChange:
			uidKey = schema.AttrK8sPodUID
		case schema.EventNodeConditionChange:
			uidKey = schema.AttrK8sNodeUID
		default:
			continue
		}
		uid, _ := lr.Attributes().Get(uidKey)
		out[lr.EventName()+"/"+uid.Str()] = append(out[lr.EventName()+"/"+uid.Str()], lr)
	}
	return out
}

func rolloutSummary(lr plog.LogRecord) string {
	get := func(k string) string {
		v, _ := lr.Attributes().Get(k)
		return v.AsString()
	}
	var conds []string
	if body, ok := lr.Body().Map().Get("status"); ok {
		if cs, ok := body.Map().Get("conditions"); ok {
			for _, c := range cs.Slice().AsRaw() {
				m := c.(map[string]any)
				conds = append(conds, fmt.Sprintf("%v=%v(%v)", m["type"], m["status"], m["reason"]))
			}
		}
	}
	return fmt.Sprintf("%s/%s ready=%s updated=%s %v", get(schema.AttrRolloutStatus), get(schema.AttrRolloutReason), get(schema.AttrRolloutReadyReplicas), get(schema.AttrRolloutUpdatedReplicas), conds)
}

// requireNoRepeats fails when two consecutive status records of one object map to the same
// cloud.v1 message (apart from its time and action).
func requireNoRepeats(t *testing.T, byObject map[string][]plog.LogRecord) {
	t.Helper()
	for obj, recs := range byObject {
		for i := 1; i < len(recs); i++ {
			a, okA := logmap.Fingerprint(recs[i-1])
			b, okB := logmap.Fingerprint(recs[i])
			require.True(t, okA && okB, "%s: records map to cloud.v1 messages", obj)
			assert.NotEqual(t, a, b, "%s: record %d repeats record %d: %v", obj, i, i-1, recs[i].Attributes().AsRaw())
		}
	}
}

// pendingDeployment is a Deployment whose pods never run: there is no kubelet, so they
// stay Pending and the controller-manager reports the progress deadline once it passes.
func pendingDeployment(name string, replicas, deadline int32) *appsv1.Deployment {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas), Selector: sel, Template: podTemplate(name),
			ProgressDeadlineSeconds: ptr.To(deadline),
		},
	}
}

// TestRolloutProgressDeadline drives the controller-manager through a Deployment's progress
// deadline and checks the rollout records: the rollout progresses (records while the
// controller creates the ReplicaSet and its pods), then times out exactly once with the
// ProgressDeadlineExceeded reason, and then nothing more is reported although the
// controller keeps resyncing the Deployment.
func TestRolloutProgressDeadline(t *testing.T) {
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	ns := env.Namespace(t)
	ctx := t.Context()

	rc, _ := isolatedConfig(t, env)
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces.Include = []string{ns}
	sink := &consumertest.LogsSink{}
	r := testReceiver(t, cfg, rc, sink)
	require.NoError(t, r.Start(ctx, &testutil.StatusHost{}))
	waitRecord(t, sink, "snapshot_complete", is(schema.EventInventorySnapshotComplete, ""))

	d, err := cs.AppsV1().Deployments(ns).Create(ctx, pendingDeployment("stuck", 2, 3), metav1.CreateOptions{})
	require.NoError(t, err)
	waitRecord(t, sink, "rollout timed out", is(schema.EventWorkloadRolloutStatus, "", attr(schema.AttrRolloutReason, "ProgressDeadlineExceeded")))
	// The controller resyncs and re-checks the deadline; a relabel changes the Deployment
	// (a new resourceVersion) without changing its rollout.
	_, err = cs.AppsV1().Deployments(ns).Patch(ctx, "stuck", types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	waitRecord(t, sink, "relabelled workload", is(schema.EventInventoryWorkload, schema.ActionUpdate, attr(schema.WorkloadKinds["Deployment"]+".name", "stuck")))
	time.Sleep(5 * time.Second)

	recs := statusRecords(sink)[schema.EventWorkloadRolloutStatus+"/"+string(d.UID)]
	var got []string
	for _, lr := range recs {
		got = append(got, rolloutSummary(lr))
	}
	// The deployment controller first creates the ReplicaSet (Progressing), then reports
	// the pods' availability (Available=False), and after three seconds without progress the
	// deadline. Replica counts changing in between are not rollout news (rolloutChanged).
	assert.Equal(t, []string{
		"Progressing/NewReplicaSetCreated ready=0 updated=0 [Progressing=True(NewReplicaSetCreated)]",
		"Progressing/NewReplicaSetCreated ready=0 updated=0 [Progressing=True(NewReplicaSetCreated) Available=False(MinimumReplicasUnavailable)]",
		"TimedOut/ProgressDeadlineExceeded ready=0 updated=2 [Available=False(MinimumReplicasUnavailable) Progressing=False(ProgressDeadlineExceeded)]",
	}, got)
	requireNoRepeats(t, statusRecords(sink))
	t.Logf("rollout records: %v", got)
}

// TestNoStatusRecordWithoutChange runs the receiver for a while next to an active
// controller-manager (Deployments and a StatefulSet whose pods stay Pending, progress
// deadlines passing, scaling, relabelling, pod status written as a kubelet would) and
// checks that no status record repeats the cloud.v1 message last sent for its object.
func TestNoStatusRecordWithoutChange(t *testing.T) {
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	ns := env.Namespace(t)
	ctx := t.Context()

	rc, _ := isolatedConfig(t, env)
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces.Include = []string{ns}
	sink := &consumertest.LogsSink{}
	r := testReceiver(t, cfg, rc, sink)
	for i, deadline := range []int32{2, 4, 600} {
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, pendingDeployment(fmt.Sprintf("d%d", i), 2, deadline), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](2), ServiceName: "db",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Template: podTemplate("db"),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx, &testutil.StatusHost{}))
	waitRecord(t, sink, "snapshot_complete", is(schema.EventInventorySnapshotComplete, ""))

	run := 40 * time.Second
	if testing.Short() {
		run = 15 * time.Second
	}
	patch := func(kind, name, body string) {
		var err error
		switch kind {
		case "deployment":
			_, err = cs.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, []byte(body), metav1.PatchOptions{})
		case "pod-status":
			_, err = cs.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, []byte(body), metav1.PatchOptions{}, "status")
		}
		require.NoError(t, err)
	}
	end := time.Now().Add(run)
	for i := 0; time.Now().Before(end); i++ {
		patch("deployment", "d0", fmt.Sprintf(`{"metadata":{"labels":{"round":"%d"}}}`, i))
		switch i % 6 {
		case 1:
			patch("deployment", "d2", `{"spec":{"replicas":3}}`)
		case 4:
			patch("deployment", "d2", `{"spec":{"replicas":2}}`)
		}
		// Written as a kubelet would: a pod of the StatefulSet fails to pull its image, and
		// its status is then rewritten with only the probe time moving.
		if pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=db"}); err == nil && len(pods.Items) > 0 {
			probe := time.Now().UTC().Format(time.RFC3339)
			patch("pod-status", pods.Items[0].Name, fmt.Sprintf(`{"status":{"phase":"Pending","conditions":[{"type":"Ready","status":"False","lastProbeTime":%q}],`+
				`"containerStatuses":[{"name":"app","image":"registry.k8s.io/pause:3.10","imageID":"","ready":false,"restartCount":0,"state":{"waiting":{"reason":"ImagePullBackOff"}}}]}}`, probe))
		}
		time.Sleep(time.Second)
	}
	time.Sleep(2 * time.Second)

	byObject := statusRecords(sink)
	rollouts, podStatus := 0, 0
	for obj, recs := range byObject {
		switch {
		case len(obj) > len(schema.EventWorkloadRolloutStatus) && obj[:len(schema.EventWorkloadRolloutStatus)] == schema.EventWorkloadRolloutStatus:
			rollouts += len(recs)
		default:
			podStatus += len(recs)
		}
	}
	require.NotZero(t, rollouts, "the controller-manager's changes were reported")
	require.NotZero(t, podStatus, "the pod's failure was reported")
	requireNoRepeats(t, byObject)
	t.Logf("%d rollout and %d pod status records over %v", rollouts, podStatus, run)
}
