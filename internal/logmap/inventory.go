package logmap

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/types/known/timestamppb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// inventoryEvents are the event names whose records carry object state rather than
// notifications; the exporter keeps their latest state per object.
var inventoryEvents = map[string]bool{
	schema.EventInventoryWorkload:            true,
	schema.EventInventoryPod:                 true,
	schema.EventInventoryNamespace:           true,
	schema.EventInventoryNode:                true,
	schema.EventInventoryService:             true,
	schema.EventInventoryNetworkPolicy:       true,
	schema.EventInventoryAuthorizationPolicy: true,
	schema.EventInventorySnapshotStart:       true,
	schema.EventInventorySnapshotComplete:    true,
}

// IsInventory reports whether records with this event name describe inventory state (or
// delimit a snapshot of it) rather than real-time events.
func IsInventory(eventName string) bool {
	return inventoryEvents[eventName]
}

// bodyDetail names the body in drops, where an attribute key would otherwise be.
const bodyDetail = "(body)"

func (b *batch) workload(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	kind := rd.required(schema.AttrWorkloadKind)
	prefix, ok := schema.WorkloadKinds[kind]
	if !ok && rd.reason == "" {
		return -1, ReasonInvalidAttribute, schema.AttrWorkloadKind
	}
	w := &cloudv1.Workload{
		Kind:           kind,
		Name:           rd.required(prefix + ".name"),
		Uid:            rd.required(prefix + ".uid"),
		Namespace:      rd.str(schema.AttrK8sNamespaceName),
		Labels:         rd.prefixed(prefix + ".label."),
		CreatedAt:      rd.time(schema.AttrCreationTime),
		ServiceAccount: rd.str(schema.AttrServiceAccountName),
		Action:         rd.action(),
	}
	return b.emit(&rd, schema.EventInventoryWorkload, w)
}

func (b *batch) pod(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	p := &cloudv1.Pod{
		Name:            rd.required(schema.AttrK8sPodName),
		Namespace:       rd.required(schema.AttrK8sNamespaceName),
		Uid:             rd.required(schema.AttrK8sPodUID),
		PodIp:           rd.str(schema.AttrK8sPodIP),
		Labels:          rd.prefixed(schema.AttrK8sPodLabelPrefix),
		Phase:           rd.str(schema.AttrK8sPodStatusPhase),
		OwnerReferences: rd.owners(),
		CreatedAt:       rd.time(schema.AttrCreationTime),
		Ready:           rd.bool(schema.AttrPodReady),
		Action:          rd.action(),
	}
	return b.emit(&rd, schema.EventInventoryPod, p)
}

func (b *batch) namespace(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	ns := &cloudv1.Namespace{
		Name:      rd.required(schema.AttrK8sNamespaceName),
		Uid:       rd.required(schema.AttrNamespaceUID),
		Labels:    rd.prefixed(schema.AttrK8sNamespaceLabelPrefix),
		CreatedAt: rd.time(schema.AttrCreationTime),
		Action:    rd.action(),
	}
	return b.emit(&rd, schema.EventInventoryNamespace, ns)
}

func (b *batch) node(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	n := &cloudv1.Node{
		Name:         rd.required(schema.AttrK8sNodeName),
		Uid:          rd.required(schema.AttrK8sNodeUID),
		Labels:       rd.prefixed(schema.AttrK8sNodeLabelPrefix),
		InternalIps:  rd.strs(schema.AttrNodeInternalIPs),
		ExternalIps:  rd.strs(schema.AttrNodeExternalIPs),
		Hostname:     rd.str(schema.AttrNodeHostname),
		Ready:        rd.bool(schema.AttrNodeReady),
		InstanceType: rd.str(schema.AttrNodeInstanceType),
		Zone:         rd.str(schema.AttrNodeZone),
		CreatedAt:    rd.time(schema.AttrCreationTime),
		Action:       rd.action(),
	}
	return b.emit(&rd, schema.EventInventoryNode, n)
}

