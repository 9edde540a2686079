package schema

import (
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Inventory event names: the current state of one Kubernetes object, with AttrAction saying
// whether it appeared, changed or went away. The kestrel exporter keeps the latest state of
// every object (by UID) to replay it after a reconnect.
const (
	// EventInventoryWorkload is a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
	// CronJob or bare Pod (one without ownerReferences). Becomes a cloud.v1.Workload.
	EventInventoryWorkload = "kestrelai.k8s.inventory.workload"
	// EventInventoryPod is a Pod. Becomes a cloud.v1.Pod.
	EventInventoryPod = "kestrelai.k8s.inventory.pod"
	// EventInventoryNamespace is a Namespace. Becomes a cloud.v1.Namespace.
	EventInventoryNamespace = "kestrelai.k8s.inventory.namespace"
	// EventInventoryNode is a Node. Becomes a cloud.v1.Node.
	EventInventoryNode = "kestrelai.k8s.inventory.node"
	// EventInventoryService is a Service. Becomes a cloud.v1.Service.
	EventInventoryService = "kestrelai.k8s.inventory.service"
	// EventInventoryNetworkPolicy is a networking.k8s.io/v1 NetworkPolicy. Body: {"spec": the
	// NetworkPolicySpec as in the Kubernetes API}. Becomes a cloud.v1.NetworkPolicy.
	EventInventoryNetworkPolicy = "kestrelai.k8s.inventory.network_policy"
	// EventInventoryAuthorizationPolicy is an Istio security.istio.io AuthorizationPolicy.
	// Body: {"spec": the policy's spec as in the Istio API}. Becomes a cloud.v1.AuthorizationPolicy.
	EventInventoryAuthorizationPolicy = "kestrelai.k8s.inventory.authorization_policy"

	// EventInventorySnapshotStart opens a full snapshot (a source also emits it at start to
	// announce that a snapshot is coming): the records up to the next
	// EventInventorySnapshotComplete describe every object the source sees. Objects the
	// exporter knows that the snapshot does not mention are gone. It has no attributes and
	// no cloud.v1 message of its own.
	EventInventorySnapshotStart = "kestrelai.k8s.inventory.snapshot_start"
	// EventInventorySnapshotComplete ends a snapshot, or reports changed integration
	// presence (AttrIntegration*). Becomes a cloud.v1.InventoryCommit.
	EventInventorySnapshotComplete = "kestrelai.k8s.inventory.snapshot_complete"
)

// InventoryOrder is the order of the inventory kinds in a snapshot, by event name:
// namespaces and nodes before what lives in them, workloads before their pods, then
// services and the policies, whose targets are workloads. Sources list and replays
// follow it.
var InventoryOrder = []string{
	EventInventoryNamespace, EventInventoryNode, EventInventoryWorkload, EventInventoryPod,
	EventInventoryService, EventInventoryNetworkPolicy, EventInventoryAuthorizationPolicy,
}

// Incident-signal event names. Unlike inventory they are real-time notifications, not state.
const (
	// EventPodStatusChange is a problematic pod, or a significant change of a pod's status.
	// It carries the attributes of a Pod record (PodFields) and the pod's QoS class,
	// restarts and resources. Body: {"status": {"conditions", "containerStatuses",
	// "initContainerStatuses"}} as in the Kubernetes API. Becomes a cloud.v1.PodStatusChange.
	EventPodStatusChange = "kestrelai.k8s.pod.status_change"
	// EventNodeConditionChange is a problematic node or a change of its conditions. It
	// carries the attributes of a Node record (NodeFields). Body: {"status": {"conditions",
	// "capacity", "allocatable"}}. Becomes a cloud.v1.NodeConditionChange.
	EventNodeConditionChange = "kestrelai.k8s.node.condition_change"
	// EventWorkloadRolloutStatus is the rollout state of a Deployment, StatefulSet or
	// DaemonSet. Body: {"status": {"conditions"}}. Becomes a cloud.v1.WorkloadRolloutStatus.
	EventWorkloadRolloutStatus = "kestrelai.k8s.workload.rollout_status"
)

// Kubernetes identity and metadata from the semantic conventions, beyond those in schema.go.
const (
	AttrK8sPodIP          = string(semconv.K8SPodIPKey)
	AttrK8sPodStatusPhase = string(semconv.K8SPodStatusPhaseKey)
	AttrK8sNodeUID        = string(semconv.K8SNodeUIDKey)
	AttrK8sServiceName    = string(semconv.K8SServiceNameKey)
	AttrK8sServiceUID     = string(semconv.K8SServiceUIDKey)
	AttrK8sServiceType    = string(semconv.K8SServiceTypeKey)

	// Label, annotation and selector templates: the key is the prefix plus the label name,
	// the value the label value (possibly empty).
	AttrK8sNamespaceLabelPrefix    = "k8s.namespace.label."
	AttrK8sNodeLabelPrefix         = "k8s.node.label."
	AttrK8sPodLabelPrefix          = "k8s.pod.label."
	AttrK8sServiceLabelPrefix      = "k8s.service.label."
	AttrK8sServiceAnnotationPrefix = "k8s.service.annotation."
	AttrK8sServiceSelectorPrefix   = "k8s.service.selector."
)

// Workload kinds (values of AttrWorkloadKind) and the semantic-convention namespace of each:
// a workload record carries <namespace>.name, <namespace>.uid and <namespace>.label.<key>,
// e.g. k8s.deployment.name.
var WorkloadKinds = map[string]string{
	"Deployment":  "k8s.deployment",
	"StatefulSet": "k8s.statefulset",
	"DaemonSet":   "k8s.daemonset",
	"ReplicaSet":  "k8s.replicaset",
	"Job":         "k8s.job",
	"CronJob":     "k8s.cronjob",
	"Pod":         "k8s.pod",
}

// Attributes of our own for inventory and incident records. Record attributes.
const (
	// AttrCreationTime (string, RFC 3339): the object's metadata.creationTimestamp.
	AttrCreationTime = "kestrelai.k8s.creation_time"
	// AttrOwnerReferences (slice of maps with keys api_version, kind, name, uid (strings),
	// controller, block_owner_deletion (bools)): the object's metadata.ownerReferences.
	AttrOwnerReferences = "kestrelai.k8s.owner_references"
	// AttrNamespaceUID (string): the Namespace's UID (the conventions have no such name).
	AttrNamespaceUID = "kestrelai.k8s.namespace.uid"

	// AttrWorkloadKind (string): Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod.
	AttrWorkloadKind = "kestrelai.k8s.workload.kind"
	// AttrServiceAccountName (string): the pod template's serviceAccountName ("default" if empty).
	AttrServiceAccountName = "kestrelai.k8s.service_account.name"

	// AttrPodReady (bool): the pod's Ready condition is True.
	AttrPodReady = "kestrelai.k8s.pod.ready"
	// AttrPodQOSClass (string): status.qosClass.
	AttrPodQOSClass = "kestrelai.k8s.pod.qos_class"
	// AttrPodRestartCount (int): restarts of all containers and init containers.
	AttrPodRestartCount = "kestrelai.k8s.pod.restart_count"
	// AttrPodCPURequest, AttrPodCPULimit (int, nanocores) and AttrPodMemoryRequest,
	// AttrPodMemoryLimit (int, bytes): summed over the pod's containers.
	AttrPodCPURequest    = "kestrelai.k8s.pod.cpu.request"
	AttrPodCPULimit      = "kestrelai.k8s.pod.cpu.limit"
	AttrPodMemoryRequest = "kestrelai.k8s.pod.memory.request"
	AttrPodMemoryLimit   = "kestrelai.k8s.pod.memory.limit"

	// AttrNodeReady (bool): the node's Ready condition is True.
	AttrNodeReady = "kestrelai.k8s.node.ready"
	// AttrNodeInternalIPs, AttrNodeExternalIPs (string slices) and AttrNodeHostname (string):
	// from status.addresses.
	AttrNodeInternalIPs = "kestrelai.k8s.node.internal_ips"
	AttrNodeExternalIPs = "kestrelai.k8s.node.external_ips"
	AttrNodeHostname    = "kestrelai.k8s.node.hostname"
	// AttrNodeInstanceType, AttrNodeZone (strings): the node.kubernetes.io/instance-type and
	// topology.kubernetes.io/zone labels.
	AttrNodeInstanceType = "kestrelai.k8s.node.instance_type"
	AttrNodeZone         = "kestrelai.k8s.node.zone"

	// AttrServiceClusterIP (string): spec.clusterIP.
	AttrServiceClusterIP = "kestrelai.k8s.service.cluster_ip"
	// AttrServiceExternalIPs (string slice): spec.externalIPs.
	AttrServiceExternalIPs = "kestrelai.k8s.service.external_ips"
	// AttrServicePorts (slice of maps with keys name, protocol (strings), port, target_port,
	// node_port (ints) and target_port_name (string, for a named targetPort)): spec.ports.
	AttrServicePorts = "kestrelai.k8s.service.ports"

	// Policies (NetworkPolicy and AuthorizationPolicy records).
	// AttrPolicyName, AttrPolicyUID, AttrPolicyResourceVersion (strings): the policy's metadata.
	AttrPolicyName            = "kestrelai.k8s.policy.name"
	AttrPolicyUID             = "kestrelai.k8s.policy.uid"
	AttrPolicyResourceVersion = "kestrelai.k8s.policy.resource_version"
	// AttrPolicyAPIVersion (string): e.g. networking.k8s.io/v1 or security.istio.io/v1.
	AttrPolicyAPIVersion = "kestrelai.k8s.policy.api_version"
	// AttrPolicyLabelPrefix, AttrPolicyAnnotationPrefix: label and annotation templates.
	AttrPolicyLabelPrefix      = "kestrelai.k8s.policy.label."
	AttrPolicyAnnotationPrefix = "kestrelai.k8s.policy.annotation."
	// AttrPolicyTargetWorkloads (string slice): the workloads whose pods the policy selects,
	// as "<namespace>.<Kind>.<name>".
	AttrPolicyTargetWorkloads = "kestrelai.k8s.policy.target_workloads"

	// Rollout state (WorkloadRolloutStatus records).
	// AttrRolloutStatus (string): Progressing, Complete, Failed or TimedOut.
	AttrRolloutStatus = "kestrelai.k8s.rollout.status"
	// AttrRolloutReason, AttrRolloutMessage (strings): why, e.g. ProgressDeadlineExceeded.
	AttrRolloutReason  = "kestrelai.k8s.rollout.reason"
	AttrRolloutMessage = "kestrelai.k8s.rollout.message"
	// Replica counts (ints). Desired is spec.replicas, or desiredNumberScheduled for DaemonSets.
	AttrRolloutDesiredReplicas     = "kestrelai.k8s.rollout.replicas.desired"
	AttrRolloutCurrentReplicas     = "kestrelai.k8s.rollout.replicas.current"
	AttrRolloutReadyReplicas       = "kestrelai.k8s.rollout.replicas.ready"
	AttrRolloutAvailableReplicas   = "kestrelai.k8s.rollout.replicas.available"
	AttrRolloutUpdatedReplicas     = "kestrelai.k8s.rollout.replicas.updated"
	AttrRolloutUnavailableReplicas = "kestrelai.k8s.rollout.replicas.unavailable"
	// AttrRolloutGeneration, AttrRolloutObservedGeneration (ints): metadata.generation and
	// status.observedGeneration.
	AttrRolloutGeneration         = "kestrelai.k8s.rollout.generation"
	AttrRolloutObservedGeneration = "kestrelai.k8s.rollout.observed_generation"

	// Integration presence (bools) on EventInventorySnapshotComplete records.
	AttrIntegrationDatadog      = "kestrelai.integration.datadog"
	AttrIntegrationArgoCD       = "kestrelai.integration.argocd"
	AttrIntegrationArgoRollouts = "kestrelai.integration.argo_rollouts"
	AttrIntegrationFlux         = "kestrelai.integration.flux"
	AttrIntegrationKarpenter    = "kestrelai.integration.karpenter"
)
