package logmap

import (
	"math"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/proto"
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
	rd := b.reader(r)
	fields, ok := schema.WorkloadFields(rd.Required(schema.AttrWorkloadKind))
	if !ok {
		rd.fail(ReasonInvalidAttribute, schema.AttrWorkloadKind)
		return -1, rd.reason, rd.detail
	}
	w := &cloudv1.Workload{}
	fields.Read(rd, w)
	w.Action = rd.action()
	return b.emit(rd, schema.EventInventoryWorkload, w)
}

// inventory is the mapper of the records that one of schema's tables describes; action
// sets the message's action.
func inventory[S, M any, PM interface {
	*M
	proto.Message
}](eventName string, fields schema.Table[S, M], action func(*M, cloudv1.Action)) mapFunc {
	return func(b *batch, r *record) (int, Reason, string) {
		rd := b.reader(r)
		m := new(M)
		fields.Read(rd, m)
		action(m, rd.action())
		return b.emit(rd, eventName, PM(m))
	}
}

func (b *batch) networkPolicy(r *record) (int, Reason, string) {
	rd := b.reader(r)
	np := &cloudv1.NetworkPolicy{Kind: "NetworkPolicy", Metadata: &cloudv1.ObjectMeta{}}
	schema.NetworkPolicyFields.Read(rd, np)
	if np.ApiVersion == "" {
		np.ApiVersion = "networking.k8s.io/v1"
	}
	np.Action = rd.action()
	var body struct {
		Spec networkingv1.NetworkPolicySpec `json:"spec"`
	}
	rd.body(&body)
	np.Spec = networkPolicySpec(&body.Spec)
	return b.emit(rd, schema.EventInventoryNetworkPolicy, np)
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
	rd := b.reader(r)
	ap := &cloudv1.AuthorizationPolicy{Kind: "AuthorizationPolicy", Metadata: &cloudv1.ObjectMeta{}}
	schema.AuthorizationPolicyFields.Read(rd, ap)
	if ap.ApiVersion == "" {
		ap.ApiVersion = "security.istio.io/v1"
	}
	ap.Action = rd.action()
	var spec *schema.AuthorizationPolicySpec
	if raw := rd.rawBody(); raw != nil {
		var err error
		spec, err = schema.ParseAuthorizationPolicySpec(asMap(raw["spec"]))
		if err != nil {
			rd.fail(ReasonInvalidAttribute, bodyDetail)
		}
	}
	ap.Spec = authorizationPolicySpec(spec)
	return b.emit(rd, schema.EventInventoryAuthorizationPolicy, ap)
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
	rd := b.reader(r)
	c := &cloudv1.InventoryCommit{}
	schema.IntegrationFields.Read(rd, c)
	return b.emit(rd, schema.EventInventorySnapshotComplete, c)
}

