package k8sinventoryreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver"

import (
	"context"
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

var actions = map[opKind]string{opAdd: schema.ActionCreate, opUpdate: schema.ActionUpdate, opDelete: schema.ActionDelete}

func (c *collector) handle(it item) {
	switch it.op {
	case opSnapshotDone:
		c.snapshotComplete()
		return
	case opAuthzCheck:
		c.startAuthz()
		return
	}
	obj := it.obj
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if m, ok := obj.(metav1.Object); ok && m.GetNamespace() != "" && c.excluded(m.GetNamespace()) {
		return
	}
	switch o := obj.(type) {
	case *slim.Pod:
		old, _ := it.old.(*slim.Pod)
		c.pod(it.op, old, o)
	case *corev1.Namespace:
		if !c.namespaceWanted(o.Name) {
			return
		}
		old, _ := it.old.(*corev1.Namespace)
		state(c, it.op, schema.EventInventoryNamespace, schema.NamespaceFields, o, old)
	case *corev1.Node:
		old, _ := it.old.(*corev1.Node)
		state(c, it.op, schema.EventInventoryNode, schema.NodeFields, o, old)
		c.nodeConditions(it.op, old, o)
	case *corev1.Service:
		old, _ := it.old.(*corev1.Service)
		state(c, it.op, schema.EventInventoryService, schema.ServiceFields, o, old)
		if integrationService(o.Name) {
			c.recheckFlags = true
		}
	case *corev1.Event:
		old, _ := it.old.(*corev1.Event)
		c.event(it.op, old, o)
	case *appsv1.Deployment:
		old, _ := it.old.(*appsv1.Deployment)
		c.workload(it.op, deploymentView(o), deploymentView(old))
		c.rollout(it.op, deploymentRollout(old), deploymentRollout(o))
	case *appsv1.StatefulSet:
		old, _ := it.old.(*appsv1.StatefulSet)
		c.workload(it.op, statefulSetView(o), statefulSetView(old))
		c.rollout(it.op, statefulSetRollout(old), statefulSetRollout(o))
	case *appsv1.DaemonSet:
		old, _ := it.old.(*appsv1.DaemonSet)
		c.workload(it.op, daemonSetView(o), daemonSetView(old))
		c.rollout(it.op, daemonSetRollout(old), daemonSetRollout(o))
	case *appsv1.ReplicaSet:
		old, _ := it.old.(*appsv1.ReplicaSet)
		c.workload(it.op, replicaSetView(o), replicaSetView(old))
	case *batchv1.Job:
		old, _ := it.old.(*batchv1.Job)
		c.workload(it.op, jobView(o), jobView(old))
	case *batchv1.CronJob:
		old, _ := it.old.(*batchv1.CronJob)
		c.workload(it.op, cronJobView(o), cronJobView(old))
	case *networkingv1.NetworkPolicy:
		c.networkPolicy(it.op, o)
	case *unstructured.Unstructured:
		c.authorizationPolicy(it.op, o)
	case *metav1.PartialObjectMetadata:
		c.crd(it.op, o)
	}
}

// The workload views of each kind are nil for a nil object (no old object on add).

func deploymentView(d *appsv1.Deployment) *schema.Workload {
	if d == nil {
		return nil
	}
	return &schema.Workload{Kind: "Deployment", Meta: &d.ObjectMeta, ServiceAccount: d.Spec.Template.Spec.ServiceAccountName}
}

func statefulSetView(s *appsv1.StatefulSet) *schema.Workload {
	if s == nil {
		return nil
	}
	return &schema.Workload{Kind: "StatefulSet", Meta: &s.ObjectMeta, ServiceAccount: s.Spec.Template.Spec.ServiceAccountName}
}

func daemonSetView(d *appsv1.DaemonSet) *schema.Workload {
	if d == nil {
		return nil
	}
	return &schema.Workload{Kind: "DaemonSet", Meta: &d.ObjectMeta, ServiceAccount: d.Spec.Template.Spec.ServiceAccountName}
}

func replicaSetView(r *appsv1.ReplicaSet) *schema.Workload {
	if r == nil {
		return nil
	}
	return &schema.Workload{Kind: "ReplicaSet", Meta: &r.ObjectMeta, ServiceAccount: r.Spec.Template.Spec.ServiceAccountName}
}

func jobView(j *batchv1.Job) *schema.Workload {
	if j == nil {
		return nil
	}
	return &schema.Workload{Kind: "Job", Meta: &j.ObjectMeta, ServiceAccount: j.Spec.Template.Spec.ServiceAccountName}
}

func cronJobView(j *batchv1.CronJob) *schema.Workload {
	if j == nil {
		return nil
	}
	return &schema.Workload{Kind: "CronJob", Meta: &j.ObjectMeta, ServiceAccount: j.Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName}
}

func podView(p *slim.Pod) *schema.Workload {
	if p == nil {
		return nil
	}
	return &schema.Workload{Kind: "Pod", Meta: &p.ObjectMeta, ServiceAccount: p.Spec.ServiceAccountName}
}

func (c *collector) namespaceWanted(name string) bool {
	if inc := c.cfg.Namespaces.Include; len(inc) > 0 {
		return slices.Contains(inc, name)
	}
	return !c.excluded(name)
}

// state emits the inventory record that fields build of cur. An update is emitted only
// when the record would differ from old's: changes to fields the record does not carry
// (most status updates) produce nothing. The comparison reads both objects without
// building either record, and the record is built once, in the batch.
func state[S, M any](c *collector, op opKind, eventName string, fields schema.Table[S, M], cur, old *S) {
	if op == opUpdate && fields.Equal(cur, old) {
		return
	}
	lr := c.record(eventName, plog.SeverityNumberInfo)
	fields.Put(lr.Attributes(), cur)
	lr.Attributes().PutStr(schema.AttrAction, actions[op])
}

func (c *collector) workload(op opKind, cur, old *schema.Workload) {
	// The kind never changes, and is a key of WorkloadKinds: the views set it.
	fields, _ := schema.WorkloadFields(cur.Kind)
	state(c, op, schema.EventInventoryWorkload, fields, cur, old)
}

func (c *collector) pod(op opKind, old, p *slim.Pod) {
	state(c, op, schema.EventInventoryPod, schema.PodFields, p, old)
	// A pod without owners is a workload of its own (kind Pod); adoption or orphaning
	// turns it into one or out of one.
	bare := len(p.OwnerReferences) == 0
	wasBare := old != nil && len(old.OwnerReferences) == 0
	switch {
	case op == opUpdate && wasBare && !bare:
		c.workload(opDelete, podView(old), nil)
	case op == opUpdate && !wasBare && bare:
		c.workload(opAdd, podView(p), nil)
	case bare:
		c.workload(op, podView(p), podView(old))
	}
	c.podStatus(op, old, p)
	if op != opUpdate || !maps.Equal(old.Labels, p.Labels) || !equalOwners(old.OwnerReferences, p.OwnerReferences) {
		c.dirtyNS[p.Namespace] = struct{}{}
	}
}

func equalOwners(a, b []metav1.OwnerReference) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].UID != b[i].UID {
			return false
		}
	}
	return true
}

