package k8sriskreceiver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/relaytest"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"
)

const (
	chainExternal    = "security.chain-external-to-cluster-takeover"
	chainEgress      = "security.chain-unrestricted-egress-to-control-plane"
	chainCrossNS     = "security.chain-cross-namespace-ingress-unprotected"
	chainTestTimeout = 30 * time.Second
)

// chains returns the chain findings that hold, as "check Kind/ns/name" → the record.
func chains(sink *consumertest.LogsSink) map[string]rec {
	out := map[string]rec{}
	for _, r := range state(records(sink)) {
		if strings.HasPrefix(r.check, "security.chain-") && r.result != "skip" {
			out[r.check+" "+r.obj()] = r
		}
	}
	return out
}

func waitChains(t *testing.T, sink *consumertest.LogsSink, what string, want ...string) map[string]rec {
	t.Helper()
	var got map[string]rec
	require.Eventually(t, func() bool {
		got = chains(sink)
		if len(got) != len(want) {
			return false
		}
		for _, w := range want {
			if _, ok := got[w]; !ok {
				return false
			}
		}
		return true
	}, chainTestTimeout, tick, "%s: want chains %v, got %v", what, want, keysOf(got))
	return got
}

func keysOf(m map[string]rec) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func links(r rec) []string {
	steps, _ := r.attrs["kestrelai.risk.chain.steps"].([]any)
	out := make([]string, 0, len(steps))
	for _, s := range steps {
		out = append(out, s.(map[string]any)["link"].(string))
	}
	return out
}

// The exposed workload with host access and a powerful ServiceAccount is one chain, through
// a LoadBalancer or an Ingress and with either of the two powers; it is gone as soon as
// any link is.
func TestChainExternalToClusterTakeover(t *testing.T) {
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	ctx := context.Background()
	ns := env.Namespace(t)
	prefix := ns + "-"

	_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	web := goodDeployment(ns, "web", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.ServiceAccountName = "web"
		container(d).SecurityContext.Privileged = ptr.To(true)
		container(d).SecurityContext.AllowPrivilegeEscalation = nil
	})
	createDeployment(t, cs, web)
	// A workload with the same exposure and powers but no host access is no chain.
	createDeployment(t, cs, goodDeployment(ns, "harmless", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.ServiceAccountName = "web"
		d.Spec.Template.Labels["app"] = "web"
		d.Spec.Selector.MatchLabels["app"] = "web"
		d.Spec.Template.Spec.TopologySpreadConstraints = nil
	}))
	_, err = cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	reader := prefix + "secrets"
	_, err = cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: reader},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), reader, metav1.DeleteOptions{}) })
	bindSecrets := func() {
		_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: reader},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "web"}}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	bindSecrets()
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), reader, metav1.DeleteOptions{})
	})

	sink := &consumertest.LogsSink{}
	startReceiver(t, testConfig(ns), isolatedConfig(t, env), sink)
	want := chainExternal + " Deployment/" + ns + "/web"
	got := waitChains(t, sink, "all links", want)
	assert.Equal(t, []string{"exposure", "host-access", "powerful-service-account"}, links(got[want]))
	assert.Contains(t, fmt.Sprint(got[want].attrs["kestrelai.risk.chain.steps"]), "reads Secrets in all namespaces")
	assert.Equal(t, "critical", got[want].attrs["kestrelai.risk.severity"])

	patchService := func(typ corev1.ServiceType) {
		_, err := cs.CoreV1().Services(ns).Patch(ctx, "web", types.MergePatchType, fmt.Appendf(nil, `{"spec":{"type":%q}}`, typ), metav1.PatchOptions{})
		require.NoError(t, err)
	}
	// Exposure: gone with a ClusterIP Service, back through an Ingress.
	patchService(corev1.ServiceTypeClusterIP)
	waitChains(t, sink, "not exposed")
	_, err = cs.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: networkingv1.IngressSpec{
		DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	got = waitChains(t, sink, "exposed by an Ingress", want)
	assert.Contains(t, fmt.Sprint(got[want].attrs["kestrelai.risk.chain.steps"]), "Ingress")

	// Host access.
	_, err = cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","securityContext":{"privileged":null,"allowPrivilegeEscalation":false}}]}}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	waitChains(t, sink, "no host access")
	_, err = cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"hostNetwork":true}}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	waitChains(t, sink, "host network", want)

	// The ServiceAccount's powers: reading Secrets everywhere, or creating pods.
	require.NoError(t, cs.RbacV1().ClusterRoleBindings().Delete(ctx, reader, metav1.DeleteOptions{}))
	waitChains(t, sink, "no powers")
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pods"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "web"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	got = waitChains(t, sink, "creates pods", want)
	assert.Contains(t, fmt.Sprint(got[want].attrs["kestrelai.risk.chain.steps"]), "creates pods in namespace "+ns)

	// Resolved chains were resolved once each time, with the same fingerprint throughout.
	var fps []string
	resolved := 0
	for _, r := range records(sink) {
		if r.check == chainExternal && r.obj() == "Deployment/"+ns+"/web" {
			fps = append(fps, r.fp)
			if r.status == "resolved" {
				resolved++
			}
		}
	}
	assert.Equal(t, 3, resolved)
	for _, fp := range fps {
		assert.Equal(t, fps[0], fp)
	}
}

