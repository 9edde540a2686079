package checks

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
)

// fuzzKinds are the objects FuzzChecks decodes, by the first byte of its input.
var fuzzKinds = []struct {
	res *k8scache.Resource
	obj func() metav1.Object
}{
	{k8scache.Deployments, func() metav1.Object { return &appsv1.Deployment{} }},
	{k8scache.StatefulSets, func() metav1.Object { return &appsv1.StatefulSet{} }},
	{k8scache.DaemonSets, func() metav1.Object { return &appsv1.DaemonSet{} }},
	{k8scache.CronJobs, func() metav1.Object { return &batchv1.CronJob{} }},
	{k8scache.Pods, func() metav1.Object { return &corev1.Pod{} }},
	{k8scache.Services, func() metav1.Object { return &corev1.Service{} }},
	{k8scache.Ingresses, func() metav1.Object { return &networkingv1.Ingress{} }},
	{k8scache.HorizontalPodAutoscalers, func() metav1.Object { return &autoscalingv2.HorizontalPodAutoscaler{} }},
	{k8scache.Namespaces, func() metav1.Object { return &corev1.Namespace{} }},
	{k8scache.Nodes, func() metav1.Object { return &corev1.Node{} }},
	{k8scache.Roles, func() metav1.Object { return &rbacv1.Role{} }},
	{k8scache.ClusterRoleBindings, func() metav1.Object { return &rbacv1.ClusterRoleBinding{} }},
	{k8scache.NetworkPolicies, func() metav1.Object { return &networkingv1.NetworkPolicy{} }},
}

// FuzzChecks: any object the apiserver could hand over, beside a NodePort Service and a pod
// of label app=a, its namespace, a cluster-admin default ServiceAccount and traffic from the
// world, to the API server and from another namespace, is evaluated by every check and chain without
// panicking, and every piece of evidence names a field.
func FuzzChecks(f *testing.F) {
	f.Add(byte(0), []byte(`{"metadata":{"name":"d","namespace":"n","uid":"u"},"spec":{"replicas":1,"template":{"metadata":{"labels":{"app":"a"}},"spec":{"hostPID":true,"containers":[{"name":"c","image":"nginx","securityContext":{"privileged":true,"capabilities":{"add":["SYS_ADMIN"]}},"env":[{"name":"PASSWORD","value":"x"}],"resources":{"limits":{"cpu":"10"},"requests":{"cpu":"1m"}}}],"volumes":[{"name":"h","hostPath":{"path":"/"}}]}}}}`))
	f.Add(byte(4), []byte(`{"metadata":{"name":"p","namespace":"n","uid":"u","labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"x@sha256:00","ports":[{"containerPort":80,"hostPort":80}],"livenessProbe":{"httpGet":{"port":80}},"readinessProbe":{"httpGet":{"port":80}}}]}}`))
	f.Add(byte(5), []byte(`{"metadata":{"name":"s","namespace":"n","uid":"u"},"spec":{"type":"LoadBalancer","externalIPs":["1.2.3.4"],"selector":{"app":"a"}}}`))
	f.Add(byte(6), []byte(`{"metadata":{"name":"i","namespace":"n","uid":"u"},"spec":{"defaultBackend":{"service":{"name":"s"}},"rules":[{"http":{"paths":[{"backend":{}}]}}]}}`))
	f.Add(byte(7), []byte(`{"metadata":{"name":"h","namespace":"n","uid":"u"},"spec":{"scaleTargetRef":{"kind":"Deployment","name":"d"},"maxReplicas":1}}`))
	f.Add(byte(10), []byte(`{"metadata":{"name":"r","namespace":"n","uid":"u"},"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]},{"nonResourceURLs":["*"]}]}`))
	f.Add(byte(11), []byte(`{"metadata":{"name":"b","uid":"u"},"roleRef":{"kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"ServiceAccount","namespace":"n","name":"default"},{"kind":"Group"}]}`))
	f.Add(byte(3), []byte(`{"metadata":{"name":"c","namespace":"n","uid":"u"},"spec":{"schedule":"x","jobTemplate":{"spec":{"template":{"spec":{"containers":[{}]}}}}}}`))
	f.Add(byte(9), []byte(`{"metadata":{"name":"node","uid":"u"},"status":{"allocatable":{"cpu":"0","memory":"-1"}}}`))
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, kind byte, raw []byte) {
		k := fuzzKinds[int(kind)%len(fuzzKinds)]
		obj := k.obj()
		if json.Unmarshal(raw, obj) != nil {
			return
		}
		stores := map[*k8scache.Resource]Store{}
		add := func(res *k8scache.Resource, o any) {
			if stores[res] == nil {
				stores[res] = Store{cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})}
			}
			require.NoError(t, stores[res][0].Add(o))
		}
		if p, ok := obj.(*corev1.Pod); ok {
			add(k.res, slim.NewPod(p)) // as the cache keeps it
		} else {
			add(k.res, obj)
		}
		ns := obj.GetNamespace()
		add(k8scache.Services, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "all", UID: "svc"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "a"}}})
		add(k8scache.Pods, slim.NewPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pod", UID: "pod", Labels: map[string]string{"app": "a"}},
			Spec: corev1.PodSpec{NodeName: "node"}}))
		add(k8scache.ServiceAccounts, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default", UID: "sa"}})
		if k.res != k8scache.Namespaces {
			add(k8scache.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, UID: "ns"}})
		}
		if k.res != k8scache.ClusterRoleBindings {
			add(k8scache.ClusterRoleBindings, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "admin", UID: "crb"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "default"}}})
		}
		add(k8scache.ClusterRoles, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin", UID: "cr"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}})
		v := &View{
			Stores: stores, Missing: map[*k8scache.Resource]error{},
			PodSpecs: func(uid types.UID) (*PodSpec, bool) {
				if p, ok := obj.(*corev1.Pod); ok && p.UID == uid {
					return &PodSpec{UID: uid, Spec: &p.Spec, Annotations: p.Annotations}, true
				}
				return nil, false
			},
			Flows: func() []flowgraph.Stat {
				self := flowgraph.Peer{Namespace: ns, Kind: "Deployment", Name: obj.GetName()}
				edge := func(src, dst flowgraph.Peer) flowgraph.Stat {
					return flowgraph.Stat{Edge: flowgraph.Edge{Src: src, Dst: dst, Port: 443, Protocol: "tcp"}, Count: 1, First: now, Last: now}
				}
				return []flowgraph.Stat{
					edge(flowgraph.Peer{Reserved: flowgraph.ReservedWorld}, self),
					edge(self, flowgraph.Peer{Reserved: flowgraph.ReservedKubeAPIServer}),
					edge(flowgraph.Peer{Namespace: "other", Kind: "Deployment", Name: "client"}, self),
				}
			},
			FlowSources: func() int { return 1 },
			Now:         func() time.Time { return now },
		}
		if s, ok := NewSubject(v, k.res, obj); ok {
			for _, c := range Catalogue() {
				if c.Eval == nil || !c.AppliesTo(s.Object.Kind) {
					continue
				}
				for _, e := range c.Eval(v, s).Evidence {
					assert.NotEmpty(t, e.Path, c.ID)
				}
			}
		}
		for _, c := range Catalogue() {
			if c.Chains == nil {
				continue
			}
			for _, ch := range c.Chains(v) {
				assert.NotEmpty(t, ch.Steps, c.ID)
			}
		}
	})
}
