package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"
	"github.com/kestrelai/otelcol-kestrel/config/rbac"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/toolstest"
)

// leaves flattens an object into its leaf fields ("spec.paused" → false), lists whole.
func leaves(prefix string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok && len(m) > 0 {
		for k, e := range m {
			leaves(prefix+"."+k, e, out)
		}
		return
	}
	b, _ := json.Marshal(v)
	out[strings.TrimPrefix(prefix, ".")] = string(b)
}

// changed lists the fields that differ between two versions of an object, without the
// ones the apiserver changes on every write.
func changed(before, after *unstructured.Unstructured) map[string]string {
	a, b := map[string]string{}, map[string]string{}
	leaves("", before.Object, a)
	leaves("", after.Object, b)
	out := map[string]string{}
	for k, v := range b {
		if a[k] != v {
			out[k] = v
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out[k] = "(removed)"
		}
	}
	for k := range out {
		if strings.HasPrefix(k, "metadata.managedFields") || k == "metadata.resourceVersion" || k == "metadata.generation" {
			delete(out, k)
		}
	}
	return out
}

// write sends an integration write, checks that it waits as a ChangeRequest and changes
// nothing meanwhile, then decides it as the approver and returns the final answer and the
// object before and after.
func (x *tools) write(t *testing.T, get func() *unstructured.Unstructured, decision v1alpha1.Decision, typ cloudv1.DatadogQueryType, args ...string) (*cloudv1.DatadogQueryResponse, *v1alpha1.ChangeRequest) {
	t.Helper()
	lines, done := x.background(t, append([]string{"integration", "--raw", "--type", strconv.Itoa(int(typ))}, args...)...)
	var pending cloudv1.DatadogQueryResponse
	line := nextLine(t, lines)
	require.NoError(t, protojson.Unmarshal([]byte(line), &pending), line)
	require.True(t, pending.GetPending(), "%s: %d %s", typ, pending.GetStatusCode(), pending.GetErrorMessage())
	assert.EqualValues(t, 202, pending.GetStatusCode())
	assert.False(t, pending.GetSuccess())
	name := strings.TrimPrefix(pending.GetChangeRequest(), x.ns+"/")
	require.True(t, strings.HasPrefix(name, "integration-"), pending.GetChangeRequest())
	assert.Contains(t, pending.GetErrorMessage(), "kubectl -n "+x.ns+" patch changerequest "+name)
	cr := x.changeRequest(t, name)
	assert.Equal(t, v1alpha1.OriginIntegration, cr.Spec.Origin)
	assert.Equal(t, typ.String(), cr.Spec.Operation)
	if get != nil {
		before := get()
		time.Sleep(200 * time.Millisecond)
		assert.Empty(t, changed(before, get()), "%s: nothing changes before the decision", typ)
	}
	require.NoError(t, x.decide(t, toolstest.ApproverUser, name, decision, toolstest.ApproverUser))
	var final cloudv1.DatadogQueryResponse
	line = nextLine(t, lines)
	require.NoError(t, protojson.Unmarshal([]byte(line), &final), line)
	require.NoError(t, <-done)
	assert.False(t, final.GetPending())
	assert.Equal(t, pending.GetRequestId(), final.GetRequestId())
	return &final, x.changeRequest(t, name)
}