func (b *batch) service(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	s := &cloudv1.Service{
		Name:        rd.required(schema.AttrK8sServiceName),
		Namespace:   rd.required(schema.AttrK8sNamespaceName),
		Uid:         rd.required(schema.AttrK8sServiceUID),
		Labels:      rd.prefixed(schema.AttrK8sServiceLabelPrefix),
		Annotations: rd.prefixed(schema.AttrK8sServiceAnnotationPrefix),
		Selector:    rd.prefixed(schema.AttrK8sServiceSelectorPrefix),
		Ports:       rd.servicePorts(),
		ServiceType: rd.str(schema.AttrK8sServiceType),
		ClusterIp:   rd.str(schema.AttrServiceClusterIP),
		ExternalIps: rd.strs(schema.AttrServiceExternalIPs),
		CreatedAt:   rd.time(schema.AttrCreationTime),
		Action:      rd.action(),
	}
	return b.emit(&rd, schema.EventInventoryService, s)
}

// policyMeta reads what NetworkPolicy and AuthorizationPolicy records share.
func (rd *reader) policyMeta() *cloudv1.ObjectMeta {
	return &cloudv1.ObjectMeta{
		Name:            rd.required(schema.AttrPolicyName),
		Namespace:       rd.required(schema.AttrK8sNamespaceName),
		Uid:             rd.required(schema.AttrPolicyUID),
		Labels:          rd.prefixed(schema.AttrPolicyLabelPrefix),
		Annotations:     rd.prefixed(schema.AttrPolicyAnnotationPrefix),
		ResourceVersion: rd.str(schema.AttrPolicyResourceVersion),
	}
}

func (b *batch) networkPolicy(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	meta := rd.policyMeta()
	apiVersion := rd.str(schema.AttrPolicyAPIVersion)
	if apiVersion == "" {
		apiVersion = "networking.k8s.io/v1"
	}
	targets := rd.strs(schema.AttrPolicyTargetWorkloads)
	action := rd.action()
	var body struct {
		Spec networkingv1.NetworkPolicySpec `json:"spec"`
	}
	rd.body(&body)
	return b.emit(&rd, schema.EventInventoryNetworkPolicy, &cloudv1.NetworkPolicy{
		ApiVersion:      apiVersion,
		Kind:            "NetworkPolicy",
		Metadata:        meta,
		Spec:            networkPolicySpec(&body.Spec),
		TargetWorkloads: targets,
		Action:          action,
	})
}

func networkPolicySpec(s *networkingv1.NetworkPolicySpec) *cloudv1.NetworkPolicySpec {
	out := &cloudv1.NetworkPolicySpec{
		PodSelector: labelSelector(&s.PodSelector),
		PolicyTypes: make([]string, 0, len(s.PolicyTypes)),
	}
	for _, t := range s.PolicyTypes {
		out.PolicyTypes = append(out.PolicyTypes, u(string(t)))
	}
	for i := range s.Ingress {
		in := &s.Ingress[i]
		out.Ingress = append(out.Ingress, &cloudv1.NetworkPolicyIngressRule{From: peers(in.From), Ports: npPorts(in.Ports)})
	}
	for i := range s.Egress {
		eg := &s.Egress[i]
		out.Egress = append(out.Egress, &cloudv1.NetworkPolicyEgressRule{To: peers(eg.To), Ports: npPorts(eg.Ports)})
	}
	return out
}

func labelSelector(s *metav1.LabelSelector) *cloudv1.LabelSelector {
	if s == nil {
		return nil
	}
	out := &cloudv1.LabelSelector{MatchLabels: stringMap(s.MatchLabels)}
	for _, e := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, &cloudv1.LabelSelectorRequirement{
			Key: u(e.Key), Operator: u(string(e.Operator)), Values: copyStrings(e.Values),
		})
	}
	return out
}

func peers(in []networkingv1.NetworkPolicyPeer) []*cloudv1.NetworkPolicyPeer {
	out := make([]*cloudv1.NetworkPolicyPeer, 0, len(in))
	for i := range in {
		p := &in[i]
		peer := &cloudv1.NetworkPolicyPeer{
			PodSelector:       labelSelector(p.PodSelector),
			NamespaceSelector: labelSelector(p.NamespaceSelector),
		}
		if p.IPBlock != nil {
			peer.IpBlock = &cloudv1.IPBlock{Cidr: u(p.IPBlock.CIDR), Except: copyStrings(p.IPBlock.Except)}
		}
		out = append(out, peer)
	}
	return out
}