func (c *collector) event(op opKind, old, e *corev1.Event) {
	wanted := slices.Contains(c.cfg.EventTypes, e.Type)
	// Deletes are garbage collection of old events, not news; an update that did not
	// change the object (a relist) is not news either.
	if !wanted || op == opDelete || (op == opUpdate && old != nil && old.ResourceVersion == e.ResourceVersion) {
		return
	}
	sev := plog.SeverityNumberInfo
	if e.Type == corev1.EventTypeWarning {
		sev = plog.SeverityNumberWarn
	}
	lr := c.record(schema.EventK8sEvent, sev)
	last := e.LastTimestamp.Time
	first := e.FirstTimestamp.Time
	count := int64(e.Count)
	if e.Series != nil {
		last, count = e.Series.LastObservedTime.Time, int64(e.Series.Count)
	}
	if first.IsZero() {
		first = e.EventTime.Time
	}
	if last.IsZero() {
		last = first
	}
	if !last.IsZero() {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(last))
	}
	lr.Body().SetStr(e.Message)
	m := lr.Attributes()
	m.PutStr(schema.AttrK8sNamespaceName, e.Namespace)
	m.PutStr(schema.AttrK8sEventName, e.Name)
	m.PutStr(schema.AttrK8sEventUID, string(e.UID))
	m.PutStr(schema.AttrK8sEventReason, e.Reason)
	m.PutStr(schema.AttrK8sEventType, e.Type)
	if count > 0 {
		m.PutInt(schema.AttrK8sEventCount, count)
	}
	putTime(m, schema.AttrK8sEventStartTime, first)
	putTime(m, schema.AttrK8sEventLastTime, last)
	putNonEmpty(m, schema.AttrK8sEventSourceComponent, e.Source.Component)
	if e.ReportingController != "" && e.Source.Component == "" {
		m.PutStr(schema.AttrK8sEventSourceComponent, e.ReportingController)
	}
	putNonEmpty(m, schema.AttrK8sNodeName, e.Source.Host)
	ref := e.InvolvedObject
	m.PutStr(schema.AttrK8sObjectKind, ref.Kind)
	m.PutStr(schema.AttrK8sObjectName, ref.Name)
	putNonEmpty(m, schema.AttrK8sObjectUID, string(ref.UID))
	putNonEmpty(m, schema.AttrK8sObjectAPIVersion, ref.APIVersion)
	putNonEmpty(m, schema.AttrK8sObjectResourceVersion, ref.ResourceVersion)
	putNonEmpty(m, schema.AttrK8sObjectFieldPath, ref.FieldPath)
	m.PutStr(schema.AttrAction, actions[op])
}

