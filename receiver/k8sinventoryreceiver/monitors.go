package k8sinventoryreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/logmap"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// The incident rules are those of the Kestrel Operator (its pod status, node condition
// and rollout monitors), so that the cloud sees the same signals.

var (
	badWaitingReasons = map[string]bool{
		"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true,
		"CreateContainerError": true, "InvalidImageName": true, "CreateContainerConfigError": true,
	}
	badTerminatedReasons = map[string]bool{"OOMKilled": true, "Error": true}
)

const (
	// problematicRestarts is the restart count from which a pod counts as problematic.
	problematicRestarts = 3
	// notReadyFor is how long Ready=False lasts before a pod counts as problematic.
	notReadyFor = 2 * time.Minute
)

func allContainerStatuses(p *slim.Pod) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(p.Status.InitContainerStatuses)+len(p.Status.ContainerStatuses))
	out = append(out, p.Status.InitContainerStatuses...)
	return append(out, p.Status.ContainerStatuses...)
}

// podProblematic: phase Failed or Unknown; a container waiting or terminated for a bad
// reason; 3 or more restarts; Ready=False for over 2 minutes; ContainersReady=False.
func podProblematic(p *slim.Pod, now time.Time) bool {
	if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodUnknown {
		return true
	}
	for _, cs := range allContainerStatuses(p) {
		if w := cs.State.Waiting; w != nil && badWaitingReasons[w.Reason] {
			return true
		}
		if t := cs.State.Terminated; t != nil && badTerminatedReasons[t.Reason] {
			return true
		}
		if cs.RestartCount >= problematicRestarts {
			return true
		}
	}
	if c := podCondition(p, corev1.PodReady); c != nil && c.Status == corev1.ConditionFalse && now.Sub(c.LastTransitionTime.Time) > notReadyFor {
		return true
	}
	if c := podCondition(p, corev1.ContainersReady); c != nil && c.Status == corev1.ConditionFalse {
		return true
	}
	return false
}

func restarts(p *slim.Pod) int32 {
	var n int32
	for _, cs := range allContainerStatuses(p) {
		n += cs.RestartCount
	}
	return n
}

func stateReason(s *corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return s.Waiting.Reason
	case s.Terminated != nil:
		return s.Terminated.Reason
	}
	return ""
}

// podSignificant: the phase changed; restarts went up; a container's state reason changed
// to something other than running; Ready or ContainersReady turned False.
func podSignificant(old, cur *slim.Pod) bool {
	if old.Status.Phase != cur.Status.Phase || restarts(cur) > restarts(old) {
		return true
	}
	before := map[string]string{}
	for _, cs := range allContainerStatuses(old) {
		before[cs.Name] = stateReason(&cs.State)
	}
	for _, cs := range allContainerStatuses(cur) {
		if cs.State.Running == nil && stateReason(&cs.State) != before[cs.Name] {
			return true
		}
	}
	for _, t := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		o, n := podCondition(old, t), podCondition(cur, t)
		if n != nil && n.Status == corev1.ConditionFalse && (o == nil || o.Status != corev1.ConditionFalse) {
			return true
		}
	}
	return false
}

// podStatusBody is the body of a PodStatusChange record.
type podStatusBody struct {
	Status struct {
		Conditions            []corev1.PodCondition    `json:"conditions,omitempty"`
		ContainerStatuses     []corev1.ContainerStatus `json:"containerStatuses,omitempty"`
		InitContainerStatuses []corev1.ContainerStatus `json:"initContainerStatuses,omitempty"`
	} `json:"status"`
}