// flowEvent is one allowed TCP flow as Hubble Relay sends it.
func flowEvent(at time.Time, i int, src, dst *flowpb.Endpoint, port uint32) *observerpb.GetFlowsResponse {
	return &observerpb.GetFlowsResponse{
		NodeName: "worker-1", Time: timestamppb.New(at),
		ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: &flowpb.Flow{
			Time: timestamppb.New(at), Uuid: fmt.Sprintf("flow-%d", i), Verdict: flowpb.Verdict_FORWARDED,
			IP:     &flowpb.IP{Source: "10.0.0.1", Destination: "10.0.0.2", IpVersion: flowpb.IPVersion_IPv4},
			L4:     &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: 40000 + uint32(i), DestinationPort: port}}},
			Source: src, Destination: dst, TrafficDirection: flowpb.TrafficDirection_EGRESS, IsReply: wrapperspb.Bool(false),
		}},
	}
}

// workloadEndpoint is a pod of Deployment name in namespace ns.
func workloadEndpoint(ns, name string) *flowpb.Endpoint {
	return &flowpb.Endpoint{
		Namespace: ns, PodName: name + "-7d9f8b6c5-x2x4k", Identity: 12000,
		Labels: []string{"k8s:app=" + name}, Workloads: []*flowpb.Workload{{Kind: "Deployment", Name: name}},
	}
}

// startHubble runs the real hubble receiver against the test Relay replaying events.
func startHubble(t *testing.T, events []*observerpb.GetFlowsResponse) {
	t.Helper()
	_, addr := relaytest.Serve(t, relaytest.New(events), "127.0.0.1:0")
	f := hubblereceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"endpoint": addr, "tls": map[string]any{"insecure": true}, "aggregation": map[string]any{"window": "100ms"},
	}).Unmarshal(cfg))
	r, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, &consumertest.LogsSink{})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
}

// The chains that only observed traffic shows, from flows of the test Hubble Relay through
// the hubble receiver: each is found, and gone once its policy exists or its traffic has
// left the window.
func TestChainsFromObservedTraffic(t *testing.T) {
	flowgraph.Reset()
	t.Cleanup(flowgraph.Reset)
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	ctx := context.Background()
	clients, backend := env.Namespace(t), env.Namespace(t)
	for _, ns := range []string{clients, backend} {
		setUpNamespace(t, cs, ns, namespaceBasics{noNetpol: true})
	}
	createDeployment(t, cs, goodDeployment(clients, "api-client", nil))
	createDeployment(t, cs, goodDeployment(clients, "resolver", nil))
	createDeployment(t, cs, goodDeployment(backend, "db", nil))
	createDeployment(t, cs, goodDeployment(backend, "cache", nil))

	// The flows are stamped a little ahead, so that the receivers, which start after them,
	// ask for them; they stay in the window until then plus flow_window.
	window := 20 * time.Second
	at := time.Now().Add(3 * time.Second)
	apiServer := &flowpb.Endpoint{Identity: 7, Labels: []string{"reserved:kube-apiserver"}}
	coredns := workloadEndpoint("kube-system", "coredns")
	var events []*observerpb.GetFlowsResponse
	for i := range 3 {
		events = append(events,
			flowEvent(at, 10*i, workloadEndpoint(clients, "api-client"), apiServer, 443),
			flowEvent(at, 10*i+1, workloadEndpoint(clients, "resolver"), coredns, 53), // DNS is no finding
			flowEvent(at, 10*i+2, workloadEndpoint(clients, "api-client"), workloadEndpoint(backend, "db"), 5432),
			flowEvent(at, 10*i+3, workloadEndpoint(backend, "cache"), workloadEndpoint(backend, "db"), 5432), // same namespace
		)
	}
	cfg := testConfig(clients, backend)
	cfg.AttackChains.FlowWindow = window
	cfg.AttackChains.Interval = time.Second
	sink := &consumertest.LogsSink{}
	// The risk receiver first, as the reader of the edges: hubble's 100 ms windows would end
	// before it started otherwise, and edges are recorded only while someone reads them.
	startReceiver(t, cfg, isolatedConfig(t, env), sink)
	startHubble(t, events)

	egress := chainEgress + " Deployment/" + clients + "/api-client"
	crossNS := chainCrossNS + " Namespace//" + backend
	got := waitChains(t, sink, "both chains", egress, crossNS)
	assert.Equal(t, []string{"no-egress-policy", "observed-flow"}, links(got[egress]))
	assert.Contains(t, fmt.Sprint(got[egress].attrs["kestrelai.risk.chain.steps"]), "to kube-apiserver")
	assert.Equal(t, []string{"observed-flow", "no-ingress-policy"}, links(got[crossNS]))
	steps := fmt.Sprint(got[crossNS].attrs["kestrelai.risk.chain.steps"])
	assert.Contains(t, steps, "from "+clients+"/Deployment/api-client to Deployment/db")
	assert.NotContains(t, steps, "cache", "traffic within the namespace is no finding")

	// The policy links: an egress policy for the client, an ingress policy for the database.
	policy := func(ns, name string, typ networkingv1.PolicyType) {
		_, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, PolicyTypes: []networkingv1.PolicyType{typ}}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	policy(clients, "api-client", networkingv1.PolicyTypeEgress)
	waitChains(t, sink, "egress policy", crossNS)
	policy(backend, "db", networkingv1.PolicyTypeIngress)
	waitChains(t, sink, "ingress policy")

	// The traffic links: with the policies gone the chains are back, until the flows leave
	// the window.
	require.NoError(t, cs.NetworkingV1().NetworkPolicies(clients).Delete(ctx, "api-client", metav1.DeleteOptions{}))
	require.NoError(t, cs.NetworkingV1().NetworkPolicies(backend).Delete(ctx, "db", metav1.DeleteOptions{}))
	waitChains(t, sink, "policies removed", egress, crossNS)
	require.Less(t, time.Now(), at.Add(window), "the test was too slow to see the chains before the window passed")
	require.Eventually(t, func() bool { return len(chains(sink)) == 0 }, window+chainTestTimeout, tick, "chains outlive their traffic")
}
