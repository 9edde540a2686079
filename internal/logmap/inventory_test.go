package logmap

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

var seen = time.Date(2026, 1, 1, 0, 9, 0, 0, time.UTC)

func mapOne(t *testing.T, r rec) proto.Message {
	t.Helper()
	res := NewMapper(fixedNow).Map(logsOf(t, r))
	require.Empty(t, res.Drops)
	require.Len(t, res.Items, 1)
	assert.Equal(t, r.eventName, res.Items[0].EventName)
	return res.Items[0].Payload
}

func owners() []any {
	return []any{map[string]any{
		"api_version": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f", "uid": "rs-uid",
		"controller": true, "block_owner_deletion": true,
	}}
}

func TestInventoryMappers(t *testing.T) {
	created := "2025-12-31T00:00:00Z"
	tests := []struct {
		name string
		rec  rec
		want proto.Message
	}{{
		name: "workload",
		rec: rec{eventName: schema.EventInventoryWorkload, attrs: map[string]any{
			schema.AttrWorkloadKind:               "Deployment",
			"k8s.deployment.name":                 "web",
			"k8s.deployment.uid":                  "dep-uid",
			"k8s.deployment.label.app":            "web",
			schema.AttrK8sNamespaceName:           "prod",
			schema.AttrServiceAccountName:         "web-sa",
			schema.AttrCreationTime:               created,
			schema.AttrAction:                     schema.ActionUpdate,
			"k8s.pod.label.ignored-wrong-prefix":  "x",
			"k8s.deployment.annotation.not-label": "y",
		}},
		want: &cloudv1.Workload{
			Name: "web", Namespace: "prod", Uid: "dep-uid", Kind: "Deployment",
			Labels: map[string]string{"app": "web"}, CreatedAt: ts(created),
			Action: cloudv1.Action_ACTION_UPDATE, ServiceAccount: "web-sa",
		},
	}, {
		name: "bare pod as workload",
		rec: rec{eventName: schema.EventInventoryWorkload, attrs: map[string]any{
			schema.AttrWorkloadKind:     "Pod",
			schema.AttrK8sPodName:       "debug",
			schema.AttrK8sPodUID:        "pod-uid",
			schema.AttrK8sNamespaceName: "prod",
		}},
		want: &cloudv1.Workload{Name: "debug", Namespace: "prod", Uid: "pod-uid", Kind: "Pod", Action: cloudv1.Action_ACTION_CREATE},
	}, {
		name: "pod",
		rec: rec{eventName: schema.EventInventoryPod, attrs: map[string]any{
			schema.AttrK8sPodName:        "web-5d4f-x",
			schema.AttrK8sPodUID:         "pod-uid",
			schema.AttrK8sNamespaceName:  "prod",
			schema.AttrK8sPodIP:          "10.0.0.7",
			schema.AttrK8sPodStatusPhase: "Running",
			schema.AttrPodReady:          true,
			"k8s.pod.label.app":          "web",
			schema.AttrOwnerReferences:   owners(),
			schema.AttrCreationTime:      created,
			schema.AttrAction:            schema.ActionDelete,
		}},
		want: &cloudv1.Pod{
			Name: "web-5d4f-x", Namespace: "prod", Uid: "pod-uid", PodIp: "10.0.0.7",
			Labels: map[string]string{"app": "web"}, Phase: "Running", Ready: true,
			OwnerReferences: []*cloudv1.OwnerReference{{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d4f", Uid: "rs-uid", Controller: true, BlockOwnerDeletion: true}},
			CreatedAt:       ts(created), Action: cloudv1.Action_ACTION_DELETE,
		},
	}, {
		name: "namespace",
		rec: rec{eventName: schema.EventInventoryNamespace, attrs: map[string]any{
			schema.AttrK8sNamespaceName:      "prod",
			schema.AttrNamespaceUID:          "ns-uid",
			"k8s.namespace.label.team":       "shop",
			schema.AttrCreationTime:          created,
			"k8s.namespace.label.empty-ok":   "",
			"k8s.namespace.annotation.other": "x",
		}},
		want: &cloudv1.Namespace{
			Name: "prod", Uid: "ns-uid", Labels: map[string]string{"team": "shop", "empty-ok": ""},
			CreatedAt: ts(created), Action: cloudv1.Action_ACTION_CREATE,
		},
	}, {
		name: "node",
		rec: rec{eventName: schema.EventInventoryNode, attrs: map[string]any{
			schema.AttrK8sNodeName:      "worker-1",
			schema.AttrK8sNodeUID:       "node-uid",
			"k8s.node.label.role":       "worker",
			schema.AttrNodeInternalIPs:  []any{"10.1.0.1", "fd00::1"},
			schema.AttrNodeExternalIPs:  []any{"203.0.113.1"},
			schema.AttrNodeHostname:     "worker-1.local",
			schema.AttrNodeReady:        true,
			schema.AttrNodeInstanceType: "m5.large",
			schema.AttrNodeZone:         "eu-west-1a",
			schema.AttrCreationTime:     created,
		}},
		want: &cloudv1.Node{
			Name: "worker-1", Uid: "node-uid", Labels: map[string]string{"role": "worker"},
			InternalIps: []string{"10.1.0.1", "fd00::1"}, ExternalIps: []string{"203.0.113.1"},
			Hostname: "worker-1.local", Ready: true, InstanceType: "m5.large", Zone: "eu-west-1a",
			CreatedAt: ts(created), Action: cloudv1.Action_ACTION_CREATE,
		},
	}, {
		name: "service",
		rec: rec{eventName: schema.EventInventoryService, attrs: map[string]any{
			schema.AttrK8sServiceName:         "web",
			schema.AttrK8sServiceUID:          "svc-uid",
			schema.AttrK8sNamespaceName:       "prod",
			schema.AttrK8sServiceType:         "ClusterIP",
			"k8s.service.label.app":           "web",
			"k8s.service.annotation.owner":    "team-a",
			"k8s.service.selector.app":        "web",
			schema.AttrServiceClusterIP:       "10.96.0.10",
			schema.AttrServiceExternalIPs:     []any{"198.51.100.1"},
			schema.AttrServicePorts:           []any{map[string]any{"name": "http", "protocol": "TCP", "port": int64(80), "target_port_name": "http"}, map[string]any{"protocol": "UDP", "port": int64(53), "target_port": int64(5353), "node_port": int64(30053)}},
			schema.AttrCreationTime:           created,
			"k8s.service.selector.":           "ignored: no key after the prefix",
			"k8s.service.annotation.io/other": "v",
		}},
		want: &cloudv1.Service{
			Name: "web", Namespace: "prod", Uid: "svc-uid",
			Labels:      map[string]string{"app": "web"},
			Annotations: map[string]string{"owner": "team-a", "io/other": "v"},
			Selector:    map[string]string{"app": "web"},
			Ports: []*cloudv1.ServicePort{
				{Name: "http", Protocol: "TCP", Port: 80},
				{Protocol: "UDP", Port: 53, TargetPort: 5353, NodePort: 30053},
			},
			ServiceType: "ClusterIP", ClusterIp: "10.96.0.10", ExternalIps: []string{"198.51.100.1"},
			CreatedAt: ts(created), Action: cloudv1.Action_ACTION_CREATE,
		},
	}, {
		name: "network policy",
		rec: rec{eventName: schema.EventInventoryNetworkPolicy, attrs: map[string]any{
			schema.AttrPolicyName:                  "deny-all",
			schema.AttrPolicyUID:                   "np-uid",
			schema.AttrPolicyResourceVersion:       "77",
			schema.AttrK8sNamespaceName:            "prod",
			"kestrelai.k8s.policy.label.tier":      "base",
			"kestrelai.k8s.policy.annotation.note": "n",
			schema.AttrPolicyTargetWorkloads:       []any{"prod.Deployment.web"},
			schema.AttrAction:                      schema.ActionUpdate,
		}, body: map[string]any{"spec": map[string]any{
			"podSelector": map[string]any{
				"matchLabels":      map[string]any{"app": "web"},
				"matchExpressions": []any{map[string]any{"key": "tier", "operator": "In", "values": []any{"a", "b"}}},
			},
			"ingress": []any{map[string]any{
				"from": []any{
					map[string]any{"namespaceSelector": map[string]any{}},
					map[string]any{"ipBlock": map[string]any{"cidr": "10.0.0.0/8", "except": []any{"10.1.0.0/16"}}},
				},
				"ports": []any{
					map[string]any{"protocol": "TCP", "port": int64(80), "endPort": int64(90)},
					map[string]any{"port": "http"},
				},
			}},
			"egress":      []any{map[string]any{"to": []any{map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "db"}}}}}},
			"policyTypes": []any{"Ingress", "Egress"},
		}}},
		want: &cloudv1.NetworkPolicy{
			ApiVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy",
			Metadata: &cloudv1.ObjectMeta{
				Name: "deny-all", Namespace: "prod", Uid: "np-uid", ResourceVersion: "77",
				Labels: map[string]string{"tier": "base"}, Annotations: map[string]string{"note": "n"},
			},
			Spec: &cloudv1.NetworkPolicySpec{
				PodSelector: &cloudv1.LabelSelector{
					MatchLabels:      map[string]string{"app": "web"},
					MatchExpressions: []*cloudv1.LabelSelectorRequirement{{Key: "tier", Operator: "In", Values: []string{"a", "b"}}},
				},
				Ingress: []*cloudv1.NetworkPolicyIngressRule{{
					From: []*cloudv1.NetworkPolicyPeer{
						{NamespaceSelector: &cloudv1.LabelSelector{}},
						{IpBlock: &cloudv1.IPBlock{Cidr: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}},
					},
					Ports: []*cloudv1.NetworkPolicyPort{
						{Protocol: "TCP", PortValue: &cloudv1.NetworkPolicyPort_Port{Port: 80}, EndPort: 90},
						{PortValue: &cloudv1.NetworkPolicyPort_PortName{PortName: "http"}},
					},
				}},
				Egress: []*cloudv1.NetworkPolicyEgressRule{{
					To:    []*cloudv1.NetworkPolicyPeer{{PodSelector: &cloudv1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}},
					Ports: []*cloudv1.NetworkPolicyPort{},
				}},
				PolicyTypes: []string{"Ingress", "Egress"},
			},
			TargetWorkloads: []string{"prod.Deployment.web"},
			Action:          cloudv1.Action_ACTION_UPDATE,
		},
	}, {
		name: "authorization policy",
		rec: rec{eventName: schema.EventInventoryAuthorizationPolicy, attrs: map[string]any{
			schema.AttrPolicyName:            "allow-frontend",
			schema.AttrPolicyUID:             "ap-uid",
			schema.AttrPolicyResourceVersion: "5",
			schema.AttrPolicyAPIVersion:      "security.istio.io/v1beta1",
			schema.AttrK8sNamespaceName:      "prod",
		}, body: map[string]any{"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "api"}},
			"action":   "DENY",
			"rules": []any{map[string]any{
				"from": []any{map[string]any{"source": map[string]any{"principals": []any{"cluster.local/ns/prod/sa/web"}, "notNamespaces": []any{"dev"}}}},
				"to":   []any{map[string]any{"operation": map[string]any{"methods": []any{"GET"}, "ports": []any{"8080"}}}},
				"when": []any{map[string]any{"key": "request.headers[x]", "notValues": []any{"1"}}},
			}},
		}}},
		want: &cloudv1.AuthorizationPolicy{
			ApiVersion: "security.istio.io/v1beta1", Kind: "AuthorizationPolicy",
			Metadata: &cloudv1.ObjectMeta{Name: "allow-frontend", Namespace: "prod", Uid: "ap-uid", ResourceVersion: "5"},
			Spec: &cloudv1.AuthorizationPolicySpec{
				Selector: &cloudv1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
				Action:   cloudv1.AuthorizationPolicyAction_AUTHORIZATION_POLICY_ACTION_DENY,
				Rules: []*cloudv1.AuthorizationPolicyRule{{
					From: []*cloudv1.AuthorizationPolicyRuleFrom{{Source: &cloudv1.AuthorizationPolicySource{Principals: []string{"cluster.local/ns/prod/sa/web"}}}},
					To:   []*cloudv1.AuthorizationPolicyRuleTo{{Operation: &cloudv1.AuthorizationPolicyOperation{Methods: []string{"GET"}, Ports: []string{"8080"}}}},
					When: []*cloudv1.AuthorizationPolicyCondition{{Key: "request.headers[x]", NotValues: []string{"1"}}},
				}},
			},
			Action: cloudv1.Action_ACTION_CREATE,
		},
	}, {
		name: "authorization policy without spec allows",
		rec: rec{eventName: schema.EventInventoryAuthorizationPolicy, attrs: map[string]any{
			schema.AttrPolicyName: "allow-nothing", schema.AttrPolicyUID: "ap2", schema.AttrK8sNamespaceName: "prod",
		}},
		want: &cloudv1.AuthorizationPolicy{
			ApiVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy",
			Metadata: &cloudv1.ObjectMeta{Name: "allow-nothing", Namespace: "prod", Uid: "ap2"},
			Spec:     &cloudv1.AuthorizationPolicySpec{Action: cloudv1.AuthorizationPolicyAction_AUTHORIZATION_POLICY_ACTION_ALLOW},
			Action:   cloudv1.Action_ACTION_CREATE,
		},
	}, {
		name: "snapshot complete",
		rec: rec{eventName: schema.EventInventorySnapshotComplete, attrs: map[string]any{
			schema.AttrIntegrationArgoCD: true, schema.AttrIntegrationKarpenter: true, schema.AttrIntegrationFlux: false,
		}},
		want: &cloudv1.InventoryCommit{HasArgocd: true, HasKarpenter: true},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProtoEqual(t, tt.want, mapOne(t, tt.rec))
		})
	}
}

