package k8sriskreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	kschema "github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/checks"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/report"
)

// fixture is the acceptance fixture in a real apiserver: a failing and a passing object for
// every check of one object, and what the receiver must find.
type fixture struct {
	main, noNetpol, noQuota, prefix string
	want                            map[string][]string // Kind/ns/name: sorted check=result
}

func setUpFixture(t *testing.T, env *kubeenv.Env) *fixture {
	t.Helper()
	ctx := context.Background()
	cs := adminClient(t, env)
	ensurePriorityClass(t, cs)
	f := &fixture{main: env.Namespace(t), noNetpol: env.Namespace(t), noQuota: env.Namespace(t), want: map[string][]string{}}
	f.prefix = f.main + "-"
	setUpNamespace(t, cs, f.main, namespaceBasics{})
	setUpNamespace(t, cs, f.noNetpol, namespaceBasics{noNetpol: true})
	setUpNamespace(t, cs, f.noQuota, namespaceBasics{noQuota: true})
	create(t, func() error {
		_, err := cs.PolicyV1().PodDisruptionBudgets(f.main).Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb-zero"},
			Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(0)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"pdb": "zero"}}}}, metav1.CreateOptions{})
		return err
	})
	create(t, func() error {
		_, err := cs.CoreV1().ServiceAccounts(f.main).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tokenful"}}, metav1.CreateOptions{})
		return err
	})

	for _, c := range deploymentCases(f.main) {
		createDeployment(t, cs, c.d)
		f.expect("Deployment", f.main, c.d.Name, c.want...)
	}
	createDeployment(t, cs, goodDeployment(f.noNetpol, "exposed", nil))
	f.expect("Deployment", f.noNetpol, "exposed", "security.network-policy=fail")
	createDeployment(t, cs, goodDeployment(f.noQuota, "fine", nil))
	f.expect("Namespace", "", f.noQuota, "performance-efficiency.namespace-quota=fail")

	// The default namespace gets what a good namespace has, for the workload there.
	inDefault := f.prefix + "in-default"
	cleanUpDefault := setUpDefault(t, cs, inDefault)
	t.Cleanup(cleanUpDefault)
	createDeployment(t, cs, goodDeployment(metav1.NamespaceDefault, inDefault, nil))
	f.expect("Deployment", metav1.NamespaceDefault, inDefault, "operational-excellence.default-namespace=fail")

	// Nodes: one idle, one where the pod without a controller requests half of it.
	idle, busy := f.prefix+"idle", f.prefix+"busy"
	for _, name := range []string{idle, busy} {
		createNode(t, cs, name, "8", "16Gi")
	}
	f.expect("Node", "", idle, "sustainability.node-underutilized=warn")
	naked := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.main, Name: "naked", Labels: map[string]string{"app": "naked"}}, Spec: goodSpec()}
	naked.Spec.NodeName = busy
	naked.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")},
	}
	createPod(t, cs, naked)
	f.expect("Pod", f.main, "naked", "reliability.naked-pod=fail")
	// A pod whose controller has no template the receiver caches is evaluated itself.
	owner, err := cs.CoreV1().ConfigMaps(f.main).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	owned := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.main, Name: "owned", Labels: map[string]string{"app": "owned"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}},
	}, Spec: goodSpec()}
	owned.Spec.Containers[0].Image = "registry.k8s.io/pause:latest"
	createPod(t, cs, owned)
	f.expect("Pod", f.main, "owned", "security.image-tag=fail")

	other := otherObjects(f.main, f.prefix)
	for _, o := range other.svcs {
		_, err := cs.CoreV1().Services(f.main).Create(ctx, o, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	f.expect("Service", f.main, "svc-external-ips", "security.service-external-ips=fail")
	f.expect("Service", f.main, "svc-node-port", "security.service-node-port=fail")
	f.expect("Service", f.main, "svc-lb", "cost-optimization.load-balancer=warn")
	f.expect("Service", f.main, "svc-orphan", "reliability.service-selects-no-pods=fail")
	for _, o := range other.ings {
		_, err := cs.NetworkingV1().Ingresses(f.main).Create(ctx, o, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	f.expect("Ingress", f.main, "ing-plain", "security.ingress-tls=fail")
	for _, o := range other.hpas {
		_, err := cs.AutoscalingV2().HorizontalPodAutoscalers(f.main).Create(ctx, o, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	f.expect(checks.KindHPA, f.main, "hpa-single", "performance-efficiency.hpa-replicas=fail")
	for _, o := range other.roles {
		_, err := cs.RbacV1().Roles(f.main).Create(ctx, o, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	f.expect("Role", f.main, "role-wildcard", "security.rbac-wildcard=fail")
	f.expect("Role", f.main, "role-secrets", "security.rbac-secrets-access=fail")
	f.expect("Role", f.main, "role-exec", "security.rbac-pod-exec=fail")
	f.expect("Role", f.main, "role-bind", "security.rbac-escalation=fail")
	f.expect("Role", f.main, "role-create-pods", "security.rbac-create-pods=fail")
	for _, o := range other.croles {
		_, err := cs.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		require.NoError(t, err)
		name := o.Name
		t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	f.expect("ClusterRole", "", f.prefix+"everything", "security.rbac-create-pods=fail", "security.rbac-escalation=fail",
		"security.rbac-pod-exec=fail", "security.rbac-secrets-access=fail", "security.rbac-wildcard=fail")
	for _, o := range other.rbs {
		_, err := cs.RbacV1().RoleBindings(f.main).Create(ctx, o, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	f.expect("RoleBinding", f.main, "rb-admin", "security.rbac-cluster-admin-binding=fail")
	for _, o := range other.crbs {
		_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
		require.NoError(t, err)
		name := o.Name
		t.Cleanup(func() {
			_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
	f.expect("ClusterRoleBinding", "", f.prefix+"everything", "security.rbac-cluster-admin-binding=fail")
	for _, o := range other.crons {
		_, err := cs.BatchV1().CronJobs(f.main).Create(ctx, o, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	f.expect("CronJob", f.main, "cron-no-deadline", "reliability.cronjob-deadline=fail")

	// Without a flow source, the chains that read traffic cannot be evaluated.
	f.expect("Cluster", "", "", "security.chain-cross-namespace-ingress-unprotected=skip", "security.chain-unrestricted-egress-to-control-plane=skip")
	return f
}

func (f *fixture) expect(kind, ns, name string, checkResults ...string) {
	if len(checkResults) == 0 {
		return
	}
	key := kind + "/" + ns + "/" + name
	f.want[key] = append(f.want[key], checkResults...)
	sort.Strings(f.want[key])
}

func (f *fixture) namespaces() []string {
	return []string{f.main, f.noNetpol, f.noQuota, metav1.NamespaceDefault}
}

func createDeployment(t *testing.T, cs kubernetes.Interface, d *appsv1.Deployment) {
	t.Helper()
	_, err := cs.AppsV1().Deployments(d.Namespace).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(t, err, d.Name)
	if d.Namespace == metav1.NamespaceDefault {
		t.Cleanup(func() {
			_ = cs.AppsV1().Deployments(d.Namespace).Delete(context.Background(), d.Name, metav1.DeleteOptions{})
		})
	}
}

func createPod(t *testing.T, cs kubernetes.Interface, p *corev1.Pod) {
	t.Helper()
	_, err := cs.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	require.NoError(t, err, p.Name)
}

func createNode(t *testing.T, cs kubernetes.Interface, name, cpu, memory string) {
	t.Helper()
	ctx := context.Background()
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
	n.Status.Capacity = n.Status.Allocatable
	_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// setUpDefault gives the default namespace what a good namespace has (it is shared, so
// everything is removed again by the returned function).
func setUpDefault(t *testing.T, cs kubernetes.Interface, prefix string) func() {
	t.Helper()
	ctx := context.Background()
	ns := metav1.NamespaceDefault
	_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}, AutomountServiceAccountToken: ptr.To(false)}, metav1.CreateOptions{})
	require.NoError(t, ignoreAlreadyExists(err))
	_, err = cs.CoreV1().ResourceQuotas(ns).Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: prefix},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100")}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: prefix},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": prefix}}, PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: prefix},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": prefix}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return func() {
		ctx := context.Background()
		_ = cs.CoreV1().ResourceQuotas(ns).Delete(ctx, prefix, metav1.DeleteOptions{})
		_ = cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, prefix, metav1.DeleteOptions{})
		_ = cs.PolicyV1().PodDisruptionBudgets(ns).Delete(ctx, prefix, metav1.DeleteOptions{})
	}
}

func ignoreAlreadyExists(err error) error {
	if isAlreadyExists(err) {
		return nil
	}
	return err
}

// The acceptance test of the checks: against a real kube-apiserver, the fixture yields
// exactly the expected findings, the PolicyReports match them, fixing an object resolves
// its findings and exemptions hold.
func TestFindingsMatchTheFixture(t *testing.T) {
	env := kubeenv.Shared(t)
	installCRDs(t, env)
	f := setUpFixture(t, env)
	cs := adminClient(t, env)
	ctx := context.Background()

	cfg := testConfig(f.namespaces()...)
	cfg.PolicyReports.Enabled = true
	sink := &consumertest.LogsSink{}
	startReceiver(t, cfg, isolatedConfig(t, env), sink)
	recs := waitAssessments(t, sink, 1)
	st := state(recs)
	require.Equal(t, f.want, byObject(st, nil), "records:\n%s", describe(recs))
	t.Logf("%d findings on %d objects; %d records", len(st), len(f.want), len(recs))
	for _, r := range st {
		c, ok := checks.ByID(r.check)
		require.True(t, ok, r.check)
		assert.Equal(t, c.Pillar, r.attrs[kschema.AttrSecurityRuleCategory])
		assert.Equal(t, c.Severity, r.attrs[kschema.AttrRiskSeverity])
		assert.Equal(t, kschema.RiskStatusNew, r.status, "first assessment: %s", r)
		assert.NotEmpty(t, r.assessment, "emitted by the full assessment: %s", r)
		if r.object.Kind != "Cluster" {
			assert.NotEmpty(t, r.object.UID, r.String())
			assert.NotEmpty(t, r.attrs[kschema.AttrRiskEvidence], "evidence: %s", r)
		}
	}
	// Evidence names the offending field and its value.
	priv := findOne(t, st, "Deployment/"+f.main+"/privileged", "security.privileged-container")
	assert.Equal(t, []any{map[string]any{"path": "spec.template.spec.containers[app].securityContext.privileged", "value": "true"}}, priv.attrs[kschema.AttrRiskEvidence])
	assert.Equal(t, []any{"runAsPrivileged"}, priv.attrs[kschema.AttrRiskEquivalentPolaris])
	assert.Equal(t, []any{"5.2.2"}, priv.attrs[kschema.AttrRiskEquivalentCIS])
	assert.Equal(t, "Deployment", priv.attrs[kschema.AttrWorkloadKind])
	creds := findOne(t, st, "Deployment/"+f.main+"/password", "security.credentials-in-env")
	assert.NotContains(t, fmt.Sprint(creds.attrs), "hunter2", "a credential never leaves the cluster")

	waitReportsMatch(t, env, f, sink)

	// Fixing an object resolves its findings, once.
	_, err := cs.AppsV1().Deployments(f.main).Patch(ctx, "privileged", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","securityContext":{"privileged":null,"allowPrivilegeEscalation":false}}]}}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	privileged := "Deployment/" + f.main + "/privileged"
	var resolved []rec
	require.Eventually(t, func() bool {
		resolved = nil
		for _, r := range records(sink) {
			if r.status == kschema.RiskStatusResolved && r.obj() == privileged {
				resolved = append(resolved, r)
			}
		}
		return len(resolved) == 2
	}, waitFor, tick)
	for _, r := range resolved {
		assert.Equal(t, kschema.RiskResultPass, r.result)
		assert.Equal(t, kschema.RiskResolutionFixed, r.resolution)
	}
	delete(f.want, privileged)

	// Exemptions hold: on the object, and on its namespace; one that has ended does not.
	_, err = cs.AppsV1().Deployments(f.main).Patch(ctx, "caps-added", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"risk.kestrel.ai/exempt":"security.capabilities-added","risk.kestrel.ai/exempt-reason":"needs SYS_ADMIN for FUSE"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().Namespaces().Patch(ctx, f.noNetpol, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"risk.kestrel.ai/exempt":"security.network-policy","risk.kestrel.ai/exempt-reason":"isolated by the service mesh"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = cs.AppsV1().Deployments(f.main).Patch(ctx, "latest", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"risk.kestrel.ai/exempt":"*","risk.kestrel.ai/exempt-until":"2020-01-01"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	f.want["Deployment/"+f.main+"/caps-added"] = []string{"security.capabilities-added=skip"}
	f.want["Deployment/"+f.noNetpol+"/exposed"] = []string{"security.network-policy=skip"}
	require.Eventually(t, func() bool {
		st = state(records(sink))
		return assert.ObjectsAreEqual(f.want, byObject(st, nil))
	}, waitFor, tick, "want %v\ngot %v", f.want, byObject(st, nil))
	exempt := findOne(t, st, "Deployment/"+f.main+"/caps-added", "security.capabilities-added")
	assert.Equal(t, "needs SYS_ADMIN for FUSE", exempt.exemption)
	assert.Equal(t, kschema.RiskStatusChanged, exempt.status)
	assert.Equal(t, "isolated by the service mesh", findOne(t, st, "Deployment/"+f.noNetpol+"/exposed", "security.network-policy").exemption)

	waitReportsMatch(t, env, f, sink)

	// The fixed object's findings were found and resolved once each, however often it was
	// evaluated since.
	byStatus := map[string]int{}
	for _, r := range records(sink) {
		if r.obj() == privileged {
			byStatus[r.status]++
		}
	}
	assert.Equal(t, map[string]int{kschema.RiskStatusNew: len(resolved), kschema.RiskStatusResolved: len(resolved)}, byStatus)
}

func findOne(t *testing.T, st map[string]rec, obj, check string) rec {
	t.Helper()
	for _, r := range st {
		if r.obj() == obj && r.check == check {
			return r
		}
	}
	t.Fatalf("no finding %s on %s", check, obj)
	return rec{}
}

// waitReportsMatch waits until the PolicyReport of every fixture namespace and the
// ClusterPolicyReport list exactly the findings that hold, with summaries that count them.
func waitReportsMatch(t *testing.T, env *kubeenv.Env, f *fixture, sink *consumertest.LogsSink) {
	t.Helper()
	dyn := dynamicClient(t, env)
	var diff string
	ok := assert.Eventually(t, func() bool {
		st := state(records(sink))
		for _, ns := range append(f.namespaces(), "") {
			want := map[string]string{}
			for _, r := range st {
				if r.object.Namespace == ns {
					want[r.check+" "+r.obj()] = r.result
				}
			}
			var obj map[string]any
			if ns == "" {
				u, err := dyn.Resource(report.ClusterPolicyReports).Get(context.Background(), report.Name, metav1.GetOptions{})
				if err != nil {
					diff = err.Error()
					return false
				}
				obj = u.Object
			} else {
				u, err := dyn.Resource(report.PolicyReports).Namespace(ns).Get(context.Background(), report.Name, metav1.GetOptions{})
				if err != nil {
					diff = err.Error()
					return false
				}
				obj = u.Object
			}
			got, summary := reportContent(t, obj)
			if !assert.ObjectsAreEqual(want, got) {
				diff = fmt.Sprintf("report %q:\nwant %v\ngot  %v", ns, want, got)
				return false
			}
			for _, res := range []string{"fail", "warn", "skip", "error"} {
				n := 0
				for _, r := range want {
					if r == res {
						n++
					}
				}
				if summary[res] != n {
					diff = fmt.Sprintf("report %q: summary %v, want %d %s", ns, summary, n, res)
					return false
				}
			}
			if summary["pass"] == 0 && ns != "" {
				diff = fmt.Sprintf("report %q counts no passing checks", ns)
				return false
			}
		}
		return true
	}, waitFor, tick)
	require.True(t, ok, diff)
}

func reportContent(t *testing.T, obj map[string]any) (map[string]string, map[string]int) {
	t.Helper()
	raw, err := json.Marshal(obj)
	require.NoError(t, err)
	var rep struct {
		Summary map[string]int  `json:"summary"`
		Results []report.Result `json:"results"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	got := map[string]string{}
	for _, r := range rep.Results {
		o := "Cluster//"
		if len(r.Resources) > 0 {
			o = r.Resources[0].Kind + "/" + r.Resources[0].Namespace + "/" + r.Resources[0].Name
		}
		got[r.Policy+" "+o] = r.Result
		require.NotEmpty(t, r.Properties["fingerprint"])
	}
	return got, rep.Summary
}

// Every check of one object has a failing and a passing case in the fixture: evaluated
// directly over informers of the fixture, each check fails on at least one object and
// passes on at least one other.
func TestFixtureHasAFailingAndAPassingCaseForEveryCheck(t *testing.T) {
	env := kubeenv.Shared(t)
	f := setUpFixture(t, env)
	c, err := k8scache.For(isolatedConfig(t, env))
	require.NoError(t, err)
	stores := map[*k8scache.Resource]checks.Store{}
	for _, res := range slices.Concat(checks.SubjectResources, contextResources) {
		nss := []string{""}
		if res.Namespaced {
			nss = f.namespaces()
		}
		for _, ns := range nss {
			inf, release := c.Informer(res, ns)
			t.Cleanup(release)
			require.Eventually(t, inf.HasSynced, waitFor, tick)
			stores[res] = append(stores[res], inf.GetIndexer())
		}
	}
	cs := adminClient(t, env)
	v := &checks.View{
		Stores: stores, Missing: map[*k8scache.Resource]error{},
		PodSpecs: func(uid types.UID) (*checks.PodSpec, bool) {
			for _, obj := range stores[k8scache.Pods].List() {
				p := obj.(*slim.Pod)
				if p.UID != uid {
					continue
				}
				full, err := cs.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
				require.NoError(t, err)
				k8scache.SlimPodSpec(&full.Spec)
				return &checks.PodSpec{UID: uid, Spec: &full.Spec, Annotations: full.Annotations}, true
			}
			return nil, false
		},
		FlowSources: func() int { return 0 },
	}
	fails, passes := map[string][]string{}, map[string][]string{}
	for _, res := range checks.SubjectResources {
		for _, obj := range v.Store(res).List() {
			s, ok := checks.NewSubject(v, res, obj)
			if !ok {
				continue
			}
			for _, ch := range checks.Catalogue() {
				if ch.Eval == nil || !ch.AppliesTo(s.Object.Kind) {
					continue
				}
				out := ch.Eval(v, s)
				switch {
				case !out.Applies:
				case out.Skip != "":
					t.Errorf("%s skipped on %s: %s", ch.ID, s, out.Skip)
				case len(out.Evidence) > 0:
					fails[ch.ID] = append(fails[ch.ID], s.String())
				default:
					passes[ch.ID] = append(passes[ch.ID], s.String())
				}
			}
		}
	}
	n := 0
	for _, ch := range checks.Catalogue() {
		if ch.Eval == nil {
			continue
		}
		n++
		assert.NotEmpty(t, fails[ch.ID], "%s fails nowhere in the fixture", ch.ID)
		assert.NotEmpty(t, passes[ch.ID], "%s passes nowhere in the fixture", ch.ID)
	}
	t.Logf("%d checks of one object, each with a failing and a passing case", n)
}