func (c *collector) podStatus(op opKind, old, p *slim.Pod) {
	problematic := podProblematic(p, c.now())
	switch op {
	case opAdd, opDelete:
		if !problematic {
			if op == opDelete {
				c.forgetStatus(schema.EventPodStatusChange, p.UID)
			}
			return
		}
	case opUpdate:
		if !podSignificant(old, p) {
			return
		}
	}
	sev := plog.SeverityNumberInfo
	if problematic {
		sev = plog.SeverityNumberWarn
	}
	lr := c.newRecord(schema.EventPodStatusChange, sev)
	m := lr.Attributes()
	schema.PodFields.Put(m, p)
	putNonEmpty(m, schema.AttrPodQOSClass, string(p.Status.QOSClass))
	m.PutInt(schema.AttrPodRestartCount, int64(restarts(p)))
	// The cache keeps the pod's resources, summed over its containers (k8scache).
	var res corev1.ResourceRequirements
	if p.Spec.Resources != nil {
		res = *p.Spec.Resources
	}
	m.PutInt(schema.AttrPodCPURequest, res.Requests.Cpu().ScaledValue(-9))
	m.PutInt(schema.AttrPodCPULimit, res.Limits.Cpu().ScaledValue(-9))
	m.PutInt(schema.AttrPodMemoryRequest, res.Requests.Memory().Value())
	m.PutInt(schema.AttrPodMemoryLimit, res.Limits.Memory().Value())
	m.PutStr(schema.AttrAction, actions[op])
	var body podStatusBody
	body.Status.Conditions = p.Status.Conditions
	body.Status.ContainerStatuses = p.Status.ContainerStatuses
	body.Status.InitContainerStatuses = p.Status.InitContainerStatuses
	if err := setBody(lr, &body); err != nil {
		c.logger.Debug("Cannot convert a pod's status", zap.String("pod", p.Namespace+"/"+p.Name), zap.Error(err))
	}
	c.emitStatus(op, string(p.UID), lr)
}

// nodeWatched are the conditions whose state makes a node problematic when it is bad.
var nodeWatched = []corev1.NodeConditionType{
	corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeNetworkUnavailable,
}

// nodeProblematic: not Ready, under memory, disk or PID pressure, or network unavailable.
func nodeProblematic(n *corev1.Node) bool {
	if !nodeConditionTrue(n, corev1.NodeReady) {
		return true
	}
	for _, t := range nodeWatched[1:] {
		if nodeConditionTrue(n, t) {
			return true
		}
	}
	return false
}

func nodeFlipped(old, cur *corev1.Node) bool {
	for _, t := range nodeWatched {
		var a, b corev1.ConditionStatus
		if c := nodeCondition(old, t); c != nil {
			a = c.Status
		}
		if c := nodeCondition(cur, t); c != nil {
			b = c.Status
		}
		if a != b {
			return true
		}
	}
	return false
}

type nodeStatusBody struct {
	Status struct {
		Conditions  []corev1.NodeCondition `json:"conditions,omitempty"`
		Capacity    corev1.ResourceList    `json:"capacity,omitempty"`
		Allocatable corev1.ResourceList    `json:"allocatable,omitempty"`
	} `json:"status"`
}

// nodeConditions: problematic nodes on add, flips of the watched conditions on update,
// and every delete.
func (c *collector) nodeConditions(op opKind, old, n *corev1.Node) {
	problematic := nodeProblematic(n)
	switch {
	case op == opAdd && !problematic, op == opUpdate && !nodeFlipped(old, n):
		return
	}
	sev := plog.SeverityNumberInfo
	if problematic {
		sev = plog.SeverityNumberWarn
	}
	lr := c.newRecord(schema.EventNodeConditionChange, sev)
	m := lr.Attributes()
	schema.NodeFields.Put(m, n)
	m.PutStr(schema.AttrAction, actions[op])
	var body nodeStatusBody
	body.Status.Conditions = n.Status.Conditions
	body.Status.Capacity = n.Status.Capacity
	body.Status.Allocatable = n.Status.Allocatable
	if err := setBody(lr, &body); err != nil {
		c.logger.Debug("Cannot convert a node's status", zap.String("node", n.Name), zap.Error(err))
	}
	c.emitStatus(op, string(n.UID), lr)
}

// Rollouts.

const (
	// lagLimit: observedGeneration behind generation for longer than this is stuck (StatefulSets: lagLimitStatefulSet).
	lagLimit            = 5 * time.Minute
	lagLimitStatefulSet = 10 * time.Minute
	// notReadyLimit: fewer ready replicas than desired for longer than this is stuck.
	notReadyLimit            = 10 * time.Minute
	notReadyLimitStatefulSet = 15 * time.Minute
	// revisionLimit: a StatefulSet whose current revision is not the update revision for
	// longer than this is stuck.
	revisionLimit = 10 * time.Minute
)