func npPorts(in []networkingv1.NetworkPolicyPort) []*cloudv1.NetworkPolicyPort {
	out := make([]*cloudv1.NetworkPolicyPort, 0, len(in))
	for _, p := range in {
		port := &cloudv1.NetworkPolicyPort{}
		if p.Protocol != nil {
			port.Protocol = u(string(*p.Protocol))
		}
		if p.Port != nil {
			if p.Port.Type == intstr.String {
				port.PortValue = &cloudv1.NetworkPolicyPort_PortName{PortName: u(p.Port.StrVal)}
			} else {
				port.PortValue = &cloudv1.NetworkPolicyPort_Port{Port: p.Port.IntVal}
			}
		}
		if p.EndPort != nil {
			port.EndPort = *p.EndPort
		}
		out = append(out, port)
	}
	return out
}

// authzAction maps an Istio action to cloud.v1's enum, whose names are the Istio names
// with a prefix; Istio's default is ALLOW.
func authzAction(a string) cloudv1.AuthorizationPolicyAction {
	if a == "" {
		a = "ALLOW"
	}
	return cloudv1.AuthorizationPolicyAction(cloudv1.AuthorizationPolicyAction_value["AUTHORIZATION_POLICY_ACTION_"+a])
}

func (b *batch) authorizationPolicy(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	meta := rd.policyMeta()
	apiVersion := rd.str(schema.AttrPolicyAPIVersion)
	if apiVersion == "" {
		apiVersion = "security.istio.io/v1"
	}
	targets := rd.strs(schema.AttrPolicyTargetWorkloads)
	action := rd.action()
	var spec *schema.AuthorizationPolicySpec
	if raw := rd.rawBody(); raw != nil {
		var err error
		spec, err = schema.ParseAuthorizationPolicySpec(asMap(raw["spec"]))
		if err != nil {
			rd.fail(ReasonInvalidAttribute, bodyDetail)
		}
	}
	return b.emit(&rd, schema.EventInventoryAuthorizationPolicy, &cloudv1.AuthorizationPolicy{
		ApiVersion:      apiVersion,
		Kind:            "AuthorizationPolicy",
		Metadata:        meta,
		Spec:            authorizationPolicySpec(spec),
		TargetWorkloads: targets,
		Action:          action,
	})
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func authorizationPolicySpec(s *schema.AuthorizationPolicySpec) *cloudv1.AuthorizationPolicySpec {
	if s == nil {
		s = &schema.AuthorizationPolicySpec{}
	}
	out := &cloudv1.AuthorizationPolicySpec{Action: authzAction(s.Action)}
	if s.Selector != nil {
		out.Selector = &cloudv1.LabelSelector{MatchLabels: stringMap(s.Selector.MatchLabels)}
	}
	for _, rule := range s.Rules {
		r := &cloudv1.AuthorizationPolicyRule{}
		for _, f := range rule.From {
			src := f.Source
			r.From = append(r.From, &cloudv1.AuthorizationPolicyRuleFrom{Source: &cloudv1.AuthorizationPolicySource{
				Principals:        copyStrings(src.Principals),
				RequestPrincipals: copyStrings(src.RequestPrincipals),
				Namespaces:        copyStrings(src.Namespaces),
				IpBlocks:          copyStrings(src.IPBlocks),
				RemoteIpBlocks:    copyStrings(src.RemoteIPBlocks),
			}})
		}
		for _, t := range rule.To {
			op := t.Operation
			r.To = append(r.To, &cloudv1.AuthorizationPolicyRuleTo{Operation: &cloudv1.AuthorizationPolicyOperation{
				Methods: copyStrings(op.Methods), Paths: copyStrings(op.Paths), Ports: copyStrings(op.Ports), Hosts: copyStrings(op.Hosts),
			}})
		}
		for _, w := range rule.When {
			r.When = append(r.When, &cloudv1.AuthorizationPolicyCondition{
				Key: u(w.Key), Values: copyStrings(w.Values), NotValues: copyStrings(w.NotValues),
			})
		}
		out.Rules = append(out.Rules, r)
	}
	return out
}

// snapshotStart marks the start of a snapshot; it has no message of its own.
func (*batch) snapshotStart(*record) (int, Reason, string) {
	return -1, "", ""
}

func (b *batch) snapshotComplete(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	c := &cloudv1.InventoryCommit{
		HasDatadog:   rd.bool(schema.AttrIntegrationDatadog),
		HasArgocd:    rd.bool(schema.AttrIntegrationArgoCD),
		HasRollouts:  rd.bool(schema.AttrIntegrationArgoRollouts),
		HasFlux:      rd.bool(schema.AttrIntegrationFlux),
		HasKarpenter: rd.bool(schema.AttrIntegrationKarpenter),
	}
	return b.emit(&rd, schema.EventInventorySnapshotComplete, c)
}

func (b *batch) podStatusChange(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	p := &cloudv1.PodStatusChange{
		Name:              rd.required(schema.AttrK8sPodName),
		Namespace:         rd.required(schema.AttrK8sNamespaceName),
		Uid:               rd.required(schema.AttrK8sPodUID),
		PodIp:             rd.str(schema.AttrK8sPodIP),
		NodeName:          rd.str(schema.AttrK8sNodeName),
		Phase:             rd.str(schema.AttrK8sPodStatusPhase),
		QosClass:          rd.str(schema.AttrPodQOSClass),
		TotalRestartCount: rd.count(schema.AttrPodRestartCount),
		ResourceUsage: &cloudv1.ResourceUsage{
			CpuRequestNanoCores: rd.int(schema.AttrPodCPURequest),
			CpuLimitNanoCores:   rd.int(schema.AttrPodCPULimit),
			MemoryRequestBytes:  rd.int(schema.AttrPodMemoryRequest),
			MemoryLimitBytes:    rd.int(schema.AttrPodMemoryLimit),
		},
		OwnerReferences: rd.owners(),
		CreatedAt:       rd.time(schema.AttrCreationTime),
		StatusTimestamp: b.recordTime(r),
		Action:          rd.action(),
	}
	var body struct {
		Status struct {
			Conditions            []corev1.PodCondition    `json:"conditions"`
			ContainerStatuses     []corev1.ContainerStatus `json:"containerStatuses"`
			InitContainerStatuses []corev1.ContainerStatus `json:"initContainerStatuses"`
		} `json:"status"`
	}
	rd.body(&body)
	if rd.reason != "" {
		return -1, rd.reason, rd.detail
	}
	p.ContainerStatuses = containerStatuses(body.Status.ContainerStatuses)
	p.InitContainerStatuses = containerStatuses(body.Status.InitContainerStatuses)
	for _, c := range body.Status.Conditions {
		p.Conditions = append(p.Conditions, &cloudv1.PodCondition{
			Type:               u(string(c.Type)),
			Status:             u(string(c.Status)),
			LastProbeTime:      k8sTime(c.LastProbeTime),
			LastTransitionTime: k8sTime(c.LastTransitionTime),
			Reason:             u(c.Reason),
			Message:            u(c.Message),
		})
	}
	return b.add(schema.EventPodStatusChange, p, 1), "", ""
}

func containerStatuses(in []corev1.ContainerStatus) []*cloudv1.ContainerStatus {
	out := make([]*cloudv1.ContainerStatus, 0, len(in))
	for i := range in {
		c := &in[i]
		cs := &cloudv1.ContainerStatus{
			Name:         u(c.Name),
			Image:        u(c.Image),
			ImageId:      u(c.ImageID),
			ContainerId:  u(c.ContainerID),
			Ready:        c.Ready,
			RestartCount: c.RestartCount,
			State:        containerState(&c.State),
			Started:      c.Started != nil && *c.Started,
		}
		if last := &c.LastTerminationState; last.Waiting != nil || last.Running != nil || last.Terminated != nil {
			cs.LastTerminationState = containerState(last)
		}
		out = append(out, cs)
	}
	return out
}

func containerState(s *corev1.ContainerState) *cloudv1.ContainerState {
	switch {
	case s.Waiting != nil:
		return &cloudv1.ContainerState{State: &cloudv1.ContainerState_Waiting{Waiting: &cloudv1.ContainerStateWaiting{
			Reason: u(s.Waiting.Reason), Message: u(s.Waiting.Message),
		}}}
	case s.Running != nil:
		return &cloudv1.ContainerState{State: &cloudv1.ContainerState_Running{Running: &cloudv1.ContainerStateRunning{
			StartedAt: k8sTime(s.Running.StartedAt),
		}}}
	case s.Terminated != nil:
		t := s.Terminated
		return &cloudv1.ContainerState{State: &cloudv1.ContainerState_Terminated{Terminated: &cloudv1.ContainerStateTerminated{
			ExitCode:    t.ExitCode,
			Signal:      t.Signal,
			Reason:      u(t.Reason),
			Message:     u(t.Message),
			StartedAt:   k8sTime(t.StartedAt),
			FinishedAt:  k8sTime(t.FinishedAt),
			ContainerId: u(t.ContainerID),
		}}}
	}
	return nil
}

func (b *batch) nodeConditionChange(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	n := &cloudv1.NodeConditionChange{
		Name:               rd.required(schema.AttrK8sNodeName),
		Uid:                rd.required(schema.AttrK8sNodeUID),
		InternalIps:        rd.strs(schema.AttrNodeInternalIPs),
		ExternalIps:        rd.strs(schema.AttrNodeExternalIPs),
		Hostname:           rd.str(schema.AttrNodeHostname),
		InstanceType:       rd.str(schema.AttrNodeInstanceType),
		Zone:               rd.str(schema.AttrNodeZone),
		CreatedAt:          rd.time(schema.AttrCreationTime),
		ConditionTimestamp: b.recordTime(r),
		Action:             rd.action(),
	}
	var body struct {
		Status struct {
			Conditions  []corev1.NodeCondition `json:"conditions"`
			Capacity    corev1.ResourceList    `json:"capacity"`
			Allocatable corev1.ResourceList    `json:"allocatable"`
		} `json:"status"`
	}
	rd.body(&body)
	if rd.reason != "" {
		return -1, rd.reason, rd.detail
	}
	for _, c := range body.Status.Conditions {
		n.Conditions = append(n.Conditions, &cloudv1.NodeCondition{
			Type:               u(string(c.Type)),
			Status:             u(string(c.Status)),
			LastHeartbeatTime:  k8sTime(c.LastHeartbeatTime),
			LastTransitionTime: k8sTime(c.LastTransitionTime),
			Reason:             u(c.Reason),
			Message:            u(c.Message),
		})
	}
	n.Capacity = quantities(body.Status.Capacity)
	n.Allocatable = quantities(body.Status.Allocatable)
	return b.add(schema.EventNodeConditionChange, n, 1), "", ""
}

func quantities(l corev1.ResourceList) map[string]string {
	if len(l) == 0 {
		return nil
	}
	out := make(map[string]string, len(l))
	for k, q := range l {
		out[u(string(k))] = q.String()
	}
	return out
}

func (b *batch) workloadRolloutStatus(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	kind := rd.required(schema.AttrWorkloadKind)
	prefix, ok := schema.WorkloadKinds[kind]
	if !ok && rd.reason == "" {
		return -1, ReasonInvalidAttribute, schema.AttrWorkloadKind
	}
	w := &cloudv1.WorkloadRolloutStatus{
		Kind:                kind,
		Name:                rd.required(prefix + ".name"),
		Uid:                 rd.required(prefix + ".uid"),
		Namespace:           rd.required(schema.AttrK8sNamespaceName),
		RolloutStatus:       rd.str(schema.AttrRolloutStatus),
		RolloutReason:       rd.str(schema.AttrRolloutReason),
		RolloutMessage:      rd.str(schema.AttrRolloutMessage),
		DesiredReplicas:     rd.count(schema.AttrRolloutDesiredReplicas),
		CurrentReplicas:     rd.count(schema.AttrRolloutCurrentReplicas),
		ReadyReplicas:       rd.count(schema.AttrRolloutReadyReplicas),
		AvailableReplicas:   rd.count(schema.AttrRolloutAvailableReplicas),
		UpdatedReplicas:     rd.count(schema.AttrRolloutUpdatedReplicas),
		UnavailableReplicas: rd.count(schema.AttrRolloutUnavailableReplicas),
		ObservedGeneration:  rd.int(schema.AttrRolloutObservedGeneration),
		MetadataGeneration:  rd.int(schema.AttrRolloutGeneration),
		CreatedAt:           rd.time(schema.AttrCreationTime),
		StatusTimestamp:     b.recordTime(r),
		Action:              rd.action(),
	}
	// DeploymentCondition has every field the conditions of all three kinds have.
	var body struct {
		Status struct {
			Conditions []appsv1.DeploymentCondition `json:"conditions"`
		} `json:"status"`
	}
	rd.body(&body)
	if rd.reason != "" {
		return -1, rd.reason, rd.detail
	}
	for _, c := range body.Status.Conditions {
		w.Conditions = append(w.Conditions, &cloudv1.WorkloadCondition{
			Type:               u(string(c.Type)),
			Status:             u(string(c.Status)),
			LastUpdateTime:     k8sTime(c.LastUpdateTime),
			LastTransitionTime: k8sTime(c.LastTransitionTime),
			Reason:             u(c.Reason),
			Message:            u(c.Message),
		})
	}
	return b.add(schema.EventWorkloadRolloutStatus, w, 1), "", ""
}

// recordTime is when the record says the change was seen: its Timestamp, else its
// ObservedTimestamp, else now.
func (b *batch) recordTime(r *record) *timestamppb.Timestamp {
	if ts := newTimestamp(r.lr.Timestamp()); ts != nil {
		return ts
	}
	if ts := newTimestamp(r.lr.ObservedTimestamp()); ts != nil {
		return ts
	}
	return timestamppb.New(b.now())
}

func k8sTime(t metav1.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t.Time)
}