// invalidObject reports an object that cannot be converted, once per resourceVersion.
func (c *collector) invalidObject(resource string, meta metav1.Object, err error) {
	if c.invalid[meta.GetUID()] == meta.GetResourceVersion() {
		return
	}
	c.invalid[meta.GetUID()] = meta.GetResourceVersion()
	c.logger.Warn("Skipping an object that does not match its API",
		zap.String("resource", resource),
		zap.String("namespace", meta.GetNamespace()),
		zap.String("name", meta.GetName()),
		zap.String("resource_version", meta.GetResourceVersion()),
		zap.Error(err))
	c.r.tb.K8sInventoryObjectsInvalid.Add(context.Background(), 1, metric.WithAttributes(attribute.String("resource", resource)))
}

// Attribute builders. Each writes what its record carries; comparing two builds is how
// updates are diffed, so they must be deterministic and include nothing volatile.

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

func putTime(m pcommon.Map, k string, t time.Time) {
	if !t.IsZero() {
		m.PutStr(k, t.UTC().Format(time.RFC3339))
	}
}

// setBody puts v (a struct of Kubernetes API types) into the record body as a map with the
// API's field names.
func setBody(lr plog.LogRecord, v any) error {
	raw, err := toRaw(v)
	if err != nil {
		return err
	}
	return lr.Body().SetEmptyMap().FromRaw(raw)
}

// toRaw converts a struct of Kubernetes API types to JSON-like values.
func toRaw(v any) (map[string]any, error) {
	return runtime.DefaultUnstructuredConverter.ToUnstructured(v)
}

func podCondition(p *slim.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func nodeConditionTrue(n *corev1.Node, t corev1.NodeConditionType) bool {
	c := nodeCondition(n, t)
	return c != nil && c.Status == corev1.ConditionTrue
}