// rolloutView is the state of a Deployment, StatefulSet or DaemonSet that rollout rules read.
type rolloutView struct {
	kind     string
	res      *k8scache.Resource
	meta     *metav1.ObjectMeta
	desired  int32
	current  int32
	ready    int32
	avail    int32
	updated  int32
	unavail  int32
	gen, obs int64
	revOK    bool // StatefulSets: the current revision is the update revision
	conds    []appsv1.DeploymentCondition
}

func deploymentRollout(d *appsv1.Deployment) *rolloutView {
	if d == nil {
		return nil
	}
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	s := d.Status
	return &rolloutView{
		kind: "Deployment", res: k8scache.Deployments, meta: &d.ObjectMeta,
		desired: desired, current: s.Replicas, ready: s.ReadyReplicas, avail: s.AvailableReplicas,
		updated: s.UpdatedReplicas, unavail: s.UnavailableReplicas, gen: d.Generation, obs: s.ObservedGeneration,
		revOK: true, conds: s.Conditions,
	}
}

func statefulSetRollout(st *appsv1.StatefulSet) *rolloutView {
	if st == nil {
		return nil
	}
	desired := int32(1)
	if st.Spec.Replicas != nil {
		desired = *st.Spec.Replicas
	}
	s := st.Status
	v := &rolloutView{
		kind: "StatefulSet", res: k8scache.StatefulSets, meta: &st.ObjectMeta,
		desired: desired, current: s.CurrentReplicas, ready: s.ReadyReplicas, avail: s.AvailableReplicas,
		updated: s.UpdatedReplicas, unavail: max(desired-s.AvailableReplicas, 0), gen: st.Generation, obs: s.ObservedGeneration,
		revOK: s.UpdateRevision == "" || s.CurrentRevision == s.UpdateRevision,
	}
	for _, c := range s.Conditions {
		v.conds = append(v.conds, appsv1.DeploymentCondition{Type: appsv1.DeploymentConditionType(c.Type), Status: c.Status, LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message})
	}
	return v
}

func daemonSetRollout(d *appsv1.DaemonSet) *rolloutView {
	if d == nil {
		return nil
	}
	s := d.Status
	v := &rolloutView{
		kind: "DaemonSet", res: k8scache.DaemonSets, meta: &d.ObjectMeta,
		desired: s.DesiredNumberScheduled, current: s.CurrentNumberScheduled, ready: s.NumberReady, avail: s.NumberAvailable,
		updated: s.UpdatedNumberScheduled, unavail: s.NumberUnavailable, gen: d.Generation, obs: s.ObservedGeneration, revOK: true,
	}
	for _, c := range s.Conditions {
		v.conds = append(v.conds, appsv1.DeploymentCondition{Type: appsv1.DeploymentConditionType(c.Type), Status: c.Status, LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message})
	}
	return v
}

func (v *rolloutView) cond(t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range v.conds {
		if v.conds[i].Type == t {
			return &v.conds[i]
		}
	}
	return nil
}

// rolloutTrack remembers, for a workload that is not complete, since when its
// time-based rules have been running and what was last reported.
type rolloutTrack struct {
	res                               *k8scache.Resource
	key                               string // namespace/name in res's cache
	notReadySince, lagSince, revSince time.Time
	reported                          string // rollout status last emitted
}

// observe updates the clocks of t from v as seen at now. A condition first seen on add
// is dated from the object's creation, as the Kestrel Operator did.
func (t *rolloutTrack) observe(v *rolloutView, now time.Time, first bool) {
	since := now
	if first {
		since = v.meta.CreationTimestamp.Time
	}
	update := func(clock *time.Time, active bool) {
		switch {
		case !active:
			*clock = time.Time{}
		case clock.IsZero():
			*clock = since
		}
	}
	update(&t.notReadySince, v.ready < v.desired)
	update(&t.lagSince, v.obs < v.gen)
	update(&t.revSince, !v.revOK)
}

