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
	case *corev1.Pod:
		old, _ := it.old.(*corev1.Pod)
		c.pod(it.op, old, o)
	case *corev1.Namespace:
		if !c.namespaceWanted(o.Name) {
			return
		}
		old, _ := it.old.(*corev1.Namespace)
		c.state(it.op, schema.EventInventoryNamespace, func(m pcommon.Map) { namespaceAttrs(m, o) }, func(m pcommon.Map) { namespaceAttrs(m, old) })
	case *corev1.Node:
		old, _ := it.old.(*corev1.Node)
		c.state(it.op, schema.EventInventoryNode, func(m pcommon.Map) { nodeAttrs(m, o) }, func(m pcommon.Map) { nodeAttrs(m, old) })
		c.nodeConditions(it.op, old, o)
	case *corev1.Service:
		old, _ := it.old.(*corev1.Service)
		c.state(it.op, schema.EventInventoryService, func(m pcommon.Map) { serviceAttrs(m, o) }, func(m pcommon.Map) { serviceAttrs(m, old) })
		if integrationService(o.Name) {
			c.recheckFlags = true
		}
	case *corev1.Event:
		old, _ := it.old.(*corev1.Event)
		c.event(it.op, old, o)
	case *appsv1.Deployment:
		old, _ := it.old.(*appsv1.Deployment)
		c.workload(it.op, "Deployment", deploymentView(o), deploymentView(old))
		c.rollout(it.op, deploymentRollout(old), deploymentRollout(o))
	case *appsv1.StatefulSet:
		old, _ := it.old.(*appsv1.StatefulSet)
		c.workload(it.op, "StatefulSet", statefulSetView(o), statefulSetView(old))
		c.rollout(it.op, statefulSetRollout(old), statefulSetRollout(o))
	case *appsv1.DaemonSet:
		old, _ := it.old.(*appsv1.DaemonSet)
		c.workload(it.op, "DaemonSet", daemonSetView(o), daemonSetView(old))
		c.rollout(it.op, daemonSetRollout(old), daemonSetRollout(o))
	case *appsv1.ReplicaSet:
		old, _ := it.old.(*appsv1.ReplicaSet)
		c.workload(it.op, "ReplicaSet", replicaSetView(o), replicaSetView(old))
	case *batchv1.Job:
		old, _ := it.old.(*batchv1.Job)
		c.workload(it.op, "Job", jobView(o), jobView(old))
	case *batchv1.CronJob:
		old, _ := it.old.(*batchv1.CronJob)
		c.workload(it.op, "CronJob", cronJobView(o), cronJobView(old))
	case *networkingv1.NetworkPolicy:
		c.networkPolicy(it.op, o)
	case *unstructured.Unstructured:
		c.authorizationPolicy(it.op, o)
	case *metav1.PartialObjectMetadata:
		c.crd(it.op, o)
	}
}

// workloadView is what a Workload record shows of a workload object.
type workloadView struct {
	meta *metav1.ObjectMeta
	sa   string // the pod template's service account
}

// The views of each kind are nil for a nil object (no old object on add).

func deploymentView(d *appsv1.Deployment) *workloadView {
	if d == nil {
		return nil
	}
	return &workloadView{&d.ObjectMeta, d.Spec.Template.Spec.ServiceAccountName}
}

func statefulSetView(s *appsv1.StatefulSet) *workloadView {
	if s == nil {
		return nil
	}
	return &workloadView{&s.ObjectMeta, s.Spec.Template.Spec.ServiceAccountName}
}

func daemonSetView(d *appsv1.DaemonSet) *workloadView {
	if d == nil {
		return nil
	}
	return &workloadView{&d.ObjectMeta, d.Spec.Template.Spec.ServiceAccountName}
}

func replicaSetView(r *appsv1.ReplicaSet) *workloadView {
	if r == nil {
		return nil
	}
	return &workloadView{&r.ObjectMeta, r.Spec.Template.Spec.ServiceAccountName}
}

func jobView(j *batchv1.Job) *workloadView {
	if j == nil {
		return nil
	}
	return &workloadView{&j.ObjectMeta, j.Spec.Template.Spec.ServiceAccountName}
}

func cronJobView(j *batchv1.CronJob) *workloadView {
	if j == nil {
		return nil
	}
	return &workloadView{&j.ObjectMeta, j.Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName}
}