// u is validUTF8 under a short name, for the many strings copied out of bodies.
func u(s string) string { return validUTF8(s) }

func copyStrings(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = u(s)
	}
	return out
}

func stringMap(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[u(k)] = u(v)
	}
	return out
}

// bool returns a bool attribute, false when absent.
func (rd *reader) bool(key string) bool {
	v, ok := rd.rec.attr(key)
	if !ok {
		return false
	}
	if v.Type() != pcommon.ValueTypeBool {
		rd.fail(ReasonInvalidAttribute, key)
		return false
	}
	return v.Bool()
}

// strs returns a string-slice attribute, nil when absent or empty.
func (rd *reader) strs(key string) []string {
	v, ok := rd.rec.attr(key)
	if !ok {
		return nil
	}
	if v.Type() != pcommon.ValueTypeSlice {
		rd.fail(ReasonInvalidAttribute, key)
		return nil
	}
	return rd.strList(key, v.Slice())
}

// prefixed collects the attributes under a template prefix (e.g. k8s.pod.label.) into a
// map keyed by the rest of the name; record attributes win over resource attributes.
func (rd *reader) prefixed(prefix string) map[string]string {
	var out map[string]string
	collect := func(m pcommon.Map) {
		for k, v := range m.All() {
			if !strings.HasPrefix(k, prefix) || len(k) == len(prefix) {
				continue
			}
			if v.Type() != pcommon.ValueTypeStr {
				rd.fail(ReasonInvalidAttribute, k)
				continue
			}
			if out == nil {
				out = make(map[string]string)
			}
			out[validUTF8(k[len(prefix):])] = validUTF8(v.Str())
		}
	}
	collect(rd.rec.res)
	collect(rd.rec.lr.Attributes())
	return out
}

