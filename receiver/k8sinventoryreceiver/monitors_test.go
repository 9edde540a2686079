package k8sinventoryreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func runningPod() *slim.Pod {
	return &slim.Pod{Status: slim.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
		},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
	}}
}

func TestPodProblematic(t *testing.T) {
	tests := map[string]struct {
		mutate func(*slim.Pod)
		want   bool
	}{
		"running":    {func(*slim.Pod) {}, false},
		"failed":     {func(p *slim.Pod) { p.Status.Phase = corev1.PodFailed }, true},
		"unknown":    {func(p *slim.Pod) { p.Status.Phase = corev1.PodUnknown }, true},
		"succeeded":  {func(p *slim.Pod) { p.Status.Phase = corev1.PodSucceeded }, false},
		"crash loop": {func(p *slim.Pod) { p.Status.ContainerStatuses[0].State = waiting("CrashLoopBackOff") }, true},
		"image pull": {func(p *slim.Pod) { p.Status.ContainerStatuses[0].State = waiting("ErrImagePull") }, true},
		"creating":   {func(p *slim.Pod) { p.Status.ContainerStatuses[0].State = waiting("ContainerCreating") }, false},
		"oom killed": {func(p *slim.Pod) { p.Status.ContainerStatuses[0].State = terminated("OOMKilled") }, true},
		"completed":  {func(p *slim.Pod) { p.Status.ContainerStatuses[0].State = terminated("Completed") }, false},
		"init crash loop": {func(p *slim.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{State: waiting("CrashLoopBackOff")}}
		}, true},
		"3 restarts": {func(p *slim.Pod) { p.Status.ContainerStatuses[0].RestartCount = 3 }, true},
		"2 restarts": {func(p *slim.Pod) { p.Status.ContainerStatuses[0].RestartCount = 2 }, false},
		"not ready for 3 minutes": {func(p *slim.Pod) {
			p.Status.Conditions[0] = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(now.Add(-3 * time.Minute))}
		}, true},
		"not ready for 1 minute": {func(p *slim.Pod) {
			p.Status.Conditions[0] = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}
		}, false},
		"containers not ready": {func(p *slim.Pod) { p.Status.Conditions[1].Status = corev1.ConditionFalse }, true},
		"pending, unscheduled": {func(p *slim.Pod) { p.Status = slim.PodStatus{Phase: corev1.PodPending} }, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := runningPod()
			tt.mutate(p)
			assert.Equal(t, tt.want, podProblematic(p, now))
		})
	}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason}}
}

func TestPodSignificant(t *testing.T) {
	tests := map[string]struct {
		mutate func(*slim.Pod)
		want   bool
	}{
		"nothing":               {func(*slim.Pod) {}, false},
		"ip assigned":           {func(p *slim.Pod) { p.Status.PodIP = "10.0.0.1" }, false},
		"phase":                 {func(p *slim.Pod) { p.Status.Phase = corev1.PodSucceeded }, true},
		"restart":               {func(p *slim.Pod) { p.Status.ContainerStatuses[0].RestartCount = 1 }, true},
		"to crash loop":         {func(p *slim.Pod) { p.Status.ContainerStatuses[0].State = waiting("CrashLoopBackOff") }, true},
		"ready turned false":    {func(p *slim.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }, true},
		"containers not ready":  {func(p *slim.Pod) { p.Status.Conditions[1].Status = corev1.ConditionFalse }, true},
		"ready condition gone":  {func(p *slim.Pod) { p.Status.Conditions = nil }, false},
		"new running container": {func(p *slim.Pod) { p.Status.ContainerStatuses[0].Name = "other" }, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := runningPod()
			tt.mutate(p)
			assert.Equal(t, tt.want, podSignificant(runningPod(), p))
		})
	}
	// Staying in the same bad state is not news; a different reason is.
	a, b := runningPod(), runningPod()
	a.Status.ContainerStatuses[0].State = waiting("CrashLoopBackOff")
	b.Status.ContainerStatuses[0].State = waiting("CrashLoopBackOff")
	assert.False(t, podSignificant(a, b))
	b.Status.ContainerStatuses[0].State = waiting("ImagePullBackOff")
	assert.True(t, podSignificant(a, b))
}

func node(conds ...corev1.NodeCondition) *corev1.Node {
	return &corev1.Node{Status: corev1.NodeStatus{Conditions: conds}}
}

func cond(t corev1.NodeConditionType, s corev1.ConditionStatus) corev1.NodeCondition {
	return corev1.NodeCondition{Type: t, Status: s}
}

