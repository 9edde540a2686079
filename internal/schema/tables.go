package schema

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
)

// The tables of the inventory records: what each carries, where the receiver takes it from
// in the Kubernetes object, and which cloud.v1 field it becomes. Every record also carries
// AttrAction, which the tables leave to the receiver and logmap.

// NamespaceFields are the attributes of EventInventoryNamespace records.
var NamespaceFields = Table[corev1.Namespace, cloudv1.Namespace]{
	Str(AttrK8sNamespaceName, Required, func(n *corev1.Namespace) string { return n.Name }, func(m *cloudv1.Namespace, v string) { m.Name = v }),
	Str(AttrNamespaceUID, Required, func(n *corev1.Namespace) string { return string(n.UID) }, func(m *cloudv1.Namespace, v string) { m.Uid = v }),
	Prefixed(AttrK8sNamespaceLabelPrefix, func(n *corev1.Namespace) map[string]string { return n.Labels }, func(m *cloudv1.Namespace, v map[string]string) { m.Labels = v }),
	Time(AttrCreationTime, func(n *corev1.Namespace) time.Time { return n.CreationTimestamp.Time }, func(m *cloudv1.Namespace, v *timestamppb.Timestamp) { m.CreatedAt = v }),
}

// NodeFields are the attributes of EventInventoryNode records. EventNodeConditionChange
// records carry them too.
var NodeFields = Table[corev1.Node, cloudv1.Node]{
	Str(AttrK8sNodeName, Required, func(n *corev1.Node) string { return n.Name }, func(m *cloudv1.Node, v string) { m.Name = v }),
	Str(AttrK8sNodeUID, Required, func(n *corev1.Node) string { return string(n.UID) }, func(m *cloudv1.Node, v string) { m.Uid = v }),
	Prefixed(AttrK8sNodeLabelPrefix, func(n *corev1.Node) map[string]string { return n.Labels }, func(m *cloudv1.Node, v map[string]string) { m.Labels = v }),
	Strs(AttrNodeInternalIPs, func(n *corev1.Node) []string { return nodeAddresses(n, corev1.NodeInternalIP) }, func(m *cloudv1.Node, v []string) { m.InternalIps = v }),
	Strs(AttrNodeExternalIPs, func(n *corev1.Node) []string { return nodeAddresses(n, corev1.NodeExternalIP) }, func(m *cloudv1.Node, v []string) { m.ExternalIps = v }),
	Str(AttrNodeHostname, Optional, nodeHostname, func(m *cloudv1.Node, v string) { m.Hostname = v }),
	Bool(AttrNodeReady, nodeReady, func(m *cloudv1.Node, v bool) { m.Ready = v }),
	Str(AttrNodeInstanceType, Optional, func(n *corev1.Node) string { return n.Labels[corev1.LabelInstanceTypeStable] }, func(m *cloudv1.Node, v string) { m.InstanceType = v }),
	Str(AttrNodeZone, Optional, func(n *corev1.Node) string { return n.Labels[corev1.LabelTopologyZone] }, func(m *cloudv1.Node, v string) { m.Zone = v }),
	Time(AttrCreationTime, func(n *corev1.Node) time.Time { return n.CreationTimestamp.Time }, func(m *cloudv1.Node, v *timestamppb.Timestamp) { m.CreatedAt = v }),
}

// PodFields are the attributes of EventInventoryPod records, read from the pod the cache
// keeps (slim.Pod). EventPodStatusChange records
// carry them too.
var PodFields = Table[slim.Pod, cloudv1.Pod]{
	Str(AttrK8sPodName, Required, func(p *slim.Pod) string { return p.Name }, func(m *cloudv1.Pod, v string) { m.Name = v }),
	Str(AttrK8sNamespaceName, Required, func(p *slim.Pod) string { return p.Namespace }, func(m *cloudv1.Pod, v string) { m.Namespace = v }),
	Str(AttrK8sPodUID, Required, func(p *slim.Pod) string { return string(p.UID) }, func(m *cloudv1.Pod, v string) { m.Uid = v }),
	Str(AttrK8sPodIP, Optional, func(p *slim.Pod) string { return p.Status.PodIP }, func(m *cloudv1.Pod, v string) { m.PodIp = v }),
	Str[slim.Pod, cloudv1.Pod](AttrK8sNodeName, Optional, func(p *slim.Pod) string { return p.Spec.NodeName }, nil),
	Str(AttrK8sPodStatusPhase, Optional, func(p *slim.Pod) string { return string(p.Status.Phase) }, func(m *cloudv1.Pod, v string) { m.Phase = v }),
	Bool(AttrPodReady, podReady, func(m *cloudv1.Pod, v bool) { m.Ready = v }),
	Prefixed(AttrK8sPodLabelPrefix, func(p *slim.Pod) map[string]string { return p.Labels }, func(m *cloudv1.Pod, v map[string]string) { m.Labels = v }),
	Maps(AttrOwnerReferences, OwnerFields, func(p *slim.Pod) []metav1.OwnerReference { return p.OwnerReferences }, func(m *cloudv1.Pod, v []*cloudv1.OwnerReference) { m.OwnerReferences = v }),
	Time(AttrCreationTime, func(p *slim.Pod) time.Time { return p.CreationTimestamp.Time }, func(m *cloudv1.Pod, v *timestamppb.Timestamp) { m.CreatedAt = v }),
}