// mapList reads a list-of-maps attribute, building one element per map; an attribute of
// another shape fails the record.
func mapList[T any](rd *reader, key string, build func(m mapReader) (T, bool)) []T {
	v, ok := rd.rec.attr(key)
	if !ok {
		return nil
	}
	if v.Type() != pcommon.ValueTypeSlice {
		rd.fail(ReasonInvalidAttribute, key)
		return nil
	}
	s := v.Slice()
	out := make([]T, 0, s.Len())
	for i := 0; i < s.Len(); i++ {
		e := s.At(i)
		if e.Type() != pcommon.ValueTypeMap {
			rd.fail(ReasonInvalidAttribute, key)
			return nil
		}
		t, ok := build(mapReader{m: e.Map(), rd: rd, key: key})
		if !ok {
			rd.fail(ReasonInvalidAttribute, key)
			return nil
		}
		out = append(out, t)
	}
	return out
}

// owners reads AttrOwnerReferences.
func (rd *reader) owners() []*cloudv1.OwnerReference {
	return mapList(rd, schema.AttrOwnerReferences, func(m mapReader) (*cloudv1.OwnerReference, bool) {
		return &cloudv1.OwnerReference{
			ApiVersion:         m.str("api_version"),
			Kind:               m.str("kind"),
			Name:               m.str("name"),
			Uid:                m.str("uid"),
			Controller:         m.bool("controller"),
			BlockOwnerDeletion: m.bool("block_owner_deletion"),
		}, true
	})
}

