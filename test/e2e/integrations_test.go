package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/config/rbac"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/toolstest"
)

// integration sends a DatadogQueryRequest with `ctl integration --raw ARGS...`.
func (x *tools) integration(t *testing.T, typ cloudv1.DatadogQueryType, args ...string) *cloudv1.DatadogQueryResponse {
	t.Helper()
	var resp cloudv1.DatadogQueryResponse
	out := x.run(t, append([]string{"integration", "--raw", "--type", strconv.Itoa(int(typ))}, args...)...)
	require.NoError(t, protojson.Unmarshal([]byte(out), &resp), out)
	return &resp
}

// ok asserts a 200 answer and decodes its response_data.
func ok(t *testing.T, resp *cloudv1.DatadogQueryResponse) map[string]any {
	t.Helper()
	require.True(t, resp.GetSuccess(), "%d %s", resp.GetStatusCode(), resp.GetErrorMessage())
	require.EqualValues(t, 200, resp.GetStatusCode())
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(resp.GetResponseData()), &m), resp.GetResponseData())
	return m
}

// refused asserts a failed answer with code and a message containing text.
func refused(t *testing.T, resp *cloudv1.DatadogQueryResponse, code int32, text string) {
	t.Helper()
	assert.False(t, resp.GetSuccess())
	assert.Equal(t, code, resp.GetStatusCode(), resp.GetErrorMessage())
	assert.Contains(t, resp.GetErrorMessage(), text)
	assert.Empty(t, resp.GetResponseData())
}

// installIntegrationCRDs installs the test data CRDs (test/e2e/testdata/crds) and removes
// them when the test ends.
func installIntegrationCRDs(t *testing.T, env *kubeenv.Env) {
	t.Helper()
	files, err := filepath.Glob("testdata/crds/*.yaml")
	require.NoError(t, err)
	require.Len(t, files, 10)
	crds := dynamic.NewForConfigOrDie(env.RestConfig()).Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		toolstest.Apply(t, env.RestConfig(), b, nil)
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		// Gone before the next test installs it again.
		t.Cleanup(func() {
			_ = crds.Delete(context.Background(), name, metav1.DeleteOptions{})
			require.Eventually(t, func() bool {
				_, err := crds.Get(context.Background(), name, metav1.GetOptions{})
				return apierrors.IsNotFound(err)
			}, time.Minute, 100*time.Millisecond, "CRD %s not deleted", name)
		})
	}
	for _, gvk := range []string{"argoproj.io/v1alpha1 Application", "argoproj.io/v1alpha1 Rollout", "kustomize.toolkit.fluxcd.io/v1 Kustomization",
		"helm.toolkit.fluxcd.io/v2beta1 HelmRelease", "source.toolkit.fluxcd.io/v1 GitRepository", "source.toolkit.fluxcd.io/v1beta2 OCIRepository",
		"source.toolkit.fluxcd.io/v1 HelmChart", "source.toolkit.fluxcd.io/v1 Bucket", "karpenter.sh/v1 NodePool", "karpenter.sh/v1 NodeClaim"} {
		gv, kind, _ := strings.Cut(gvk, " ")
		toolstest.WaitServed(t, env, gv, kind)
	}
}