func TestIncidentMappers(t *testing.T) {
	t.Run("pod status change", func(t *testing.T) {
		got := mapOne(t, rec{eventName: schema.EventPodStatusChange, ts: seen, attrs: map[string]any{
			schema.AttrK8sPodName:        "web-0",
			schema.AttrK8sPodUID:         "pod-uid",
			schema.AttrK8sNamespaceName:  "prod",
			schema.AttrK8sPodIP:          "10.0.0.7",
			schema.AttrK8sNodeName:       "worker-1",
			schema.AttrK8sPodStatusPhase: "Running",
			schema.AttrPodQOSClass:       "Burstable",
			schema.AttrPodRestartCount:   int64(4),
			schema.AttrPodCPURequest:     int64(250_000_000),
			schema.AttrPodCPULimit:       int64(1_000_000_000),
			schema.AttrPodMemoryRequest:  int64(64 << 20),
			schema.AttrPodMemoryLimit:    int64(128 << 20),
			schema.AttrOwnerReferences:   owners(),
			schema.AttrAction:            schema.ActionUpdate,
		}, body: map[string]any{"status": map[string]any{
			"conditions": []any{map[string]any{"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:08:00Z", "reason": "ContainersNotReady", "message": "not ready"}},
			"containerStatuses": []any{map[string]any{
				"name": "app", "image": "web:1", "imageID": "sha256:1", "containerID": "containerd://c1",
				"ready": false, "restartCount": int64(4), "started": false,
				"state":     map[string]any{"waiting": map[string]any{"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
				"lastState": map[string]any{"terminated": map[string]any{"exitCode": int64(-1), "signal": int64(9), "reason": "OOMKilled", "startedAt": "2026-01-01T00:07:00Z", "finishedAt": "2026-01-01T00:07:30Z", "containerID": "containerd://c0"}},
			}},
			"initContainerStatuses": []any{map[string]any{
				"name": "init", "ready": true, "started": true,
				"state": map[string]any{"running": map[string]any{"startedAt": "2026-01-01T00:06:00Z"}},
			}},
		}}})
		assertProtoEqual(t, &cloudv1.PodStatusChange{
			Name: "web-0", Namespace: "prod", Uid: "pod-uid", PodIp: "10.0.0.7", NodeName: "worker-1", Phase: "Running",
			ContainerStatuses: []*cloudv1.ContainerStatus{{
				Name: "app", Image: "web:1", ImageId: "sha256:1", ContainerId: "containerd://c1", RestartCount: 4,
				State: &cloudv1.ContainerState{State: &cloudv1.ContainerState_Waiting{Waiting: &cloudv1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s"}}},
				LastTerminationState: &cloudv1.ContainerState{State: &cloudv1.ContainerState_Terminated{Terminated: &cloudv1.ContainerStateTerminated{
					ExitCode: -1, Signal: 9, Reason: "OOMKilled", StartedAt: ts("2026-01-01T00:07:00Z"), FinishedAt: ts("2026-01-01T00:07:30Z"), ContainerId: "containerd://c0",
				}}},
			}},
			InitContainerStatuses: []*cloudv1.ContainerStatus{{
				Name: "init", Ready: true, Started: true,
				State: &cloudv1.ContainerState{State: &cloudv1.ContainerState_Running{Running: &cloudv1.ContainerStateRunning{StartedAt: ts("2026-01-01T00:06:00Z")}}},
			}},
			Conditions:        []*cloudv1.PodCondition{{Type: "Ready", Status: "False", LastTransitionTime: ts("2026-01-01T00:08:00Z"), Reason: "ContainersNotReady", Message: "not ready"}},
			QosClass:          "Burstable",
			TotalRestartCount: 4,
			ResourceUsage:     &cloudv1.ResourceUsage{CpuRequestNanoCores: 250_000_000, CpuLimitNanoCores: 1_000_000_000, MemoryRequestBytes: 64 << 20, MemoryLimitBytes: 128 << 20},
			OwnerReferences:   []*cloudv1.OwnerReference{{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d4f", Uid: "rs-uid", Controller: true, BlockOwnerDeletion: true}},
			StatusTimestamp:   ts("2026-01-01T00:09:00Z"),
			Action:            cloudv1.Action_ACTION_UPDATE,
		}, got)
	})
	t.Run("node condition change", func(t *testing.T) {
		got := mapOne(t, rec{eventName: schema.EventNodeConditionChange, attrs: map[string]any{
			schema.AttrK8sNodeName:     "worker-1",
			schema.AttrK8sNodeUID:      "node-uid",
			schema.AttrNodeInternalIPs: []any{"10.1.0.1"},
			schema.AttrNodeZone:        "z1",
		}, body: map[string]any{"status": map[string]any{
			"conditions":  []any{map[string]any{"type": "MemoryPressure", "status": "True", "lastHeartbeatTime": "2026-01-01T00:08:00Z", "reason": "KubeletHasInsufficientMemory"}},
			"capacity":    map[string]any{"cpu": "4", "memory": "16Gi"},
			"allocatable": map[string]any{"cpu": "3900m"},
		}}})
		assertProtoEqual(t, &cloudv1.NodeConditionChange{
			Name: "worker-1", Uid: "node-uid", InternalIps: []string{"10.1.0.1"}, Zone: "z1",
			Conditions:         []*cloudv1.NodeCondition{{Type: "MemoryPressure", Status: "True", LastHeartbeatTime: ts("2026-01-01T00:08:00Z"), Reason: "KubeletHasInsufficientMemory"}},
			Capacity:           map[string]string{"cpu": "4", "memory": "16Gi"},
			Allocatable:        map[string]string{"cpu": "3900m"},
			ConditionTimestamp: ts("2026-01-01T00:10:00Z"), // no record time: the mapper's clock
			Action:             cloudv1.Action_ACTION_CREATE,
		}, got)
	})
	t.Run("workload rollout status", func(t *testing.T) {
		got := mapOne(t, rec{eventName: schema.EventWorkloadRolloutStatus, ts: seen, attrs: map[string]any{
			schema.AttrWorkloadKind:                "Deployment",
			"k8s.deployment.name":                  "web",
			"k8s.deployment.uid":                   "dep-uid",
			schema.AttrK8sNamespaceName:            "prod",
			schema.AttrRolloutStatus:               "TimedOut",
			schema.AttrRolloutReason:               "ProgressDeadlineExceeded",
			schema.AttrRolloutMessage:              "took too long",
			schema.AttrRolloutDesiredReplicas:      int64(3),
			schema.AttrRolloutCurrentReplicas:      int64(3),
			schema.AttrRolloutReadyReplicas:        int64(1),
			schema.AttrRolloutAvailableReplicas:    int64(1),
			schema.AttrRolloutUpdatedReplicas:      int64(2),
			schema.AttrRolloutUnavailableReplicas:  int64(2),
			schema.AttrRolloutGeneration:           int64(7),
			schema.AttrRolloutObservedGeneration:   int64(6),
			schema.AttrCreationTime:                "2025-12-31T00:00:00Z",
			schema.AttrAction:                      schema.ActionUpdate,
			"k8s.deployment.label.ignored-for-now": "x",
		}, body: map[string]any{"status": map[string]any{"conditions": []any{map[string]any{
			"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
			"lastUpdateTime": "2026-01-01T00:08:00Z", "lastTransitionTime": "2026-01-01T00:08:00Z",
		}}}}})
		assertProtoEqual(t, &cloudv1.WorkloadRolloutStatus{
			Name: "web", Namespace: "prod", Uid: "dep-uid", Kind: "Deployment",
			RolloutStatus: "TimedOut", RolloutReason: "ProgressDeadlineExceeded", RolloutMessage: "took too long",
			DesiredReplicas: 3, CurrentReplicas: 3, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 2, UnavailableReplicas: 2,
			Conditions: []*cloudv1.WorkloadCondition{{
				Type: "Progressing", Status: "False", Reason: "ProgressDeadlineExceeded",
				LastUpdateTime: ts("2026-01-01T00:08:00Z"), LastTransitionTime: ts("2026-01-01T00:08:00Z"),
			}},
			ObservedGeneration: 6, MetadataGeneration: 7,
			CreatedAt: ts("2025-12-31T00:00:00Z"), StatusTimestamp: ts("2026-01-01T00:09:00Z"),
			Action: cloudv1.Action_ACTION_UPDATE,
		}, got)
	})
}

func TestInventoryDrops(t *testing.T) {
	pod := func(attrs map[string]any, body any) rec {
		base := map[string]any{schema.AttrK8sPodName: "p", schema.AttrK8sPodUID: "u", schema.AttrK8sNamespaceName: "n"}
		for k, v := range attrs {
			base[k] = v
		}
		return rec{eventName: schema.EventPodStatusChange, attrs: base, body: body}
	}
	tests := []struct {
		name   string
		rec    rec
		reason Reason
		detail string
	}{
		{"unknown workload kind", rec{eventName: schema.EventInventoryWorkload, attrs: map[string]any{schema.AttrWorkloadKind: "Rollout"}}, ReasonInvalidAttribute, schema.AttrWorkloadKind},
		{"workload without uid", rec{eventName: schema.EventInventoryWorkload, attrs: map[string]any{schema.AttrWorkloadKind: "Job", "k8s.job.name": "j"}}, ReasonMissingAttribute, "k8s.job.uid"},
		{"label not a string", rec{eventName: schema.EventInventoryNamespace, attrs: map[string]any{schema.AttrK8sNamespaceName: "n", schema.AttrNamespaceUID: "u", "k8s.namespace.label.x": int64(1)}}, ReasonInvalidAttribute, "k8s.namespace.label.x"},
		{"ready not a bool", rec{eventName: schema.EventInventoryNode, attrs: map[string]any{schema.AttrK8sNodeName: "n", schema.AttrK8sNodeUID: "u", schema.AttrNodeReady: "true"}}, ReasonInvalidAttribute, schema.AttrNodeReady},
		{"ips not strings", rec{eventName: schema.EventInventoryNode, attrs: map[string]any{schema.AttrK8sNodeName: "n", schema.AttrK8sNodeUID: "u", schema.AttrNodeInternalIPs: []any{int64(1)}}}, ReasonInvalidAttribute, schema.AttrNodeInternalIPs},
		{"owner not a map", pod(map[string]any{schema.AttrOwnerReferences: []any{"rs"}}, nil), ReasonInvalidAttribute, schema.AttrOwnerReferences},
		{"port out of range", rec{eventName: schema.EventInventoryService, attrs: map[string]any{schema.AttrK8sServiceName: "s", schema.AttrK8sServiceUID: "u", schema.AttrK8sNamespaceName: "n", schema.AttrServicePorts: []any{map[string]any{"port": int64(1 << 40)}}}}, ReasonInvalidAttribute, schema.AttrServicePorts},
		{"body not a map", pod(nil, "CrashLoopBackOff"), ReasonInvalidAttribute, bodyDetail},
		{"body field of the wrong type", pod(nil, map[string]any{"status": map[string]any{"containerStatuses": "none"}}), ReasonInvalidAttribute, bodyDetail},
		{"unknown authorization action", rec{eventName: schema.EventInventoryAuthorizationPolicy, attrs: map[string]any{schema.AttrPolicyName: "a", schema.AttrPolicyUID: "u", schema.AttrK8sNamespaceName: "n"}, body: map[string]any{"spec": map[string]any{"action": "MAYBE"}}}, ReasonInvalidAttribute, bodyDetail},
		{"authorization rules not a list", rec{eventName: schema.EventInventoryAuthorizationPolicy, attrs: map[string]any{schema.AttrPolicyName: "a", schema.AttrPolicyUID: "u", schema.AttrK8sNamespaceName: "n"}, body: map[string]any{"spec": map[string]any{"rules": "all"}}}, ReasonInvalidAttribute, bodyDetail},
		{"commit flag not a bool", rec{eventName: schema.EventInventorySnapshotComplete, attrs: map[string]any{schema.AttrIntegrationFlux: "yes"}}, ReasonInvalidAttribute, schema.AttrIntegrationFlux},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := NewMapper(fixedNow).Map(logsOf(t, tt.rec))
			assert.Empty(t, res.Items)
			assert.Equal(t, []Drop{{EventName: tt.rec.eventName, Reason: tt.reason, Count: 1, Detail: tt.detail}}, res.Drops)
		})
	}
}

func TestIsInventory(t *testing.T) {
	for _, name := range []string{
		schema.EventInventoryWorkload, schema.EventInventoryPod, schema.EventInventoryNamespace, schema.EventInventoryNode,
		schema.EventInventoryService, schema.EventInventoryNetworkPolicy, schema.EventInventoryAuthorizationPolicy,
		schema.EventInventorySnapshotStart, schema.EventInventorySnapshotComplete,
	} {
		assert.True(t, IsInventory(name), name)
		assert.True(t, Known(name), name)
	}
	for _, name := range []string{schema.EventK8sEvent, schema.EventPodStatusChange, schema.EventNodeConditionChange, schema.EventWorkloadRolloutStatus, ""} {
		assert.False(t, IsInventory(name), name)
		assert.True(t, Known(name), name)
	}
}

func TestEachPairsRecordsWithItems(t *testing.T) {
	ns := rec{eventName: schema.EventInventoryNamespace, attrs: map[string]any{schema.AttrK8sNamespaceName: "a", schema.AttrNamespaceUID: "ua"}}
	start := rec{eventName: schema.EventInventorySnapshotStart}
	bad := rec{eventName: schema.EventInventoryNamespace, attrs: map[string]any{}}
	commit := rec{eventName: schema.EventInventorySnapshotComplete}
	ld := logsOf(t, start, ns, bad, commit)
	res := NewMapper(fixedNow).Map(ld)
	var got []string
	res.Each(ld, func(lr plog.LogRecord, it *Item) {
		if it == nil {
			got = append(got, lr.EventName()+"=nil")
			return
		}
		got = append(got, lr.EventName()+"="+string(it.Payload.ProtoReflect().Descriptor().Name()))
	})
	assert.Equal(t, []string{
		schema.EventInventorySnapshotStart + "=nil",
		schema.EventInventoryNamespace + "=Namespace",
		schema.EventInventoryNamespace + "=nil",
		schema.EventInventorySnapshotComplete + "=InventoryCommit",
	}, got)
}

// Every Istio action has a cloud.v1 value; the mapping goes by the enum's names.
func TestAuthorizationPolicyActions(t *testing.T) {
	for _, a := range schema.AuthorizationPolicyActions {
		assert.Equal(t, "AUTHORIZATION_POLICY_ACTION_"+a, authzAction(a).String())
	}
	assert.Equal(t, cloudv1.AuthorizationPolicyAction_AUTHORIZATION_POLICY_ACTION_ALLOW, authzAction(""))
}