type rolloutStatus struct {
	status, reason, message string
	problematic             bool
}

func deriveRollout(v *rolloutView, t *rolloutTrack, now time.Time) rolloutStatus {
	notReady, lag := notReadyLimit, lagLimit
	if v.kind == "StatefulSet" {
		notReady, lag = notReadyLimitStatefulSet, lagLimitStatefulSet
	}
	progressing := v.cond(appsv1.DeploymentProgressing)
	switch {
	case v.cond(appsv1.DeploymentReplicaFailure) != nil && v.cond(appsv1.DeploymentReplicaFailure).Status == corev1.ConditionTrue:
		f := v.cond(appsv1.DeploymentReplicaFailure)
		return rolloutStatus{"Failed", f.Reason, f.Message, true}
	case progressing != nil && progressing.Reason == "ProgressDeadlineExceeded":
		return rolloutStatus{"TimedOut", progressing.Reason, progressing.Message, true}
	case !t.lagSince.IsZero() && now.Sub(t.lagSince) > lag:
		return rolloutStatus{"TimedOut", "ObservedGenerationStale", "the controller has not observed the latest spec", true}
	case !t.revSince.IsZero() && now.Sub(t.revSince) > revisionLimit:
		return rolloutStatus{"TimedOut", "RevisionStuck", "pods are not at the update revision", true}
	case !t.notReadySince.IsZero() && now.Sub(t.notReadySince) > notReady:
		return rolloutStatus{"TimedOut", "ReplicasNotReady", "fewer replicas are ready than desired", true}
	case v.ready >= v.desired && v.updated >= v.desired && v.obs >= v.gen && v.revOK:
		reason := "AllReplicasReady"
		switch {
		case v.kind == "DaemonSet":
			reason = "AllNodesReady"
		case progressing != nil && progressing.Reason == "NewReplicaSetAvailable":
			reason = progressing.Reason
		}
		return rolloutStatus{"Complete", reason, "", false}
	}
	reason := "WaitingForReplicas"
	if v.updated < v.desired {
		reason = "RollingUpdate"
	}
	if progressing != nil && progressing.Reason != "" {
		reason = progressing.Reason
	}
	return rolloutStatus{"Progressing", reason, "", false}
}

// rolloutChanged: ready or available counts, the generation, or a condition's status changed.
func rolloutChanged(old, cur *rolloutView) bool {
	if old.ready != cur.ready || old.avail != cur.avail || old.gen != cur.gen || len(old.conds) != len(cur.conds) {
		return true
	}
	for i := range cur.conds {
		if o := old.cond(cur.conds[i].Type); o == nil || o.Status != cur.conds[i].Status {
			return true
		}
	}
	return false
}

// rollout: problematic workloads on add, changes on update, and (recheckRollouts) a
// time-based rule starting to hold.
func (c *collector) rollout(op opKind, old, cur *rolloutView) {
	uid := cur.meta.UID
	if op == opDelete {
		delete(c.rollouts, uid)
		c.forgetStatus(schema.EventWorkloadRolloutStatus, uid)
		return
	}
	now := c.now()
	t := c.rollouts[uid]
	first := t == nil
	if first {
		t = &rolloutTrack{res: cur.res, key: cur.meta.Namespace + "/" + cur.meta.Name}
	}
	t.observe(cur, now, first && op == opAdd)
	st := deriveRollout(cur, t, now)
	emit := (op == opAdd && st.problematic) || (op == opUpdate && old != nil && rolloutChanged(old, cur))
	if emit {
		c.emitRollout(op, cur, st)
		t.reported = st.status
	}
	if st.status == "Complete" {
		delete(c.rollouts, uid)
	} else {
		c.rollouts[uid] = t
	}
}

func (c *collector) recheckRollouts() {
	now := c.now()
	for uid, t := range c.rollouts {
		v := c.currentRollout(uid, t)
		// Gone or replaced by a new object of the same name: its own events handle it.
		if v == nil {
			delete(c.rollouts, uid)
			continue
		}
		t.observe(v, now, false)
		st := deriveRollout(v, t, now)
		if st.problematic && st.status != t.reported {
			c.emitRollout(opUpdate, v, st)
			t.reported = st.status
		}
	}
}