// The keys of the maps in AttrOwnerReferences and AttrServicePorts.
const (
	ownerAPIVersion         = "api_version"
	ownerKind               = "kind"
	ownerName               = "name"
	ownerUID                = "uid"
	ownerController         = "controller"
	ownerBlockOwnerDeletion = "block_owner_deletion"

	portName           = "name"
	portProtocol       = "protocol"
	portPort           = "port"
	portTargetPort     = "target_port"
	portTargetPortName = "target_port_name"
	portNodePort       = "node_port"
)

// OwnerFields are the keys of each map in AttrOwnerReferences.
var OwnerFields = Table[metav1.OwnerReference, cloudv1.OwnerReference]{
	Str(ownerAPIVersion, Optional, func(o *metav1.OwnerReference) string { return o.APIVersion }, func(m *cloudv1.OwnerReference, v string) { m.ApiVersion = v }),
	Str(ownerKind, Optional, func(o *metav1.OwnerReference) string { return o.Kind }, func(m *cloudv1.OwnerReference, v string) { m.Kind = v }),
	Str(ownerName, Optional, func(o *metav1.OwnerReference) string { return o.Name }, func(m *cloudv1.OwnerReference, v string) { m.Name = v }),
	Str(ownerUID, Optional, func(o *metav1.OwnerReference) string { return string(o.UID) }, func(m *cloudv1.OwnerReference, v string) { m.Uid = v }),
	Bool(ownerController, func(o *metav1.OwnerReference) bool { return o.Controller != nil && *o.Controller }, func(m *cloudv1.OwnerReference, v bool) { m.Controller = v }),
	Bool(ownerBlockOwnerDeletion, func(o *metav1.OwnerReference) bool { return o.BlockOwnerDeletion != nil && *o.BlockOwnerDeletion }, func(m *cloudv1.OwnerReference, v bool) { m.BlockOwnerDeletion = v }),
}

// Workload is what a workload record shows of a Deployment, StatefulSet, DaemonSet,
// ReplicaSet, Job, CronJob or bare Pod.
type Workload struct {
	Kind           string // a key of WorkloadKinds
	Meta           *metav1.ObjectMeta
	ServiceAccount string // of the pod template; "" means "default"
}

// WorkloadFields returns the attributes of the EventInventoryWorkload records of a kind
// (a key of WorkloadKinds), whose name, UID and labels are under the kind's namespace.
func WorkloadFields(kind string) (Table[Workload, cloudv1.Workload], bool) {
	t, ok := workloadFields[kind]
	return t, ok
}

var workloadFields = func() map[string]Table[Workload, cloudv1.Workload] {
	out := make(map[string]Table[Workload, cloudv1.Workload], len(WorkloadKinds))
	for kind, prefix := range WorkloadKinds {
		out[kind] = Table[Workload, cloudv1.Workload]{
			Str(AttrWorkloadKind, Required, func(w *Workload) string { return w.Kind }, func(m *cloudv1.Workload, v string) { m.Kind = v }),
			Str(prefix+".name", Required, func(w *Workload) string { return w.Meta.Name }, func(m *cloudv1.Workload, v string) { m.Name = v }),
			Str(prefix+".uid", Required, func(w *Workload) string { return string(w.Meta.UID) }, func(m *cloudv1.Workload, v string) { m.Uid = v }),
			Str(AttrK8sNamespaceName, Optional, func(w *Workload) string { return w.Meta.Namespace }, func(m *cloudv1.Workload, v string) { m.Namespace = v }),
			Prefixed(prefix+".label.", func(w *Workload) map[string]string { return w.Meta.Labels }, func(m *cloudv1.Workload, v map[string]string) { m.Labels = v }),
			Str(AttrServiceAccountName, Optional, func(w *Workload) string {
				if w.ServiceAccount == "" {
					return "default"
				}
				return w.ServiceAccount
			}, func(m *cloudv1.Workload, v string) { m.ServiceAccount = v }),
			Time(AttrCreationTime, func(w *Workload) time.Time { return w.Meta.CreationTimestamp.Time }, func(m *cloudv1.Workload, v *timestamppb.Timestamp) { m.CreatedAt = v }),
		}
	}
	return out
}()