func podView(p *corev1.Pod) *workloadView {
	if p == nil {
		return nil
	}
	return &workloadView{&p.ObjectMeta, p.Spec.ServiceAccountName}
}

func (c *collector) namespaceWanted(name string) bool {
	if inc := c.cfg.Namespaces.Include; len(inc) > 0 {
		return slices.Contains(inc, name)
	}
	return !c.excluded(name)
}

// state emits an inventory record built by cur. An update is emitted only when the
// record differs from the one old builds: changes to fields the record does not carry
// (most status updates) produce nothing.
func (c *collector) state(op opKind, eventName string, cur, old func(pcommon.Map)) {
	attrs := pcommon.NewMap()
	cur(attrs)
	if op == opUpdate {
		prev := pcommon.NewMap()
		old(prev)
		if prev.Equal(attrs) {
			return
		}
	}
	lr := c.record(eventName, plog.SeverityNumberInfo)
	attrs.MoveTo(lr.Attributes())
	lr.Attributes().PutStr(schema.AttrAction, actions[op])
}

func (c *collector) workload(op opKind, kind string, cur, old *workloadView) {
	c.state(op, schema.EventInventoryWorkload,
		func(m pcommon.Map) { workloadAttrs(m, kind, cur) },
		func(m pcommon.Map) { workloadAttrs(m, kind, old) })
}