func TestNodeRules(t *testing.T) {
	healthy := node(cond(corev1.NodeReady, corev1.ConditionTrue), cond(corev1.NodeMemoryPressure, corev1.ConditionFalse))
	assert.False(t, nodeProblematic(healthy))
	assert.True(t, nodeProblematic(node()), "no Ready condition yet")
	assert.True(t, nodeProblematic(node(cond(corev1.NodeReady, corev1.ConditionUnknown))))
	assert.True(t, nodeProblematic(node(cond(corev1.NodeReady, corev1.ConditionTrue), cond(corev1.NodeDiskPressure, corev1.ConditionTrue))))
	assert.True(t, nodeProblematic(node(cond(corev1.NodeReady, corev1.ConditionTrue), cond(corev1.NodeNetworkUnavailable, corev1.ConditionTrue))))

	assert.False(t, nodeFlipped(healthy, healthy.DeepCopy()))
	pressure := healthy.DeepCopy()
	pressure.Status.Conditions[1].Status = corev1.ConditionTrue
	assert.True(t, nodeFlipped(healthy, pressure))
	heartbeat := healthy.DeepCopy()
	heartbeat.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(now)
	assert.False(t, nodeFlipped(healthy, heartbeat), "heartbeats are not flips")
}

func deployment(created time.Time, desired, ready, updated int32, gen, observed int64, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created), Generation: gen},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(desired)},
		Status: appsv1.DeploymentStatus{
			ReadyReplicas: ready, AvailableReplicas: ready, UpdatedReplicas: updated, Replicas: desired,
			ObservedGeneration: observed, Conditions: conds,
		},
	}
}

func TestDeriveRollout(t *testing.T) {
	derive := func(d *appsv1.Deployment, first bool, at time.Time) rolloutStatus {
		v := deploymentRollout(d)
		tr := &rolloutTrack{}
		tr.observe(v, at, first)
		return deriveRollout(v, tr, at)
	}
	old := now.Add(-time.Hour)
	assert.Equal(t, rolloutStatus{"Complete", "AllReplicasReady", "", false}, derive(deployment(old, 3, 3, 3, 2, 2), true, now))
	assert.Equal(t, rolloutStatus{"Complete", "NewReplicaSetAvailable", "", false}, derive(deployment(old, 1, 1, 1, 1, 1,
		appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}), true, now))
	assert.Equal(t, rolloutStatus{"Failed", "FailedCreate", "quota", true}, derive(deployment(now, 3, 0, 0, 1, 1,
		appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "quota"}), true, now))
	assert.Equal(t, "TimedOut", derive(deployment(now, 3, 1, 3, 1, 1,
		appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}), true, now).status)
	// Not ready: a deployment first seen old and not ready is stuck at once (dated from
	// creation, like the Kestrel Operator); one seen turning not ready is given 10 minutes.
	assert.Equal(t, rolloutStatus{"TimedOut", "ReplicasNotReady", "fewer replicas are ready than desired", true}, derive(deployment(old, 3, 1, 3, 1, 1), true, now))
	assert.Equal(t, rolloutStatus{"Progressing", "WaitingForReplicas", "", false}, derive(deployment(old, 3, 1, 3, 1, 1), false, now))
	assert.Equal(t, rolloutStatus{"Progressing", "RollingUpdate", "", false}, derive(deployment(now, 3, 1, 1, 1, 1), true, now))

	// The clocks of a track carry over between observations.
	v := deploymentRollout(deployment(now, 3, 1, 3, 2, 1))
	tr := &rolloutTrack{}
	tr.observe(v, now, false)
	assert.False(t, deriveRollout(v, tr, now.Add(4*time.Minute)).problematic)
	st := deriveRollout(v, tr, now.Add(6*time.Minute))
	assert.Equal(t, rolloutStatus{"TimedOut", "ObservedGenerationStale", "the controller has not observed the latest spec", true}, st)
}

func TestStatefulSetRollout(t *testing.T) {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(now)},
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2)},
		Status: appsv1.StatefulSetStatus{
			ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2, CurrentRevision: "a", UpdateRevision: "b",
		},
	}
	v := statefulSetRollout(s)
	tr := &rolloutTrack{}
	tr.observe(v, now, false)
	assert.Equal(t, "Progressing", deriveRollout(v, tr, now.Add(5*time.Minute)).status, "a revision change in progress")
	assert.Equal(t, rolloutStatus{"TimedOut", "RevisionStuck", "pods are not at the update revision", true}, deriveRollout(v, tr, now.Add(11*time.Minute)))
	s.Status.CurrentRevision = "b"
	v = statefulSetRollout(s)
	tr.observe(v, now.Add(12*time.Minute), false)
	assert.Equal(t, "Complete", deriveRollout(v, tr, now.Add(12*time.Minute)).status)

	d := &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2, UpdatedNumberScheduled: 2}}
	dv := daemonSetRollout(d)
	assert.Equal(t, rolloutStatus{"Complete", "AllNodesReady", "", false}, deriveRollout(dv, &rolloutTrack{}, now))
}