// ServiceFields are the attributes of EventInventoryService records.
var ServiceFields = Table[corev1.Service, cloudv1.Service]{
	Str(AttrK8sServiceName, Required, func(s *corev1.Service) string { return s.Name }, func(m *cloudv1.Service, v string) { m.Name = v }),
	Str(AttrK8sNamespaceName, Required, func(s *corev1.Service) string { return s.Namespace }, func(m *cloudv1.Service, v string) { m.Namespace = v }),
	Str(AttrK8sServiceUID, Required, func(s *corev1.Service) string { return string(s.UID) }, func(m *cloudv1.Service, v string) { m.Uid = v }),
	Str(AttrK8sServiceType, Optional, func(s *corev1.Service) string { return string(s.Spec.Type) }, func(m *cloudv1.Service, v string) { m.ServiceType = v }),
	Prefixed(AttrK8sServiceLabelPrefix, func(s *corev1.Service) map[string]string { return s.Labels }, func(m *cloudv1.Service, v map[string]string) { m.Labels = v }),
	Prefixed(AttrK8sServiceAnnotationPrefix, func(s *corev1.Service) map[string]string { return s.Annotations }, func(m *cloudv1.Service, v map[string]string) { m.Annotations = v }),
	Prefixed(AttrK8sServiceSelectorPrefix, func(s *corev1.Service) map[string]string { return s.Spec.Selector }, func(m *cloudv1.Service, v map[string]string) { m.Selector = v }),
	Str(AttrServiceClusterIP, Optional, func(s *corev1.Service) string { return s.Spec.ClusterIP }, func(m *cloudv1.Service, v string) { m.ClusterIp = v }),
	Strs(AttrServiceExternalIPs, func(s *corev1.Service) []string { return s.Spec.ExternalIPs }, func(m *cloudv1.Service, v []string) { m.ExternalIps = v }),
	Maps(AttrServicePorts, ServicePortFields, func(s *corev1.Service) []corev1.ServicePort { return s.Spec.Ports }, func(m *cloudv1.Service, v []*cloudv1.ServicePort) { m.Ports = v }),
	Time(AttrCreationTime, func(s *corev1.Service) time.Time { return s.CreationTimestamp.Time }, func(m *cloudv1.Service, v *timestamppb.Timestamp) { m.CreatedAt = v }),
}

// ServicePortFields are the keys of each map in AttrServicePorts. A named targetPort is
// written as target_port_name, which cloud.v1 has no field for.
var ServicePortFields = Table[corev1.ServicePort, cloudv1.ServicePort]{
	Str(portName, Optional, func(p *corev1.ServicePort) string { return p.Name }, func(m *cloudv1.ServicePort, v string) { m.Name = v }),
	Str(portProtocol, Optional, func(p *corev1.ServicePort) string { return string(p.Protocol) }, func(m *cloudv1.ServicePort, v string) { m.Protocol = v }),
	Int32(portPort, func(p *corev1.ServicePort) int32 { return p.Port }, func(m *cloudv1.ServicePort, v int32) { m.Port = v }),
	Int32(portTargetPort, func(p *corev1.ServicePort) int32 { return p.TargetPort.IntVal }, func(m *cloudv1.ServicePort, v int32) { m.TargetPort = v }),
	Str[corev1.ServicePort, cloudv1.ServicePort](portTargetPortName, Optional, func(p *corev1.ServicePort) string { return p.TargetPort.StrVal }, nil),
	Int32(portNodePort, func(p *corev1.ServicePort) int32 { return p.NodePort }, func(m *cloudv1.ServicePort, v int32) { m.NodePort = v }),
}