func (c *collector) pod(op opKind, old, p *corev1.Pod) {
	c.state(op, schema.EventInventoryPod, func(m pcommon.Map) { podAttrs(m, p) }, func(m pcommon.Map) { podAttrs(m, old) })
	// A pod without owners is a workload of its own (kind Pod); adoption or orphaning
	// turns it into one or out of one.
	bare := len(p.OwnerReferences) == 0
	wasBare := old != nil && len(old.OwnerReferences) == 0
	switch {
	case op == opUpdate && wasBare && !bare:
		c.workload(opDelete, "Pod", podView(old), nil)
	case op == opUpdate && !wasBare && bare:
		c.workload(opAdd, "Pod", podView(p), nil)
	case bare:
		c.workload(op, "Pod", podView(p), podView(old))
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

func putPrefixed(m pcommon.Map, prefix string, kv map[string]string) {
	for k, v := range kv {
		m.PutStr(prefix+k, v)
	}
}

func putStrings(m pcommon.Map, k string, vs []string) {
	if len(vs) == 0 {
		return
	}
	s := m.PutEmptySlice(k)
	s.EnsureCapacity(len(vs))
	for _, v := range vs {
		s.AppendEmpty().SetStr(v)
	}
}

func putOwners(m pcommon.Map, refs []metav1.OwnerReference) {
	if len(refs) == 0 {
		return
	}
	s := m.PutEmptySlice(schema.AttrOwnerReferences)
	for _, r := range refs {
		o := s.AppendEmpty().SetEmptyMap()
		o.PutStr("api_version", r.APIVersion)
		o.PutStr("kind", r.Kind)
		o.PutStr("name", r.Name)
		o.PutStr("uid", string(r.UID))
		o.PutBool("controller", r.Controller != nil && *r.Controller)
		o.PutBool("block_owner_deletion", r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion)
	}
}

func namespaceAttrs(m pcommon.Map, ns *corev1.Namespace) {
	m.PutStr(schema.AttrK8sNamespaceName, ns.Name)
	m.PutStr(schema.AttrNamespaceUID, string(ns.UID))
	putPrefixed(m, schema.AttrK8sNamespaceLabelPrefix, ns.Labels)
	putTime(m, schema.AttrCreationTime, ns.CreationTimestamp.Time)
}

func nodeAttrs(m pcommon.Map, n *corev1.Node) {
	m.PutStr(schema.AttrK8sNodeName, n.Name)
	m.PutStr(schema.AttrK8sNodeUID, string(n.UID))
	putPrefixed(m, schema.AttrK8sNodeLabelPrefix, n.Labels)
	nodeIdentity(m, n)
	m.PutBool(schema.AttrNodeReady, nodeConditionTrue(n, corev1.NodeReady))
	putTime(m, schema.AttrCreationTime, n.CreationTimestamp.Time)
}

// nodeIdentity writes what Node and NodeConditionChange records share besides name and UID.
func nodeIdentity(m pcommon.Map, n *corev1.Node) {
	var internal, external []string
	hostname := ""
	for _, a := range n.Status.Addresses {
		switch a.Type {
		case corev1.NodeInternalIP:
			internal = append(internal, a.Address)
		case corev1.NodeExternalIP:
			external = append(external, a.Address)
		case corev1.NodeHostName:
			hostname = a.Address
		}
	}
	putStrings(m, schema.AttrNodeInternalIPs, internal)
	putStrings(m, schema.AttrNodeExternalIPs, external)
	putNonEmpty(m, schema.AttrNodeHostname, hostname)
	putNonEmpty(m, schema.AttrNodeInstanceType, n.Labels[corev1.LabelInstanceTypeStable])
	putNonEmpty(m, schema.AttrNodeZone, n.Labels[corev1.LabelTopologyZone])
}

func podAttrs(m pcommon.Map, p *corev1.Pod) {
	m.PutStr(schema.AttrK8sNamespaceName, p.Namespace)
	m.PutStr(schema.AttrK8sPodName, p.Name)
	m.PutStr(schema.AttrK8sPodUID, string(p.UID))
	putNonEmpty(m, schema.AttrK8sPodIP, p.Status.PodIP)
	putNonEmpty(m, schema.AttrK8sNodeName, p.Spec.NodeName)
	putNonEmpty(m, schema.AttrK8sPodStatusPhase, string(p.Status.Phase))
	m.PutBool(schema.AttrPodReady, podConditionTrue(p, corev1.PodReady))
	putPrefixed(m, schema.AttrK8sPodLabelPrefix, p.Labels)
	putOwners(m, p.OwnerReferences)
	putTime(m, schema.AttrCreationTime, p.CreationTimestamp.Time)
}

func workloadAttrs(m pcommon.Map, kind string, w *workloadView) {
	meta, sa := w.meta, w.sa
	prefix := schema.WorkloadKinds[kind]
	m.PutStr(schema.AttrWorkloadKind, kind)
	m.PutStr(schema.AttrK8sNamespaceName, meta.Namespace)
	m.PutStr(prefix+".name", meta.Name)
	m.PutStr(prefix+".uid", string(meta.UID))
	putPrefixed(m, prefix+".label.", meta.Labels)
	if sa == "" {
		sa = "default"
	}
	m.PutStr(schema.AttrServiceAccountName, sa)
	putTime(m, schema.AttrCreationTime, meta.CreationTimestamp.Time)
}

func serviceAttrs(m pcommon.Map, s *corev1.Service) {
	m.PutStr(schema.AttrK8sNamespaceName, s.Namespace)
	m.PutStr(schema.AttrK8sServiceName, s.Name)
	m.PutStr(schema.AttrK8sServiceUID, string(s.UID))
	putNonEmpty(m, schema.AttrK8sServiceType, string(s.Spec.Type))
	putPrefixed(m, schema.AttrK8sServiceLabelPrefix, s.Labels)
	putPrefixed(m, schema.AttrK8sServiceAnnotationPrefix, s.Annotations)
	putPrefixed(m, schema.AttrK8sServiceSelectorPrefix, s.Spec.Selector)
	putNonEmpty(m, schema.AttrServiceClusterIP, s.Spec.ClusterIP)
	putStrings(m, schema.AttrServiceExternalIPs, s.Spec.ExternalIPs)
	if len(s.Spec.Ports) > 0 {
		ports := m.PutEmptySlice(schema.AttrServicePorts)
		for _, p := range s.Spec.Ports {
			pm := ports.AppendEmpty().SetEmptyMap()
			putNonEmpty(pm, "name", p.Name)
			pm.PutStr("protocol", string(p.Protocol))
			pm.PutInt("port", int64(p.Port))
			if p.TargetPort.StrVal != "" {
				pm.PutStr("target_port_name", p.TargetPort.StrVal)
			} else if p.TargetPort.IntVal != 0 {
				pm.PutInt("target_port", int64(p.TargetPort.IntVal))
			}
			if p.NodePort != 0 {
				pm.PutInt("node_port", int64(p.NodePort))
			}
		}
	}
	putTime(m, schema.AttrCreationTime, s.CreationTimestamp.Time)
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

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
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

func podConditionTrue(p *corev1.Pod, t corev1.PodConditionType) bool {
	c := podCondition(p, t)
	return c != nil && c.Status == corev1.ConditionTrue
}

func nodeConditionTrue(n *corev1.Node, t corev1.NodeConditionType) bool {
	c := nodeCondition(n, t)
	return c != nil && c.Status == corev1.ConditionTrue
}