// currentRollout finds the workload of a track in the caches, nil if it is gone.
func (c *collector) currentRollout(uid types.UID, t *rolloutTrack) *rolloutView {
	for _, w := range c.byRes[t.res] {
		obj, ok, err := w.inf.GetIndexer().GetByKey(t.key)
		if err != nil || !ok {
			continue
		}
		var v *rolloutView
		switch o := obj.(type) {
		case *appsv1.Deployment:
			v = deploymentRollout(o)
		case *appsv1.StatefulSet:
			v = statefulSetRollout(o)
		case *appsv1.DaemonSet:
			v = daemonSetRollout(o)
		}
		if v != nil && v.meta.UID == uid {
			return v
		}
	}
	return nil
}

type rolloutBody struct {
	Status struct {
		Conditions []appsv1.DeploymentCondition `json:"conditions,omitempty"`
	} `json:"status"`
}

func (c *collector) emitRollout(op opKind, v *rolloutView, st rolloutStatus) {
	sev := plog.SeverityNumberInfo
	if st.problematic {
		sev = plog.SeverityNumberWarn
	}
	lr := c.newRecord(schema.EventWorkloadRolloutStatus, sev)
	m := lr.Attributes()
	prefix := schema.WorkloadKinds[v.kind]
	m.PutStr(schema.AttrWorkloadKind, v.kind)
	m.PutStr(schema.AttrK8sNamespaceName, v.meta.Namespace)
	m.PutStr(prefix+".name", v.meta.Name)
	m.PutStr(prefix+".uid", string(v.meta.UID))
	m.PutStr(schema.AttrRolloutStatus, st.status)
	putNonEmpty(m, schema.AttrRolloutReason, st.reason)
	putNonEmpty(m, schema.AttrRolloutMessage, st.message)
	for k, n := range map[string]int32{
		schema.AttrRolloutDesiredReplicas: v.desired, schema.AttrRolloutCurrentReplicas: v.current,
		schema.AttrRolloutReadyReplicas: v.ready, schema.AttrRolloutAvailableReplicas: v.avail,
		schema.AttrRolloutUpdatedReplicas: v.updated, schema.AttrRolloutUnavailableReplicas: v.unavail,
	} {
		m.PutInt(k, int64(n))
	}
	m.PutInt(schema.AttrRolloutGeneration, v.gen)
	m.PutInt(schema.AttrRolloutObservedGeneration, v.obs)
	putTime(m, schema.AttrCreationTime, v.meta.CreationTimestamp.Time)
	m.PutStr(schema.AttrAction, actions[op])
	var body rolloutBody
	body.Status.Conditions = v.conds
	if err := setBody(lr, &body); err != nil {
		c.logger.Debug("Cannot convert a workload's conditions", zap.String("workload", v.meta.Namespace+"/"+v.meta.Name), zap.Error(err))
	}
	c.emitStatus(op, string(v.meta.UID), lr)
}

// emitStatus adds a status record (pod status, node condition, rollout status) to the
// batch unless the cloud.v1 message it maps to is the one last emitted for its object,
// apart from the time and the action: the operator's rules above say which changes are
// worth a record, and this one rule makes sure that none repeats what the cloud already
// has (e.g. a rollout whose status was reported and that a later rule reports again with
// the same fields). Deletes always go out, and forget the object.
func (c *collector) emitStatus(op opKind, uid string, lr plog.LogRecord) {
	key := logmap.FingerprintKey(lr.EventName(), uid)
	if op == opDelete {
		delete(c.sent, key)
	} else if sum, ok := logmap.Fingerprint(lr); ok {
		if last, seen := c.sent[key]; seen && last == sum {
			return
		}
		c.sent[key] = sum
	}
	lr.MoveTo(c.lrs.AppendEmpty())
}

// forgetStatus drops what emitStatus remembers of a deleted object.
func (c *collector) forgetStatus(eventName string, uid types.UID) {
	delete(c.sent, logmap.FingerprintKey(eventName, string(uid)))
}