// object creates obj (YAML) as the administrator, then its status when it has one.
func object(t *testing.T, env *kubeenv.Env, resource, doc string) {
	t.Helper()
	obj, err := yamlToObject(doc)
	require.NoError(t, err)
	u := unstructured.Unstructured{Object: obj}
	gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
	require.NoError(t, err)
	r := dynamic.NewForConfigOrDie(env.RestConfig()).Resource(gv.WithResource(resource))
	var ri dynamic.ResourceInterface = r
	if u.GetNamespace() != "" {
		ri = r.Namespace(u.GetNamespace())
	}
	ctx := context.Background()
	created, err := ri.Create(ctx, &u, metav1.CreateOptions{})
	require.NoError(t, err, doc)
	if u.GetNamespace() == "" {
		t.Cleanup(func() { _ = ri.Delete(context.Background(), u.GetName(), metav1.DeleteOptions{}) })
	}
	if status, ok := u.Object["status"]; ok && resource != "applications" {
		created.Object["status"] = status
		_, err = ri.UpdateStatus(ctx, created, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
}

// Every read type of Argo CD, Argo Rollouts, Flux and Karpenter through `kestrel-devcloud
// ctl integration`, the collector and a real kube-apiserver, as the reader with the
// integrations' read profile; the CRDs installed while the collector runs; 400, 503, 413.
func TestIntegrationsFromCloud(t *testing.T) {
	x := startToolsWith(t, func(string) string {
		return "    integrations:\n      max_request_bytes: 1024\n      max_response_bytes: 8192\n"
	})
	ns := x.ns
	reader := "system:serviceaccount:" + ns + ":" + toolstest.Reader
	toolstest.Apply(t, x.env.RestConfig(), rbac.IntegrationsRead, func(o *unstructured.Unstructured) { toolstest.Localize(o, ns) })
	toolstest.WaitAllowed(t, x.env, reader, authorizationv1.ResourceAttributes{Verb: "list", Group: "karpenter.sh", Resource: "nodepools"})

	// Nothing installed yet: every integration answers 503, and says why.
	for typ, name := range map[cloudv1.DatadogQueryType]string{
		cloudv1.DatadogQueryType_ARGOCD_LIST_APPS: "Application", cloudv1.DatadogQueryType_ROLLOUTS_LIST: "Rollout",
		cloudv1.DatadogQueryType_FLUX_LIST: "Flux", cloudv1.DatadogQueryType_KARPENTER_LIST_NODEPOOLS: "NodePool",
	} {
		refused(t, x.integration(t, typ), 503, name+" is not installed in this cluster")
	}
	refused(t, x.integration(t, cloudv1.DatadogQueryType_DATADOG_LIST_MONITORS), 503, "the datadog integration is not enabled")
	refused(t, x.integration(t, 99), 400, "unknown query_type 99")
	refused(t, x.integration(t, 0), 400, "unknown query_type 0")

	// The CRDs appear while the collector runs; the objects an operator would see.
	installIntegrationCRDs(t, x.env)
	for _, o := range []struct{ resource, doc string }{
		{"applications", `{apiVersion: argoproj.io/v1alpha1, kind: Application, metadata: {name: shop, namespace: NS},
  spec: {project: default, source: {repoURL: "https://git.example.com/shop.git", path: deploy, targetRevision: main},
    destination: {server: "https://kubernetes.default.svc", namespace: shop}},
  status: {sync: {status: Synced, revision: abc123}, health: {status: Healthy}}}`},
		{"rollouts", `{apiVersion: argoproj.io/v1alpha1, kind: Rollout, metadata: {name: web, namespace: NS, annotations: {rollout.argoproj.io/revision: "4"}},
  spec: {replicas: 3, paused: true, strategy: {canary: {steps: [{setWeight: 20}, {pause: {}}, {setWeight: 50}]}},
    selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: web, image: "nginx:1.27"}]}}},
  status: {phase: Paused, message: CanaryPauseStep, pauseConditions: [{reason: CanaryPauseStep, startTime: "2026-12-06T10:00:00Z"}],
    currentStepIndex: 1, replicas: 3, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3, stableRS: 5f7b, currentPodHash: 6c9d}}`},
		{"kustomizations", `{apiVersion: kustomize.toolkit.fluxcd.io/v1, kind: Kustomization, metadata: {name: apps, namespace: NS},
  spec: {interval: 10m, path: ./apps, prune: true, sourceRef: {kind: GitRepository, name: flux-system}},
  status: {observedGeneration: 1, lastAppliedRevision: "main@sha1:abc", lastAttemptedRevision: "main@sha1:abc",
    conditions: [{type: Ready, status: "True", reason: ReconciliationSucceeded, message: "Applied revision: main@sha1:abc", lastTransitionTime: "2026-12-06T10:00:00Z"}]}}`},
		{"helmreleases", `{apiVersion: helm.toolkit.fluxcd.io/v2beta1, kind: HelmRelease, metadata: {name: podinfo, namespace: NS},
  spec: {interval: 5m, suspend: true, chart: {spec: {chart: podinfo, sourceRef: {kind: HelmRepository, name: podinfo}}}},
  status: {conditions: [{type: Ready, status: "False", reason: InstallFailed, message: "timed out", lastTransitionTime: "2026-12-06T10:00:00Z"}]}}`},
		{"gitrepositories", `{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, metadata: {name: flux-system, namespace: NS},
  spec: {interval: 1m, url: "https://git.example.com/fleet.git"}, status: {artifact: {revision: "main@sha1:abc"}}}`},
		{"ocirepositories", `{apiVersion: source.toolkit.fluxcd.io/v1beta2, kind: OCIRepository, metadata: {name: manifests, namespace: NS},
  spec: {interval: 5m, url: "oci://ghcr.io/example/manifests"}}`},
		{"helmcharts", `{apiVersion: source.toolkit.fluxcd.io/v1, kind: HelmChart, metadata: {name: NS-podinfo, namespace: NS},
  spec: {chart: podinfo, interval: 5m, sourceRef: {kind: HelmRepository, name: podinfo}}}`},
		{"buckets", `{apiVersion: source.toolkit.fluxcd.io/v1, kind: Bucket, metadata: {name: artifacts, namespace: NS},
  spec: {interval: 5m, bucketName: artifacts, endpoint: minio.example.com}}`},
		{"events", `{apiVersion: v1, kind: Event, metadata: {name: apps.1, namespace: NS}, type: Normal, reason: ReconciliationSucceeded,
  message: "Reconciliation finished", count: 2, firstTimestamp: "2026-12-06T10:00:00Z", lastTimestamp: "2026-12-06T10:05:00Z",
  source: {component: kustomize-controller}, involvedObject: {apiVersion: kustomize.toolkit.fluxcd.io/v1, kind: Kustomization, name: apps, namespace: NS}}`},
		{"nodepools", `{apiVersion: karpenter.sh/v1, kind: NodePool, metadata: {name: NS-default},
  spec: {weight: 10, limits: {cpu: "100", memory: 400Gi},
    disruption: {consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: 1m},
    template: {spec: {expireAfter: 720h, nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}}},
  status: {resources: {cpu: "8", memory: 32Gi, nodes: "2"}, conditions: [{type: Ready, status: "True", reason: Ready, lastTransitionTime: "2026-12-06T10:00:00Z"}]}}`},
		{"nodeclaims", `{apiVersion: karpenter.sh/v1, kind: NodeClaim, metadata: {name: NS-default-abcde, labels: {karpenter.sh/nodepool: NS-default,
    node.kubernetes.io/instance-type: m6i.large, karpenter.sh/capacity-type: spot, topology.kubernetes.io/zone: eu-west-1a}},
  spec: {nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}},
  status: {nodeName: ip-10-0-1-7, providerID: "aws:///eu-west-1a/i-0abc", capacity: {cpu: "2", memory: 8Gi},
    conditions: [{type: Launched, status: "True"}, {type: Registered, status: "True"}, {type: Initialized, status: "True"}, {type: Ready, status: "True"}]}}`},
		{"nodeclaims", `{apiVersion: karpenter.sh/v1, kind: NodeClaim, metadata: {name: NS-batch-fghij, labels: {karpenter.sh/nodepool: NS-batch}},
  spec: {nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}}`},
	} {
		object(t, x.env, o.resource, strings.ReplaceAll(o.doc, "NS", ns))
	}

	// Argo CD: the Application objects as argocd-server shows them (an ApplicationList).
	list := ok(t, x.integration(t, cloudv1.DatadogQueryType_ARGOCD_LIST_APPS))
	items := list["items"].([]any)
	require.Len(t, items, 1)
	app := items[0].(map[string]any)
	assert.Equal(t, "shop", app["metadata"].(map[string]any)["name"])
	assert.NotContains(t, app["metadata"], "managedFields")
	assert.Equal(t, "Healthy", app["status"].(map[string]any)["health"].(map[string]any)["status"])
	for _, f := range []string{"shop", ns + "/shop"} {
		got := ok(t, x.integration(t, cloudv1.DatadogQueryType_ARGOCD_GET_APP_STATUS, "--filter", f))
		assert.Equal(t, "Synced", got["status"].(map[string]any)["sync"].(map[string]any)["status"], f)
	}
	refused(t, x.integration(t, cloudv1.DatadogQueryType_ARGOCD_GET_APP_STATUS, "--filter", "nothere"), 404, `Application "nothere" not found`)
	refused(t, x.integration(t, cloudv1.DatadogQueryType_ARGOCD_GET_APP_STATUS, "--filter", "a/b/c"), 400, "want name or namespace/name")

	// Argo Rollouts.
	wantRollout := map[string]any{"name": "web", "namespace": ns, "phase": "Paused", "message": "CanaryPauseStep", "strategy": "canary",
		"paused": true, "pause_reasons": []any{"CanaryPauseStep"}, "aborted": false, "current_step_index": 1.0, "total_steps": 3.0,
		"replicas": 3.0, "current_replicas": 3.0, "updated_replicas": 1.0, "ready_replicas": 3.0, "available_replicas": 3.0,
		"stable_rs": "5f7b", "current_pod_hash": "6c9d", "revision": "4", "images": []any{"nginx:1.27"}}
	for _, args := range [][]string{{"--filter", ns + "/web"}, {"--filter", "web"}, {"--json", `{"namespace":"` + ns + `","name":"web"}`}} {
		got := ok(t, x.integration(t, cloudv1.DatadogQueryType_ROLLOUTS_GET_STATUS, args...))
		assert.NotEmpty(t, got["created_at"])
		delete(got, "created_at")
		assert.Equal(t, wantRollout, got, args)
	}
	rl := ok(t, x.integration(t, cloudv1.DatadogQueryType_ROLLOUTS_LIST, "--filter", ns))
	assert.EqualValues(t, 1, rl["count"])
	assert.Equal(t, "web", rl["rollouts"].([]any)[0].(map[string]any)["name"])
	refused(t, x.integration(t, cloudv1.DatadogQueryType_ROLLOUTS_GET_STATUS, "--json", `{"name": 7}`), 400, "json_body")

	// Flux: the forms of the filter, aliases and plurals, the v2beta1 fallback of HelmRelease.
	ks := ok(t, x.integration(t, cloudv1.DatadogQueryType_FLUX_GET_STATUS, "--filter", "ks/"+ns+"/apps"))
	assert.Equal(t, "True", ks["ready"])
	assert.Equal(t, "ReconciliationSucceeded", ks["reason"])
	assert.Equal(t, "main@sha1:abc", ks["last_applied_revision"])
	assert.Equal(t, map[string]any{"kind": "GitRepository", "name": "flux-system"}, ks["source_ref"])
	assert.Equal(t, "kustomize.toolkit.fluxcd.io/v1", ks["api_version"])
	assert.Equal(t, ks, ok(t, x.integration(t, cloudv1.DatadogQueryType_FLUX_GET_STATUS, "--filter", "apps")))
	hr := ok(t, x.integration(t, cloudv1.DatadogQueryType_FLUX_GET_STATUS, "--filter", "HelmReleases/podinfo"))
	assert.Equal(t, "helm.toolkit.fluxcd.io/v2beta1", hr["api_version"])
	assert.Equal(t, true, hr["suspended"])
	assert.Equal(t, "InstallFailed", hr["reason"])
	assert.Equal(t, map[string]any{"kind": "HelmRepository", "name": "podinfo"}, hr["source_ref"])
	git := ok(t, x.integration(t, cloudv1.DatadogQueryType_FLUX_GET_STATUS, "--json", `{"kind":"gitrepo","namespace":"`+ns+`","name":"flux-system"}`))
	assert.Equal(t, "main@sha1:abc", git["artifact_revision"])
	all := ok(t, x.integration(t, cloudv1.DatadogQueryType_FLUX_LIST))
	assert.EqualValues(t, 6, all["count"])
	kinds := map[string]bool{}
	for _, r := range all["resources"].([]any) {
		kinds[r.(map[string]any)["kind"].(string)] = true
	}
	assert.Len(t, kinds, 6)
	assert.EqualValues(t, 1, ok(t, x.integration(t, cloudv1.DatadogQueryType_FLUX_LIST, "--filter", "hc/"+ns))["count"])
	refused(t, x.integration(t, cloudv1.DatadogQueryType_FLUX_LIST, "--filter", "helmrepositories"), 503, "HelmRepository is not installed")
	evs := ok(t, x.integration(t, cloudv1.DatadogQueryType_FLUX_GET_EVENTS, "--filter", "kustomization/"+ns+"/apps"))
	assert.EqualValues(t, 1, evs["count"])
	ev := evs["events"].([]any)[0].(map[string]any)
	assert.Equal(t, "ReconciliationSucceeded", ev["reason"])
	assert.Equal(t, "kustomize-controller", ev["source"])
	assert.EqualValues(t, 2, ev["count"])
	refused(t, x.integration(t, cloudv1.DatadogQueryType_FLUX_GET_STATUS, "--filter", "widget/apps"), 400, `unknown Flux kind "widget"`)

	// Karpenter.
	pools := ok(t, x.integration(t, cloudv1.DatadogQueryType_KARPENTER_LIST_NODEPOOLS))
	var mine map[string]any
	for _, p := range pools["nodepools"].([]any) {
		if p.(map[string]any)["name"] == ns+"-default" {
			mine = p.(map[string]any)
		}
	}
	require.NotNil(t, mine, pools)
	assert.Equal(t, map[string]any{"cpu": "100", "memory": "400Gi"}, mine["limits"])
	assert.Equal(t, map[string]any{"cpu": "8", "memory": "32Gi", "nodes": "2"}, mine["resources"])
	assert.Equal(t, "WhenEmptyOrUnderutilized", mine["consolidation_policy"])
	assert.Equal(t, "1m", mine["consolidate_after"])
	assert.Equal(t, "720h", mine["expire_after"])
	assert.Equal(t, "karpenter.sh/v1", mine["api_version"])
	assert.Equal(t, map[string]any{"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}, mine["node_class_ref"])
	st := ok(t, x.integration(t, cloudv1.DatadogQueryType_KARPENTER_GET_NODEPOOL_STATUS, "--filter", ns+"-default"))
	assert.Equal(t, "True", st["ready"])
	claims := st["nodeclaims"].(map[string]any)
	assert.EqualValues(t, 1, claims["count"])
	claim := claims["nodeclaims"].([]any)[0].(map[string]any)
	for k, v := range map[string]any{"name": ns + "-default-abcde", "nodepool": ns + "-default", "node_name": "ip-10-0-1-7",
		"provider_id": "aws:///eu-west-1a/i-0abc", "instance_type": "m6i.large", "capacity_type": "spot", "zone": "eu-west-1a",
		"ready": "True", "launched": "True", "registered": "True", "initialized": "True"} {
		assert.Equal(t, v, claim[k], k)
	}
	assert.EqualValues(t, 1, ok(t, x.integration(t, cloudv1.DatadogQueryType_KARPENTER_LIST_NODECLAIMS, "--filter", ns+"-batch"))["count"])
	assert.EqualValues(t, 1, ok(t, x.integration(t, cloudv1.DatadogQueryType_KARPENTER_LIST_NODECLAIMS, "--json", `{"nodepool":"`+ns+`-default"}`))["count"])
	refused(t, x.integration(t, cloudv1.DatadogQueryType_KARPENTER_GET_NODEPOOL_STATUS, "--filter", "Not_A_Name"), 400, "name")

	// Karpenter v1 stops being served: the reads fall back to v1beta1 without a restart.
	crds := dynamic.NewForConfigOrDie(x.env.RestConfig()).Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	toolstest.Apply(t, x.env.RestConfig(), []byte(strings.Replace(strings.Replace(string(mustRead(t, "testdata/crds/nodepools.karpenter.sh.yaml")),
		"served: true\n    storage: true", "served: false\n    storage: false", 1), "served: true\n    storage: false", "served: true\n    storage: true", 1)), nil)
	require.Eventually(t, func() bool {
		r := x.integration(t, cloudv1.DatadogQueryType_KARPENTER_GET_NODEPOOL_STATUS, "--filter", ns+"-default")
		var s map[string]any
		return r.GetSuccess() && json.Unmarshal([]byte(r.GetResponseData()), &s) == nil && s["api_version"] == "karpenter.sh/v1beta1"
	}, 30*time.Second, 200*time.Millisecond)

	// Writes become ChangeRequests; without the write profile they are refused.
	refused(t, x.integration(t, cloudv1.DatadogQueryType_ROLLOUTS_PROMOTE, "--filter", ns+"/web"), 403, "apply is not enabled in this cluster")

	// Bounds: a json_body over max_request_bytes, an answer over max_response_bytes.
	refused(t, x.integration(t, cloudv1.DatadogQueryType_ROLLOUTS_LIST, "--json", `{"namespace":"`+strings.Repeat("x", 2000)+`"}`), 413, "at most 1024")
	for i := range 8 {
		object(t, x.env, "applications", fmt.Sprintf(`{apiVersion: argoproj.io/v1alpha1, kind: Application, metadata: {name: big-%d, namespace: %s,
  annotations: {note: %q}}, spec: {project: default}}`, i, ns, strings.Repeat("y", 1024)))
	}
	refused(t, x.integration(t, cloudv1.DatadogQueryType_ARGOCD_LIST_APPS), 413, "at most 8192 fit")
	assert.Len(t, ok(t, x.integration(t, cloudv1.DatadogQueryType_ARGOCD_LIST_APPS, "--max-results", "1"))["items"], 1)

	// The InventoryCommit of the next connection says which integrations are present.
	x.dc.Kill()
	x.dc.Restart(t)
	x.admin = x.dc.AdminAddr() // the new server's admin API
	x.dc.WaitCommitted(t)
	commit := x.dc.WaitPayload(t, "InventoryCommit", func(m proto.Message) bool { _, ok := m.(*cloudv1.InventoryCommit); return ok }).(*cloudv1.InventoryCommit)
	assert.True(t, commit.GetHasArgocd() && commit.GetHasRollouts() && commit.GetHasFlux() && commit.GetHasKarpenter(), "%v", commit)
	assert.False(t, commit.GetHasDatadog())

	// The Rollout CRD goes: 503 again, without a restart.
	require.NoError(t, crds.Delete(x.ctx, "rollouts.argoproj.io", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := crds.Get(x.ctx, "rollouts.argoproj.io", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && x.integration(t, cloudv1.DatadogQueryType_ROLLOUTS_LIST).GetStatusCode() == 503
	}, 30*time.Second, 200*time.Millisecond)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// yamlToObject decodes one YAML (or JSON) object.
func yamlToObject(doc string) (map[string]any, error) {
	var out map[string]any
	err := yaml.Unmarshal([]byte(doc), &out)
	return out, err
}