func (b *batch) podStatusChange(r *record) (int, Reason, string) {
	rd := b.reader(r)
	p := &cloudv1.PodStatusChange{
		Name:              rd.Required(schema.AttrK8sPodName),
		Namespace:         rd.Required(schema.AttrK8sNamespaceName),
		Uid:               rd.Required(schema.AttrK8sPodUID),
		PodIp:             rd.Str(schema.AttrK8sPodIP),
		NodeName:          rd.Str(schema.AttrK8sNodeName),
		Phase:             rd.Str(schema.AttrK8sPodStatusPhase),
		QosClass:          rd.Str(schema.AttrPodQOSClass),
		TotalRestartCount: rd.count(schema.AttrPodRestartCount),
		ResourceUsage: &cloudv1.ResourceUsage{
			CpuRequestNanoCores: rd.int(schema.AttrPodCPURequest),
			CpuLimitNanoCores:   rd.int(schema.AttrPodCPULimit),
			MemoryRequestBytes:  rd.int(schema.AttrPodMemoryRequest),
			MemoryLimitBytes:    rd.int(schema.AttrPodMemoryLimit),
		},
		OwnerReferences: schema.ReadMaps(rd, schema.AttrOwnerReferences, schema.OwnerFields),
		CreatedAt:       rd.Time(schema.AttrCreationTime),
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
		Name:               rd.Required(schema.AttrK8sNodeName),
		Uid:                rd.Required(schema.AttrK8sNodeUID),
		InternalIps:        rd.Strs(schema.AttrNodeInternalIPs),
		ExternalIps:        rd.Strs(schema.AttrNodeExternalIPs),
		Hostname:           rd.Str(schema.AttrNodeHostname),
		InstanceType:       rd.Str(schema.AttrNodeInstanceType),
		Zone:               rd.Str(schema.AttrNodeZone),
		CreatedAt:          rd.Time(schema.AttrCreationTime),
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
	kind := rd.Required(schema.AttrWorkloadKind)
	prefix, ok := schema.WorkloadKinds[kind]
	if !ok && rd.reason == "" {
		return -1, ReasonInvalidAttribute, schema.AttrWorkloadKind
	}
	w := &cloudv1.WorkloadRolloutStatus{
		Kind:                kind,
		Name:                rd.Required(prefix + ".name"),
		Uid:                 rd.Required(prefix + ".uid"),
		Namespace:           rd.Required(schema.AttrK8sNamespaceName),
		RolloutStatus:       rd.Str(schema.AttrRolloutStatus),
		RolloutReason:       rd.Str(schema.AttrRolloutReason),
		RolloutMessage:      rd.Str(schema.AttrRolloutMessage),
		DesiredReplicas:     rd.count(schema.AttrRolloutDesiredReplicas),
		CurrentReplicas:     rd.count(schema.AttrRolloutCurrentReplicas),
		ReadyReplicas:       rd.count(schema.AttrRolloutReadyReplicas),
		AvailableReplicas:   rd.count(schema.AttrRolloutAvailableReplicas),
		UpdatedReplicas:     rd.count(schema.AttrRolloutUpdatedReplicas),
		UnavailableReplicas: rd.count(schema.AttrRolloutUnavailableReplicas),
		ObservedGeneration:  rd.int(schema.AttrRolloutObservedGeneration),
		MetadataGeneration:  rd.int(schema.AttrRolloutGeneration),
		CreatedAt:           rd.Time(schema.AttrCreationTime),
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
	if b.noRecordTime {
		return nil
	}
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

// Bool returns a bool attribute, false when absent.
func (rd *reader) Bool(key string) bool {
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

// Int32 returns an int attribute in [0, 2³¹), 0 when absent.
func (rd *reader) Int32(key string) int32 {
	v, ok := rd.rec.attr(key)
	if !ok {
		return 0
	}
	u, ok := uintValue(v)
	if !ok || u > math.MaxInt32 {
		rd.fail(ReasonInvalidAttribute, key)
		return 0
	}
	return int32(u)
}

// Strs returns a string-slice attribute, nil when absent or empty.
func (rd *reader) Strs(key string) []string {
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

// Prefixed collects the attributes under a template prefix (e.g. k8s.pod.label.) into a
// map keyed by the rest of the name; record attributes win over resource attributes.
func (rd *reader) Prefixed(prefix string) map[string]string {
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
	collect(rd.rec.attrs)
	return out
}

// Maps returns the length of a list-of-maps attribute; another type fails the record. It
// keeps the list for MapAt.
func (rd *reader) Maps(key string) int {
	rd.maps = pcommon.Slice{}
	v, ok := rd.rec.attr(key)
	if !ok {
		return 0
	}
	if v.Type() != pcommon.ValueTypeSlice {
		rd.fail(ReasonInvalidAttribute, key)
		return 0
	}
	rd.maps = v.Slice()
	return rd.maps.Len()
}

// MapAt returns a reader of the i-th map of the list Maps returned the length of, nil (and
// a failed record) when it is not a map. Problems in the map are reported against the
// attribute. The reader is reused by the next call.
func (rd *reader) MapAt(key string, i int) schema.Reader {
	m, ok := rd.mapAt(key, i)
	if !ok {
		return nil
	}
	if rd.spare == nil {
		rd.spare = &elemReader{}
	}
	e := rd.spare
	e.rec = record{res: noAttrs, attrs: m}
	e.reader = reader{rec: &e.rec, list: key, parent: rd}
	return &e.reader
}

func (rd *reader) mapAt(key string, i int) (pcommon.Map, bool) {
	e := rd.maps.At(i)
	if e.Type() != pcommon.ValueTypeMap {
		rd.fail(ReasonInvalidAttribute, key)
		return pcommon.Map{}, false
	}
	return e.Map(), true
}

// mapList reads a list-of-maps attribute, building one element per map; a map that build
// refuses, or an element that is not a map, fails the record.
func mapList[T any](rd *reader, key string, build func(m pcommon.Map) (T, bool)) []T {
	n := rd.Maps(key)
	if n == 0 {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		m, ok := rd.mapAt(key, i)
		if !ok {
			return nil
		}
		if out[i], ok = build(m); !ok {
			rd.fail(ReasonInvalidAttribute, key)
			return nil
		}
	}
	return out
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