func TestRolloutChanged(t *testing.T) {
	base := deploymentRollout(deployment(now, 3, 1, 3, 1, 1, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse}))
	same := deploymentRollout(deployment(now, 3, 1, 3, 1, 1, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Message: "new text"}))
	assert.False(t, rolloutChanged(base, same), "condition messages are not news")
	assert.True(t, rolloutChanged(base, deploymentRollout(deployment(now, 3, 2, 3, 1, 1, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse}))))
	assert.True(t, rolloutChanged(base, deploymentRollout(deployment(now, 3, 1, 3, 2, 1, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse}))))
	assert.True(t, rolloutChanged(base, deploymentRollout(deployment(now, 3, 1, 3, 1, 1, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}))))
}

func TestStatusRecordOnlyWhenTheMessageChanges(t *testing.T) {
	c := newCollector(&inventoryReceiver{cfg: createDefaultConfig().(*Config)}, nil)
	c.newBatch()
	tick := now
	c.now = func() time.Time { tick = tick.Add(time.Second); return tick }
	d := deployment(now.Add(-time.Hour), 3, 1, 3, 1, 1)
	d.Name, d.Namespace, d.UID = "web", "prod", "d-uid"
	v := deploymentRollout(d)
	st := rolloutStatus{"TimedOut", "ReplicasNotReady", "fewer replicas are ready than desired", true}
	c.emitRollout(opAdd, v, st)
	c.emitRollout(opUpdate, v, st)
	assert.Equal(t, 1, c.lrs.Len(), "the same message a second later, as an update, is no news")
	d.Status.ReadyReplicas = 2
	c.emitRollout(opUpdate, deploymentRollout(d), st)
	assert.Equal(t, 2, c.lrs.Len(), "a field the cloud receives changed")

	// A node deleted with the conditions last reported is still reported, and forgotten:
	// the same node added again is reported again.
	n := node(cond(corev1.NodeReady, corev1.ConditionFalse))
	n.Name, n.UID = "worker-1", "n-uid"
	c.nodeConditions(opAdd, nil, n)
	c.nodeConditions(opDelete, nil, n)
	c.nodeConditions(opAdd, nil, n)
	assert.Equal(t, 5, c.lrs.Len())
	assert.Len(t, c.sent, 2, "what is remembered: the Deployment and the node added again")
}

// TestRolloutOfAnOldDeploymentPassingItsDeadline is the situation of issue 16: Deployments
// created more than 10 minutes before the snapshot whose pods never become ready are
// reported TimedOut (ReplicasNotReady) in it, and once more, as TimedOut
// (ProgressDeadlineExceeded), when the controller-manager marks their progress deadline
// exceeded. The second record is a change: its reason, message and Progressing condition.
func TestRolloutOfAnOldDeploymentPassingItsDeadline(t *testing.T) {
	c := newCollector(&inventoryReceiver{cfg: createDefaultConfig().(*Config)}, nil)
	c.newBatch()
	c.now = func() time.Time { return now }
	progressing := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated"}
	d := deployment(now.Add(-11*time.Minute), 20, 0, 20, 1, 1, progressing)
	d.Name, d.Namespace, d.UID = "app-001", "inv-01", "d-uid"
	c.rollout(opAdd, nil, deploymentRollout(d))
	exceeded := d.DeepCopy()
	exceeded.Status.Conditions[0] = appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "app-001-5d4f9c" has timed out progressing.`}
	c.rollout(opUpdate, deploymentRollout(d), deploymentRollout(exceeded))
	c.rollout(opUpdate, deploymentRollout(exceeded), deploymentRollout(exceeded))

	require.Equal(t, 2, c.lrs.Len())
	reason := func(i int) string {
		v, _ := c.lrs.At(i).Attributes().Get(schema.AttrRolloutReason)
		return v.Str()
	}
	assert.Equal(t, "ReplicasNotReady", reason(0))
	assert.Equal(t, "ProgressDeadlineExceeded", reason(1))
}