// servicePorts reads AttrServicePorts.
func (rd *reader) servicePorts() []*cloudv1.ServicePort {
	return mapList(rd, schema.AttrServicePorts, func(m mapReader) (*cloudv1.ServicePort, bool) {
		return &cloudv1.ServicePort{
			Name:       m.str("name"),
			Protocol:   m.str("protocol"),
			Port:       m.int32("port"),
			TargetPort: m.int32("target_port"),
			NodePort:   m.int32("node_port"),
		}, true
	})
}

// mapReader reads the entries of one map inside an attribute; problems are reported
// against the attribute.
type mapReader struct {
	m   pcommon.Map
	rd  *reader
	key string
}

func (m mapReader) str(k string) string {
	v, ok := m.m.Get(k)
	if !ok {
		return ""
	}
	if v.Type() != pcommon.ValueTypeStr {
		m.rd.fail(ReasonInvalidAttribute, m.key)
		return ""
	}
	return validUTF8(v.Str())
}

func (m mapReader) bool(k string) bool {
	v, ok := m.m.Get(k)
	if !ok {
		return false
	}
	if v.Type() != pcommon.ValueTypeBool {
		m.rd.fail(ReasonInvalidAttribute, m.key)
		return false
	}
	return v.Bool()
}

func (m mapReader) int32(k string) int32 {
	v, ok := m.m.Get(k)
	if !ok {
		return 0
	}
	if v.Type() != pcommon.ValueTypeInt || v.Int() < 0 || v.Int() > 1<<31-1 {
		m.rd.fail(ReasonInvalidAttribute, m.key)
		return 0
	}
	return int32(v.Int())
}