// Every integration write waits for a person's approval in the cluster, then changes
// exactly the fields it names; a rejected one changes nothing; an auto_approve rule that
// lists an operation lets it through without a decision.
func TestIntegrationWritesNeedApproval(t *testing.T) {
	x := startToolsWith(t, func(ns string) string {
		return fmt.Sprintf("    changes:\n      apply:\n        enabled: true\n        auto_approve:\n          - operations: [FLUX_RECONCILE]\n            namespaces: [%s]\n", ns)
	})
	ns := x.ns
	toolstest.SetupChanges(t, x.env, ns)
	localize := func(o *unstructured.Unstructured) { toolstest.Localize(o, ns) }
	toolstest.Apply(t, x.env.RestConfig(), rbac.IntegrationsRead, localize)
	toolstest.Apply(t, x.env.RestConfig(), rbac.IntegrationsWrite, localize)
	toolstest.WaitAllowed(t, x.env, "system:serviceaccount:"+ns+":"+toolstest.Changes, authorizationv1.ResourceAttributes{
		Verb: "patch", Group: "argoproj.io", Resource: "rollouts", Subresource: "status"})
	toolstest.WaitAllowed(t, x.env, "system:serviceaccount:"+ns+":"+toolstest.Reader, authorizationv1.ResourceAttributes{
		Verb: "list", Group: "karpenter.sh", Resource: "nodeclaims"})
	installIntegrationCRDs(t, x.env)
	docs := []struct{ resource, doc string }{
		{"rollouts", `{apiVersion: argoproj.io/v1alpha1, kind: Rollout, metadata: {name: web, namespace: NS, annotations: {rollout.argoproj.io/revision: "4"}},
  spec: {replicas: 3, paused: true, strategy: {canary: {steps: [{setWeight: 20}, {pause: {}}]}},
    selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web, tier: front}}, spec: {containers: [{name: web, image: "nginx:1.27"}]}}},
  status: {phase: Paused, abort: false, pauseConditions: [{reason: CanaryPauseStep, startTime: "2026-12-06T10:00:00Z"}], currentStepIndex: 1}}`},
		{"kustomizations", `{apiVersion: kustomize.toolkit.fluxcd.io/v1, kind: Kustomization, metadata: {name: apps, namespace: NS},
  spec: {interval: 10m, path: ./apps, suspend: false, sourceRef: {kind: GitRepository, name: flux-system}}}`},
		{"gitrepositories", `{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, metadata: {name: flux-system, namespace: NS},
  spec: {interval: 1m, url: "https://git.example.com/fleet.git"}}`},
		{"nodepools", `{apiVersion: karpenter.sh/v1, kind: NodePool, metadata: {name: NS-default},
  spec: {limits: {cpu: "100", memory: 400Gi}, disruption: {consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: 1m},
    template: {spec: {nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}}}}`},
		{"nodeclaims", `{apiVersion: karpenter.sh/v1, kind: NodeClaim, metadata: {name: NS-default-abcde, labels: {karpenter.sh/nodepool: NS-default}},
  spec: {nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}}`},
		{"applications", `{apiVersion: argoproj.io/v1alpha1, kind: Application, metadata: {name: shop, namespace: NS},
  spec: {project: default, source: {repoURL: "https://git.example.com/shop.git", path: deploy, targetRevision: main},
    destination: {server: "https://kubernetes.default.svc", namespace: shop}},
  status: {history: [{id: 1, revision: aaa111, source: {repoURL: "https://git.example.com/shop.git", path: deploy, targetRevision: main}},
    {id: 2, revision: bbb222, source: {repoURL: "https://git.example.com/shop.git", path: deploy, targetRevision: main}}]}}`},
	}
	for _, d := range docs {
		object(t, x.env, d.resource, strings.ReplaceAll(d.doc, "NS", ns))
	}
	dyn := dynamic.NewForConfigOrDie(x.env.RestConfig())
	getter := func(gvr schema.GroupVersionResource, namespace, name string) func() *unstructured.Unstructured {
		return func() *unstructured.Unstructured {
			var ri dynamic.ResourceInterface = dyn.Resource(gvr)
			if namespace != "" {
				ri = dyn.Resource(gvr).Namespace(namespace)
			}
			u, err := ri.Get(context.Background(), name, metav1.GetOptions{})
			require.NoError(t, err)
			return u
		}
	}
	rollout := getter(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}, ns, "web")
	ks := getter(schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}, ns, "apps")
	git := getter(schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}, ns, "flux-system")
	poolGVR := schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodepools"}
	pool := getter(poolGVR, "", ns+"-default")
	app := getter(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}, ns, "shop")

	// A ReplicaSet of the Rollout's revision 3, for undo.
	ro := rollout()
	rs := fmt.Sprintf(`{apiVersion: apps/v1, kind: ReplicaSet, metadata: {name: web-5f7b, namespace: %[1]s,
  annotations: {rollout.argoproj.io/revision: "3"},
  ownerReferences: [{apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: web, uid: %[2]s, controller: true}]},
  spec: {replicas: 0, selector: {matchLabels: {app: web, rollouts-pod-template-hash: 5f7b}},
    template: {metadata: {labels: {app: web, rollouts-pod-template-hash: 5f7b}}, spec: {containers: [{name: web, image: "nginx:1.26"}]}}}}`, ns, ro.GetUID())
	object(t, x.env, "replicasets", rs)

	for _, c := range []struct {
		typ  cloudv1.DatadogQueryType
		args []string
		get  func() *unstructured.Unstructured
		want map[string]string
	}{
		{cloudv1.DatadogQueryType_ROLLOUTS_PROMOTE, []string{"--filter", ns + "/web", "--json", `{"full":true}`}, rollout,
			map[string]string{"spec.paused": "false", "status.pauseConditions": "(removed)", "status.promoteFull": "true"}},
		{cloudv1.DatadogQueryType_ROLLOUTS_ABORT, []string{"--filter", "web"}, rollout, map[string]string{"status.abort": "true"}},
		{cloudv1.DatadogQueryType_ROLLOUTS_RETRY, []string{"--filter", "web"}, rollout, map[string]string{"status.abort": "false"}},
		{cloudv1.DatadogQueryType_ROLLOUTS_PAUSE, []string{"--json", `{"namespace":"` + ns + `","name":"web"}`}, rollout, map[string]string{"spec.paused": "true"}},
		{cloudv1.DatadogQueryType_ROLLOUTS_RESUME, []string{"--filter", "web"}, rollout, map[string]string{"spec.paused": "false"}},
		{cloudv1.DatadogQueryType_ROLLOUTS_RESTART, []string{"--filter", "web"}, rollout, map[string]string{"spec.restartAt": ""}},
		{cloudv1.DatadogQueryType_FLUX_SUSPEND, []string{"--filter", "ks/" + ns + "/apps"}, ks, map[string]string{"spec.suspend": "true"}},
		{cloudv1.DatadogQueryType_FLUX_RESUME, []string{"--filter", "apps"}, ks,
			map[string]string{"spec.suspend": "false", "metadata.annotations.reconcile.fluxcd.io/requestedAt": ""}},
		{cloudv1.DatadogQueryType_KARPENTER_SCALE_NODEPOOL, []string{"--json", `{"name":"` + ns + `-default","cpu_limit":"200","memory_limit":"none"}`}, pool,
			map[string]string{"spec.limits.cpu": `"200"`, "spec.limits.memory": "(removed)"}},
		{cloudv1.DatadogQueryType_KARPENTER_SET_DISRUPTION, []string{"--filter", ns + "-default", "--json", `{"consolidation_policy":"WhenEmpty","consolidate_after":"5m"}`}, pool,
			map[string]string{"spec.disruption.consolidationPolicy": `"WhenEmpty"`, "spec.disruption.consolidateAfter": `"5m"`}},
		{cloudv1.DatadogQueryType_ARGOCD_SYNC_APP, []string{"--filter", ns + "/shop", "--json", `{"revision":"ccc333","prune":true}`}, app,
			map[string]string{"operation.initiatedBy.username": `"kestrel-ai"`, "operation.sync.revision": `"ccc333"`, "operation.sync.prune": "true", "operation.sync.dryRun": "false"}},
	} {
		before := c.get()
		final, cr := x.write(t, c.get, v1alpha1.Approved, c.typ, c.args...)
		require.True(t, final.GetSuccess(), "%s: %d %s", c.typ, final.GetStatusCode(), final.GetErrorMessage())
		assert.EqualValues(t, 200, final.GetStatusCode())
		assert.Equal(t, v1alpha1.StateApplied, cr.Status.State)
		got := changed(before, c.get())
		require.Len(t, got, len(c.want), "%s changed %v", c.typ, got)
		for k, v := range c.want {
			require.Contains(t, got, k, c.typ.String())
			if v != "" {
				assert.Equal(t, v, got[k], "%s %s", c.typ, k)
			}
		}
		if c.typ == cloudv1.DatadogQueryType_ARGOCD_SYNC_APP {
			// The application controller would run and clear it; here the test does.
			_, err := dyn.Resource(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}).Namespace(ns).
				Patch(x.ctx, "shop", "application/merge-patch+json", []byte(`{"operation":null}`), metav1.PatchOptions{})
			require.NoError(t, err)
		}
	}

	// Undo puts back the pod template of the ReplicaSet of the previous revision, exactly
	// (as the apiserver stored it, defaults included, without the controller's hash label).
	before := rollout()
	final, _ := x.write(t, rollout, v1alpha1.Approved, cloudv1.DatadogQueryType_ROLLOUTS_UNDO, "--filter", ns+"/web")
	require.True(t, final.GetSuccess(), final.GetErrorMessage())
	stored, err := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}).Namespace(ns).Get(x.ctx, "web-5f7b", metav1.GetOptions{})
	require.NoError(t, err)
	want, _, _ := unstructured.NestedMap(stored.Object, "spec", "template")
	unstructured.RemoveNestedField(want, "metadata", "labels", "rollouts-pod-template-hash")
	after := rollout()
	tmpl, _, _ := unstructured.NestedMap(after.Object, "spec", "template")
	assert.Equal(t, want, tmpl)
	for k := range changed(before, after) {
		assert.True(t, strings.HasPrefix(k, "spec.template."), "undo changed %s", k)
	}

	// Rollback goes to the history entry before the last, as argocd-server does.
	before = app()
	final, _ = x.write(t, app, v1alpha1.Approved, cloudv1.DatadogQueryType_ARGOCD_ROLLBACK_APP, "--filter", "shop")
	require.True(t, final.GetSuccess(), final.GetErrorMessage())
	got := changed(before, app())
	assert.Equal(t, `"aaa111"`, got["operation.sync.revision"])
	assert.Equal(t, "true", got["operation.sync.prune"])
	assert.Contains(t, got, "operation.sync.source.repoURL")
	for k := range got {
		assert.True(t, strings.HasPrefix(k, "operation."), "rollback changed %s", k)
	}

	// A rejected write changes nothing and says so.
	before = pool()
	final, cr := x.write(t, pool, v1alpha1.Rejected, cloudv1.DatadogQueryType_KARPENTER_SCALE_NODEPOOL, "--filter", ns+"-default", "--json", `{"cpu_limit":"1"}`)
	assert.False(t, final.GetSuccess())
	assert.EqualValues(t, 403, final.GetStatusCode())
	assert.Contains(t, final.GetErrorMessage(), "rejected by "+toolstest.ApproverUser)
	assert.Equal(t, v1alpha1.StateRejected, cr.Status.State)
	assert.Empty(t, changed(before, pool()))

	// A new NodePool from a full spec, and a NodeClaim deleted.
	final, _ = x.write(t, nil, v1alpha1.Approved, cloudv1.DatadogQueryType_KARPENTER_APPLY_NODEPOOL, "--json",
		`{"name":"`+ns+`-batch","nodepool_spec":{"weight":5,"limits":{"cpu":"16"},"template":{"spec":{"nodeClassRef":{"group":"karpenter.k8s.aws","kind":"EC2NodeClass","name":"default"}}}}}`)
	require.True(t, final.GetSuccess(), final.GetErrorMessage())
	batch := getter(poolGVR, "", ns+"-batch")()
	t.Cleanup(func() { _ = dyn.Resource(poolGVR).Delete(context.Background(), ns+"-batch", metav1.DeleteOptions{}) })
	w, _, _ := unstructured.NestedInt64(batch.Object, "spec", "weight")
	assert.EqualValues(t, 5, w)
	final, _ = x.write(t, nil, v1alpha1.Approved, cloudv1.DatadogQueryType_KARPENTER_DELETE_NODECLAIM, "--filter", ns+"-default-abcde")
	require.True(t, final.GetSuccess(), final.GetErrorMessage())
	_, err = dyn.Resource(schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodeclaims"}).Get(x.ctx, ns+"-default-abcde", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "%v", err)

	// FLUX_RECONCILE is listed for auto_approve in this namespace: applied without a
	// decision, on the source first (with_source), and still recorded as a ChangeRequest.
	ksBefore, gitBefore := ks(), git()
	lines, done := x.background(t, "integration", "--raw", "--type", "FLUX_RECONCILE", "--filter", "ks/"+ns+"/apps", "--json", `{"with_source":true}`)
	var pending, last cloudv1.DatadogQueryResponse
	require.NoError(t, protojson.Unmarshal([]byte(nextLine(t, lines)), &pending))
	assert.Contains(t, pending.GetErrorMessage(), "auto-approved")
	require.NoError(t, protojson.Unmarshal([]byte(nextLine(t, lines)), &last))
	require.NoError(t, <-done)
	require.True(t, last.GetSuccess(), last.GetErrorMessage())
	for _, pair := range [][2]*unstructured.Unstructured{{ksBefore, ks()}, {gitBefore, git()}} {
		got := changed(pair[0], pair[1])
		require.Len(t, got, 1, "%v", got)
		assert.Contains(t, got, "metadata.annotations.reconcile.fluxcd.io/requestedAt")
	}
	auto := x.changeRequest(t, strings.TrimPrefix(last.GetChangeRequest(), ns+"/"))
	assert.True(t, auto.Status.AutoApproved)
	assert.Len(t, auto.Spec.Manifests, 2)

	// A write whose dry-run fails is not proposed.
	resp := x.integration(t, cloudv1.DatadogQueryType_KARPENTER_SET_DISRUPTION, "--filter", ns+"-default", "--json", `{"consolidation_policy":"WhenUnderutilized"}`)
	refused(t, resp, 400, "accepts WhenEmpty, WhenEmptyOrUnderutilized")
}