// Policy is what a policy record shows of a NetworkPolicy or an AuthorizationPolicy.
type Policy struct {
	Object     metav1.Object
	APIVersion string   // the served version read, e.g. networking.k8s.io/v1
	Targets    []string // the workloads whose pods it selects, "<namespace>.<Kind>.<name>"
}

// NetworkPolicyFields and AuthorizationPolicyFields are the attributes of
// EventInventoryNetworkPolicy and EventInventoryAuthorizationPolicy records, besides the
// spec in the body.
var (
	NetworkPolicyFields = policyFields(
		func(m *cloudv1.NetworkPolicy) *cloudv1.ObjectMeta { return m.Metadata },
		func(m *cloudv1.NetworkPolicy, v string) { m.ApiVersion = v },
		func(m *cloudv1.NetworkPolicy, v []string) { m.TargetWorkloads = v })
	AuthorizationPolicyFields = policyFields(
		func(m *cloudv1.AuthorizationPolicy) *cloudv1.ObjectMeta { return m.Metadata },
		func(m *cloudv1.AuthorizationPolicy, v string) { m.ApiVersion = v },
		func(m *cloudv1.AuthorizationPolicy, v []string) { m.TargetWorkloads = v })
)

// policyFields is the table of a policy message M whose metadata meta returns; Read needs
// the metadata set.
func policyFields[M any](meta func(*M) *cloudv1.ObjectMeta, apiVersion func(*M, string), targets func(*M, []string)) Table[Policy, M] {
	return Table[Policy, M]{
		Str(AttrPolicyName, Required, func(p *Policy) string { return p.Object.GetName() }, func(m *M, v string) { meta(m).Name = v }),
		Str(AttrK8sNamespaceName, Required, func(p *Policy) string { return p.Object.GetNamespace() }, func(m *M, v string) { meta(m).Namespace = v }),
		Str(AttrPolicyUID, Required, func(p *Policy) string { return string(p.Object.GetUID()) }, func(m *M, v string) { meta(m).Uid = v }),
		Str(AttrPolicyResourceVersion, Optional, func(p *Policy) string { return p.Object.GetResourceVersion() }, func(m *M, v string) { meta(m).ResourceVersion = v }),
		Str(AttrPolicyAPIVersion, Optional, func(p *Policy) string { return p.APIVersion }, apiVersion),
		Prefixed(AttrPolicyLabelPrefix, func(p *Policy) map[string]string { return p.Object.GetLabels() }, func(m *M, v map[string]string) { meta(m).Labels = v }),
		Prefixed(AttrPolicyAnnotationPrefix, func(p *Policy) map[string]string { return p.Object.GetAnnotations() }, func(m *M, v map[string]string) { meta(m).Annotations = v }),
		Strs(AttrPolicyTargetWorkloads, func(p *Policy) []string { return p.Targets }, targets),
	}
}

// Integrations is the presence of the tools Kestrel Cloud can work with.
type Integrations struct {
	Datadog, ArgoCD, ArgoRollouts, Flux, Karpenter bool
}

// IntegrationFields are the attributes of EventInventorySnapshotComplete records.
var IntegrationFields = Table[Integrations, cloudv1.InventoryCommit]{
	Bool(AttrIntegrationDatadog, func(i *Integrations) bool { return i.Datadog }, func(m *cloudv1.InventoryCommit, v bool) { m.HasDatadog = v }),
	Bool(AttrIntegrationArgoCD, func(i *Integrations) bool { return i.ArgoCD }, func(m *cloudv1.InventoryCommit, v bool) { m.HasArgocd = v }),
	Bool(AttrIntegrationArgoRollouts, func(i *Integrations) bool { return i.ArgoRollouts }, func(m *cloudv1.InventoryCommit, v bool) { m.HasRollouts = v }),
	Bool(AttrIntegrationFlux, func(i *Integrations) bool { return i.Flux }, func(m *cloudv1.InventoryCommit, v bool) { m.HasFlux = v }),
	Bool(AttrIntegrationKarpenter, func(i *Integrations) bool { return i.Karpenter }, func(m *cloudv1.InventoryCommit, v bool) { m.HasKarpenter = v }),
}

func nodeAddresses(n *corev1.Node, t corev1.NodeAddressType) []string {
	var out []string
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			out = append(out, a.Address)
		}
	}
	return out
}

// nodeHostname is the node's hostname address (the last, should there be several).
func nodeHostname(n *corev1.Node) string {
	hostname := ""
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeHostName {
			hostname = a.Address
		}
	}
	return hostname
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(p *slim.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