// rawBody returns the record body as a map, nil when the body is empty. Any other body
// type is invalid.
func (rd *reader) rawBody() map[string]any {
	body := rd.rec.lr.Body()
	switch body.Type() {
	case pcommon.ValueTypeEmpty:
		return nil
	case pcommon.ValueTypeMap:
		return body.Map().AsRaw()
	}
	rd.fail(ReasonInvalidAttribute, bodyDetail)
	return nil
}

// body decodes the record body (a map with Kubernetes API field names) into into, a
// pointer to a struct of Kubernetes API types. An empty body leaves into as it is.
func (rd *reader) body(into any) {
	raw := rd.rawBody()
	if raw == nil {
		return
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, into); err != nil {
		rd.fail(ReasonInvalidAttribute, bodyDetail)
	}
}

// Each calls fn for every record of ld in traversal order with the Item it went into, or
// with nil when the record was dropped or has no message of its own (a snapshot start).
// ld must be the plog.Logs that Map produced r from.
func (r *Result) Each(ld plog.Logs, fn func(lr plog.LogRecord, it *Item)) {
	idx := 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				var it *Item
				if o := r.owner[idx]; o >= 0 {
					it = &r.Items[o]
				}
				idx++
				fn(lrs.At(k), it)
			}
		}
	}
}
