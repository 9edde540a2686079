package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"
	"github.com/kestrelai/otelcol-kestrel/config/rbac"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/toolstest"
)

func policyYAML(name, ns string) string {
	meta := "  name: " + name + "\n"
	if ns != "" {
		meta += "  namespace: " + ns + "\n"
	}
	return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n" + meta +
		"spec:\n  podSelector:\n    matchLabels: {app: web}\n  ingress:\n  - ports: [{port: 8080}]\n"
}

// file writes content to a file named name in a temporary directory.
func file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// dryRun runs `ctl dry-run --json` and returns the results by manifest id.
func (x *tools) dryRun(t *testing.T, files ...string) map[string]*cloudv1.YamlValidationResult {
	t.Helper()
	var resp cloudv1.YamlDryRunResponse
	out := x.run(t, append([]string{"dry-run", "--json", "--namespace", x.ns}, files...)...)
	require.NoError(t, protojson.Unmarshal([]byte(out), &resp))
	require.Len(t, resp.GetResults(), len(files), resp.GetGlobalErrorMessage())
	byID := map[string]*cloudv1.YamlValidationResult{}
	for _, r := range resp.GetResults() {
		byID[r.GetManifestId()] = r
	}
	return byID
}

// background runs `kestrel-devcloud ctl ARGS...` and returns its output lines as they come.
func (x *tools) background(t *testing.T, args ...string) (<-chan string, <-chan error) {
	t.Helper()
	cmd := exec.CommandContext(x.ctx, x.ctl, append([]string{"ctl", "--admin", x.admin}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	lines, done := make(chan string, 16), make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		done <- err
	}()
	return lines, done
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		require.True(t, ok, "ctl ended early")
		return l
	case <-time.After(90 * time.Second):
		t.Fatal("no output from ctl")
		return ""
	}
}

func applyResponse(t *testing.T, line string) *cloudv1.YamlApplyResponse {
	t.Helper()
	var resp cloudv1.YamlApplyResponse
	require.NoError(t, protojson.Unmarshal([]byte(line), &resp), line)
	return &resp
}

func (x *tools) crs(t *testing.T, user string) dynamic.ResourceInterface {
	t.Helper()
	rc := x.env.RestConfig()
	if user != "" {
		rc = toolstest.As(x.env, user)
	}
	dyn, err := dynamic.NewForConfig(rc)
	require.NoError(t, err)
	return dyn.Resource(v1alpha1.GroupVersionResource).Namespace(x.ns)
}

// decide patches a ChangeRequest's decision as user, naming decidedBy.
func (x *tools) decide(t *testing.T, user, name string, d v1alpha1.Decision, decidedBy string) error {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"decision":%q,"decidedBy":%q}}`, d, decidedBy)
	_, err := x.crs(t, user).Patch(x.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

func (x *tools) changeRequest(t *testing.T, name string) *v1alpha1.ChangeRequest {
	t.Helper()
	u, err := x.crs(t, "").Get(x.ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	var cr v1alpha1.ChangeRequest
	require.NoError(t, fromUnstructured(u, &cr))
	return &cr
}

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	b, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

func (x *tools) policyExists(t *testing.T, ns, name string) bool {
	t.Helper()
	_, err := x.cs.NetworkingV1().NetworkPolicies(ns).Get(x.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	require.NoError(t, err)
	return true
}

// events returns the reasons of the Events about a ChangeRequest, in order.
func (x *tools) events(t *testing.T, name string) []string {
	t.Helper()
	evs, err := x.cs.CoreV1().Events(x.ns).List(x.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	require.NoError(t, err)
	var reasons []string
	for _, e := range evs.Items {
		for range e.Count {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

// crdYAML is a minimal CRD for a third-party kind, as the test installs AuthorizationPolicy
// and CiliumNetworkPolicy.
func crdYAML(group, version, kind, plural, scope string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[4]s.%[1]s
spec:
  group: %[1]s
  scope: %[5]s
  names: {kind: %[3]s, plural: %[4]s, singular: %[6]s, listKind: %[3]sList}
  versions:
  - name: %[2]s
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`, group, version, kind, plural, scope, strings.ToLower(kind))
}

func lolBomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\nx0: &a0 [lol]\n")
	for i := 1; i <= 9; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9), ", ")
		fmt.Fprintf(&b, "x%d: &a%d [%s]\n", i, i, refs)
	}
	b.WriteString("data: *a9\n")
	return b.String()
}

// Every dry-run case of the issue through `ctl dry-run`: server-side apply with
// dryRun=All as the write profile, with the API's own errors and a diff.
func TestDryRunFromCloud(t *testing.T) {
	x := startTools(t)
	toolstest.SetupChanges(t, x.env, x.ns)
	x.deployment(t, "checkout")
	toolstest.Apply(t, x.env.RestConfig(), []byte(crdYAML("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies", "Namespaced")+"---\n"+
		crdYAML("cilium.io", "v2", "CiliumNetworkPolicy", "ciliumnetworkpolicies", "Namespaced")), nil)
	toolstest.WaitServed(t, x.env, "security.istio.io/v1", "AuthorizationPolicy")
	toolstest.WaitServed(t, x.env, "cilium.io/v2", "CiliumNetworkPolicy")
	// The write profile lists policies; an administrator extends it to what the cloud may
	// change, here Deployments in this namespace and a cluster-scoped kind.
	toolstest.Grant(t, x.env, x.ns, "system:serviceaccount:"+x.ns+":"+toolstest.Changes, "kestrel-test-deployments-"+x.ns, []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "create", "patch"}}})
	pcRole := "kestrel-test-priorityclasses-" + x.ns
	toolstest.Apply(t, x.env.RestConfig(), []byte(fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: %[1]s}
rules: [{apiGroups: [scheduling.k8s.io], resources: [priorityclasses], verbs: [get, create, patch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %[1]s}
subjects: [{kind: ServiceAccount, name: %[2]s, namespace: %[3]s}]
`, pcRole, toolstest.Changes, x.ns)), nil)
	toolstest.WaitAllowed(t, x.env, "system:serviceaccount:"+x.ns+":"+toolstest.Changes, authorizationv1.ResourceAttributes{
		Verb: "create", Group: "scheduling.k8s.io", Resource: "priorityclasses"})

	files := map[string]string{
		"new-policy.yaml": policyYAML("allow-web", ""),
		"deploy-valid.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\n" +
			"  annotations: {kestrel.ai/reviewed: \"yes\"}\nspec:\n  minReadySeconds: 5\n",
		"deploy-invalid.yaml":  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: checkout}\nspec: {minReadySeconds: -1}\n",
		"deploy-conflict.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: checkout}\nspec: {replicas: 3}\n",
		"authz.yaml": "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all}\n" +
			"spec: {action: DENY, rules: [{}]}\n",
		"cilium.yaml": "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: l7}\n" +
			"spec: {endpointSelector: {matchLabels: {app: web}}}\n",
		"cluster.yaml": "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: kestrel-" + x.ns + "}\nvalue: 1000\n",
		"multi.yaml":   policyYAML("allow-a", "") + "---\n" + policyYAML("allow-b", x.ns),
		"unknown.yaml": "apiVersion: example.com/v1\nkind: Frobnicator\nmetadata: {name: x}\n",
		"bomb.yaml":    lolBomb(),
		"big.yaml":     strings.Repeat("# padding\n", 300_000) + policyYAML("big", ""),
	}
	var paths []string
	for name, content := range files {
		paths = append(paths, file(t, name, content))
	}
	res := x.dryRun(t, paths...)

	np := res["new-policy.yaml"]
	assert.True(t, np.GetValid(), np.GetErrorMessage())
	assert.Equal(t, int32(200), np.GetStatusCode())
	assert.Contains(t, np.GetDiff(), "--- live (does not exist)")
	assert.Contains(t, np.GetDiff(), "+kind: NetworkPolicy")
	assert.Contains(t, np.GetDiff(), "+  namespace: "+x.ns, "the request's namespace fills in")
	assert.NotContains(t, np.GetDiff(), "managedFields")
	assert.False(t, x.policyExists(t, x.ns, "allow-web"), "a dry-run creates nothing")

	valid := res["deploy-valid.yaml"]
	assert.True(t, valid.GetValid(), valid.GetErrorMessage())
	assert.Contains(t, valid.GetDiff(), "+  minReadySeconds: 5")
	assert.Contains(t, valid.GetDiff(), "+    kestrel.ai/reviewed: \"yes\"")
	for _, leftOut := range []string{"managedFields", "resourceVersion", "status:", "uid:"} {
		assert.NotContains(t, valid.GetDiff(), leftOut)
	}
	dep, err := x.cs.AppsV1().Deployments(x.ns).Get(x.ctx, "checkout", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Zero(t, dep.Spec.MinReadySeconds, "a dry-run changes nothing")

	invalid := res["deploy-invalid.yaml"]
	assert.False(t, invalid.GetValid())
	assert.Equal(t, int32(422), invalid.GetStatusCode())
	assert.Contains(t, invalid.GetErrorMessage(), "causes:\n- spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0")
	assert.Empty(t, invalid.GetSuggestedFix(), "the API's causes, not a canned hint")

	conflict := res["deploy-conflict.yaml"]
	assert.False(t, conflict.GetValid())
	assert.Equal(t, int32(409), conflict.GetStatusCode(), "no force: a field of another manager is a conflict")
	assert.Contains(t, conflict.GetErrorMessage(), ".spec.replicas")

	for _, f := range []string{"authz.yaml", "cilium.yaml", "cluster.yaml"} {
		assert.True(t, res[f].GetValid(), "%s: %s", f, res[f].GetErrorMessage())
		assert.Contains(t, res[f].GetDiff(), "+kind: ", f)
	}
	assert.NotContains(t, res["cluster.yaml"].GetDiff(), "namespace:", "cluster-scoped objects get no namespace")
	multi := res["multi.yaml"]
	assert.True(t, multi.GetValid(), multi.GetErrorMessage())
	assert.Contains(t, multi.GetDiff(), "# networking.k8s.io/v1 NetworkPolicy "+x.ns+"/allow-a")
	assert.Contains(t, multi.GetDiff(), "# networking.k8s.io/v1 NetworkPolicy "+x.ns+"/allow-b")

	for f, want := range map[string]string{
		"unknown.yaml": `kind "Frobnicator" of apiVersion "example.com/v1" is not served by this cluster`,
		"bomb.yaml":    "document 1 expands to more than 100000 YAML nodes (aliases counted expanded); refused",
		"big.yaml":     "bytes; at most 1048576 are accepted",
	} {
		r := res[f]
		assert.False(t, r.GetValid(), f)
		assert.Equal(t, int32(400), r.GetStatusCode(), f)
		assert.Contains(t, r.GetErrorMessage(), want, f)
	}

	// The human form prints the verdicts and diffs.
	out := x.run(t, "dry-run", "--namespace", x.ns, paths[0])
	assert.Contains(t, out, "== "+filepath.Base(paths[0])+": ")
}

// A 100 MiB manifest reaches the operator (whose message limit is raised for it) and is
// refused before it is parsed.
func TestDryRunRefusesHugeManifest(t *testing.T) {
	x := startToolsWithOptions(t, toolsOptions{maxMessageMiB: 128})
	huge := strings.Repeat("#", 100<<20) + "\n" + policyYAML("huge", "")
	start := time.Now()
	resp, err := x.dc.SendRequest(x.ctx, "", &cloudv1.YamlDryRunRequest{YamlManifests: []*cloudv1.YamlManifest{
		{ManifestId: "huge", YamlContent: huge, Namespace: x.ns}}})
	require.NoError(t, err)
	r := resp.(*cloudv1.YamlDryRunResponse)
	require.Len(t, r.GetResults(), 1, r.GetGlobalErrorMessage())
	assert.Equal(t, int32(400), r.GetResults()[0].GetStatusCode())
	assert.Equal(t, fmt.Sprintf("manifest is %d bytes; at most 1048576 are accepted", len(huge)), r.GetResults()[0].GetErrorMessage())
	t.Logf("100 MiB manifest answered in %v", time.Since(start))
	assert.False(t, x.policyExists(t, x.ns, "huge"))
}

// The approval flow through `ctl apply` and `ctl push-policy`: nothing is written before a
// person with the approve right decided, decisions are recorded truthfully, and the cloud
// hears the outcome.
func TestApplyNeedsApprovalInCluster(t *testing.T) {
	env := kubeenv.Shared(t)
	autoNS := env.Namespace(t)
	x := startToolsWith(t, func(string) string {
		return fmt.Sprintf(`    changes:
      apply:
        enabled: true
        auto_approve:
          - kinds: [NetworkPolicy]
            namespaces: [%s]`, autoNS)
	})
	changes := "system:serviceaccount:" + x.ns + ":" + toolstest.Changes

	// Without the write profile an apply is refused and writes nothing.
	out := x.run(t, "apply", "--json", "--namespace", x.ns, file(t, "early.yaml", policyYAML("early", "")))
	early := applyResponse(t, strings.TrimSpace(out))
	assert.False(t, early.GetPending())
	assert.True(t, strings.HasPrefix(early.GetGlobalErrorMessage(), "apply is not enabled in this cluster: "), early.GetGlobalErrorMessage())
	assert.False(t, x.policyExists(t, x.ns, "early"))
	// So is a restart, which this collector is not configured for.
	assert.Contains(t, x.run(t, "restart"), "refused: restart is not enabled in this collector")

	toolstest.SetupChanges(t, x.env, x.ns)

	lines, done := x.background(t, "apply", "--json", "--namespace", x.ns, file(t, "web.yaml", policyYAML("web", "")))
	pending := applyResponse(t, nextLine(t, lines))
	require.True(t, pending.GetPending(), pending.GetGlobalErrorMessage())
	crRef := pending.GetChangeRequest()
	require.True(t, strings.HasPrefix(crRef, x.ns+"/apply-"), crRef)
	name := strings.TrimPrefix(crRef, x.ns+"/")
	require.Len(t, pending.GetResults(), 1)
	assert.Equal(t, int32(202), pending.GetResults()[0].GetStatusCode())
	assert.Contains(t, pending.GetResults()[0].GetErrorMessage(), "kubectl -n "+x.ns+" patch changerequest "+name+" --type=merge")

	cr := x.changeRequest(t, name)
	assert.Equal(t, changes, cr.Spec.RequestedBy)
	assert.Equal(t, "NetworkPolicy "+x.ns+"/web", cr.Spec.Target)
	assert.Contains(t, cr.Spec.Manifests[0].Diff, "+kind: NetworkPolicy")
	require.Eventually(t, func() bool { return x.changeRequest(t, name).Status.State == v1alpha1.StatePending }, 30*time.Second, 50*time.Millisecond)
	assert.False(t, x.policyExists(t, x.ns, "web"), "nothing changes before approval")

	// A user who may patch ChangeRequests but lacks the approve verb cannot decide.
	toolstest.Grant(t, x.env, x.ns, "bob@example.com", "kestrel-test-cr-editor-"+x.ns, []rbacv1.PolicyRule{
		{APIGroups: []string{v1alpha1.Group}, Resources: []string{v1alpha1.Resource}, Verbs: []string{"get", "patch"}}})
	err := x.decide(t, "bob@example.com", name, v1alpha1.Approved, "bob@example.com")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bob@example.com may not decide ChangeRequests: the approve verb on changerequests.kestrel.ai is required")
	// An approver cannot record someone else as the decider.
	err = x.decide(t, toolstest.ApproverUser, name, v1alpha1.Approved, "bob@example.com")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.decidedBy must name the user who decides: "+toolstest.ApproverUser)
	// The operator's own identity may not patch ChangeRequests at all...
	err = x.decide(t, changes, name, v1alpha1.Approved, changes)
	require.True(t, apierrors.IsForbidden(err), "%v", err)
	assert.Contains(t, err.Error(), `cannot patch resource "changerequests"`)
	// ...and even when someone grants it the approver role, it cannot decide its own request.
	toolstest.Grant(t, x.env, x.ns, changes, toolstest.Approver+"-"+x.ns, nil)
	require.Eventually(t, func() bool { // the apiserver's RBAC cache takes the binding in a moment
		err = x.decide(t, changes, name, v1alpha1.Approved, changes)
		return err != nil && !apierrors.IsForbidden(err) || strings.Contains(fmt.Sprint(err), "cannot decide it")
	}, 10*time.Second, 50*time.Millisecond, "%v", err)
	assert.Contains(t, err.Error(), changes+" requested this change and cannot decide it")
	assert.False(t, x.policyExists(t, x.ns, "web"))

	require.NoError(t, x.decide(t, toolstest.ApproverUser, name, v1alpha1.Approved, toolstest.ApproverUser))
	final := applyResponse(t, nextLine(t, lines))
	require.NoError(t, <-done)
	assert.False(t, final.GetPending())
	assert.Equal(t, pending.GetRequestId(), final.GetRequestId(), "the final result answers the same request_id")
	require.Len(t, final.GetResults(), 1, final.GetGlobalErrorMessage())
	assert.True(t, final.GetResults()[0].GetSuccess(), final.GetResults()[0].GetErrorMessage())
	assert.Equal(t, int32(200), final.GetResults()[0].GetStatusCode())
	assert.Equal(t, "applied networking.k8s.io/v1 NetworkPolicy "+x.ns+"/web", final.GetResults()[0].GetAppliedResourceInfo())

	applied, err := x.cs.NetworkingV1().NetworkPolicies(x.ns).Get(x.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, applied.ManagedFields, 1)
	assert.Equal(t, "kestrel-operator", applied.ManagedFields[0].Manager)
	assert.Equal(t, metav1.ManagedFieldsOperationApply, applied.ManagedFields[0].Operation)
	cr = x.changeRequest(t, name)
	assert.Equal(t, v1alpha1.StateApplied, cr.Status.State)
	assert.Equal(t, toolstest.ApproverUser, cr.Spec.DecidedBy)
	require.Eventually(t, func() bool { return x.changeRequest(t, name).Status.Reported }, 30*time.Second, 50*time.Millisecond)
	// Applied exactly once: one Approved and one Applied event, and no later write.
	time.Sleep(2 * time.Second)
	again, err := x.cs.NetworkingV1().NetworkPolicies(x.ns).Get(x.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, applied.ResourceVersion, again.ResourceVersion)
	assert.ElementsMatch(t, []string{"Approved", "Applied"}, x.events(t, name))
	// A decision is final.
	err = x.decide(t, toolstest.ApproverUser, name, v1alpha1.Rejected, toolstest.ApproverUser)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a decision cannot be changed or withdrawn")

	// The schema and the admission policy refuse bad ChangeRequests, even from an admin.
	err = x.decide(t, toolstest.ApproverUser, name, "Maybe", toolstest.ApproverUser)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `Unsupported value: "Maybe"`)
	_, err = x.crs(t, "").Patch(x.ctx, name, types.MergePatchType, []byte(`{"spec":{"manifests":[{"object":"x","yaml":"y"}]}}`), metav1.PatchOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "manifests are immutable")
	_, err = x.crs(t, "").Create(x.ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kestrel.ai/v1alpha1", "kind": "ChangeRequest", "metadata": map[string]any{"name": "forged"},
		"spec": map[string]any{"origin": "YamlApplyRequest", "requestID": "f", "policyID": "", "reason": "", "target": "x",
			"requestedBy": changes, "expiresAt": "2030-01-01T00:00:00Z",
			"manifests": []any{map[string]any{"object": "x", "yaml": policyYAML("forged", x.ns)}}}}}, metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.requestedBy must be the creator")

	// Rejected: nothing is written, and the cloud hears why.
	lines, done = x.background(t, "apply", "--json", "--namespace", x.ns, file(t, "rejected.yaml", policyYAML("rejected", "")))
	pending = applyResponse(t, nextLine(t, lines))
	require.True(t, pending.GetPending(), pending.GetGlobalErrorMessage())
	name = strings.TrimPrefix(pending.GetChangeRequest(), x.ns+"/")
	require.NoError(t, x.decide(t, toolstest.ApproverUser, name, v1alpha1.Rejected, toolstest.ApproverUser))
	final = applyResponse(t, nextLine(t, lines))
	require.NoError(t, <-done)
	assert.False(t, final.GetPending())
	assert.Contains(t, final.GetGlobalErrorMessage(), "rejected by "+toolstest.ApproverUser+"; nothing was applied")
	assert.Equal(t, int32(403), final.GetResults()[0].GetStatusCode())
	assert.False(t, x.policyExists(t, x.ns, "rejected"))
	assert.Equal(t, []string{"Rejected"}, x.events(t, name))

	// Pushed policies, on StreamData and on StreamControl: the same flow, answered with
	// NetworkPoliciesWithErrors carrying the policy_id.
	for _, stream := range []string{"data", "control"} {
		id := "pol-" + stream
		pol := "pushed-" + stream
		lines, done := x.background(t, "push-policy", "--json", "--stream", stream, "--policy-id", id, file(t, pol+".yaml", policyYAML(pol, x.ns)))
		crName := "policy-" // the name is derived from the policy_id
		require.Eventually(t, func() bool {
			l, err := x.crs(t, "").List(x.ctx, metav1.ListOptions{})
			require.NoError(t, err)
			for _, u := range l.Items {
				if id == fmt.Sprint(u.Object["spec"].(map[string]any)["policyID"]) {
					crName = u.GetName()
					return true
				}
			}
			return false
		}, 60*time.Second, 100*time.Millisecond, "no ChangeRequest for %s", id)
		assert.False(t, x.policyExists(t, x.ns, pol))
		require.NoError(t, x.decide(t, toolstest.ApproverUser, crName, v1alpha1.Approved, toolstest.ApproverUser))
		var ack cloudv1.NetworkPolicyWithError
		require.NoError(t, protojson.Unmarshal([]byte(readAll(t, lines)), &ack))
		require.NoError(t, <-done)
		assert.Equal(t, id, ack.GetPolicyId())
		assert.Empty(t, ack.GetErrorMessage())
		assert.Equal(t, policyYAML(pol, x.ns), ack.GetNetworkPolicy(), "the policy is echoed")
		assert.True(t, x.policyExists(t, x.ns, pol))
		// devcloud saw the ack on StreamData, the only stream that carries it.
		assert.NotEmpty(t, cloudtest.PayloadsOn(x.dc.Records(), "data"))
	}

	// auto_approve: applied without a decision, and still a ChangeRequest.
	lines, done = x.background(t, "apply", "--json", "--namespace", autoNS, file(t, "auto.yaml", policyYAML("auto", "")))
	pending = applyResponse(t, nextLine(t, lines))
	require.True(t, pending.GetPending(), pending.GetGlobalErrorMessage())
	assert.Contains(t, pending.GetResults()[0].GetErrorMessage(), "auto-approved")
	final = applyResponse(t, nextLine(t, lines))
	require.NoError(t, <-done)
	assert.True(t, final.GetResults()[0].GetSuccess(), final.GetGlobalErrorMessage())
	assert.True(t, x.policyExists(t, autoNS, "auto"))
	cr = x.changeRequest(t, strings.TrimPrefix(pending.GetChangeRequest(), x.ns+"/"))
	assert.True(t, cr.Status.AutoApproved)
	assert.Empty(t, cr.Spec.Decision)
}

func readAll(t *testing.T, lines <-chan string) string {
	t.Helper()
	var b strings.Builder
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return b.String()
			}
			b.WriteString(l + "\n")
		case <-time.After(90 * time.Second):
			t.Fatal("ctl did not finish")
		}
	}
}

// A ChangeRequest nobody decides expires: nothing is written and the cloud hears so. The
// same collector restarts itself with a rolling restart of its Deployment.
func TestApplyExpiresAndRestart(t *testing.T) {
	x := startToolsWith(t, func(string) string {
		return `    changes:
      apply:
        enabled: true
        expiry: 3s
    restart:
      mode: rollout
      deployment: otelcol-kestrel
      max_delay: 2s`
	})
	toolstest.SetupChanges(t, x.env, x.ns)
	lines, done := x.background(t, "apply", "--json", "--namespace", x.ns, file(t, "late.yaml", policyYAML("late", "")))
	pending := applyResponse(t, nextLine(t, lines))
	require.True(t, pending.GetPending(), pending.GetGlobalErrorMessage())
	final := applyResponse(t, nextLine(t, lines))
	require.NoError(t, <-done)
	assert.False(t, final.GetPending())
	assert.Contains(t, final.GetGlobalErrorMessage(), "without a decision; nothing was applied")
	assert.Equal(t, int32(410), final.GetResults()[0].GetStatusCode())
	assert.False(t, x.policyExists(t, x.ns, "late"))
	name := strings.TrimPrefix(pending.GetChangeRequest(), x.ns+"/")
	assert.Equal(t, v1alpha1.StateExpired, x.changeRequest(t, name).Status.State)
	assert.Equal(t, []string{"Expired"}, x.events(t, name))
	// Approving afterwards changes nothing.
	require.NoError(t, x.decide(t, toolstest.ApproverUser, name, v1alpha1.Approved, toolstest.ApproverUser))
	time.Sleep(time.Second)
	assert.False(t, x.policyExists(t, x.ns, "late"))

	// The human form prints both answers as they come.
	out := x.run(t, "apply", "--namespace", x.ns, file(t, "late-too.yaml", policyYAML("late-too", "")))
	assert.Regexp(t, `(?s)== YamlApplyResponse \w+ \(pending\) ChangeRequest `+x.ns+`/apply-\w+\nlate-too.yaml: 202 pending approval in the cluster: .*`+
		`== YamlApplyResponse \w+ \(final\) ChangeRequest .*\nerror: .*without a decision; nothing was applied\nlate-too.yaml: 410 `, out)

	// Restart: refused until the collector may patch its Deployment, then a rolling restart.
	x.deployment(t, "otelcol-kestrel")
	assert.Contains(t, x.run(t, "restart"), "refused: the collector may not patch Deployment "+x.ns+"/otelcol-kestrel")
	toolstest.Apply(t, x.env.RestConfig(), rbac.Restart, func(o *unstructured.Unstructured) { toolstest.Localize(o, x.ns) })
	toolstest.WaitAllowed(t, x.env, "system:serviceaccount:"+x.ns+":"+toolstest.Collector, authorizationv1.ResourceAttributes{
		Namespace: x.ns, Verb: "patch", Group: "apps", Resource: "deployments", Name: "otelcol-kestrel"})
	out = x.run(t, "restart", "--delay-seconds", "60", "--reason", "new config")
	assert.Contains(t, out, "restart scheduled for ")
	assert.Contains(t, x.run(t, "restart"), "refused: a restart is already scheduled")
	require.Eventually(t, func() bool {
		d, err := x.cs.AppsV1().Deployments(x.ns).Get(x.ctx, "otelcol-kestrel", metav1.GetOptions{})
		require.NoError(t, err)
		return d.Spec.Template.Annotations["kestrel.ai/restart-reason"] == "new config" &&
			d.Spec.Template.Annotations["kestrel.ai/restartedAt"] != ""
	}, 30*time.Second, 100*time.Millisecond, "delay_seconds is capped at restart::max_delay (2s)")
}

// Certificate renewal through `ctl renew-cert`: a good pair is taken without a restart (the
// next handshake presents it); bad pairs are refused and the connection keeps working.
func TestCertificateRenewalFromCloud(t *testing.T) {
	x := startTools(t)
	certs := x.dc.Certs
	ca := filepath.Join(certs, devcloud.CACertFile)
	before := x.dc.Status().Operators[0].CertSerial

	dir := t.TempDir()
	issue := func(name string) (string, string) {
		c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		_, err := devcloud.IssueClientCert(certs, c, k)
		require.NoError(t, err)
		return c, k
	}
	c1, _ := issue("one")
	_, k2 := issue("two")
	foreign := cloudtest.NewCerts(t, devcloud.CertOptions{})
	expiredCert, expiredKey := signed(t, certs, dir, "expired", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	futureCert, futureKey := signed(t, certs, dir, "future", time.Now().Add(time.Hour), time.Now().Add(48*time.Hour))
	for _, tc := range []struct{ cert, key, ca, want string }{
		{c1, k2, ca, "refused: certificate renewal refused: the key does not match the certificate"},
		{filepath.Join(foreign, devcloud.ClientCertFile), filepath.Join(foreign, devcloud.ClientKeyFile), filepath.Join(foreign, devcloud.CACertFile),
			"does not chain to the CA this collector trusts"},
		{expiredCert, expiredKey, ca, "expired at"},
		{futureCert, futureKey, ca, "more than the allowed clock skew of 5m0s ahead"},
	} {
		out := x.run(t, "renew-cert", "--cert", tc.cert, "--key", tc.key, "--ca", tc.ca)
		assert.Contains(t, out, tc.want)
	}
	assert.Equal(t, before, x.dc.Status().Operators[0].CertSerial, "refused pairs leave the connection alone")
	// The connection still serves requests.
	assert.Contains(t, x.run(t, "restart"), "refused: restart is not enabled")

	good, goodKey := issue("good")
	out := x.run(t, "renew-cert", "--cert", good, "--key", goodKey, "--ca", ca)
	assert.Contains(t, out, "accepted: certificate serial ")
	assert.Contains(t, out, "connected with certificate serial ")
	assert.NotEqual(t, before, x.dc.Status().Operators[0].CertSerial)
	x.dc.WaitCommitted(t)
}

// signed writes a client certificate signed by the CA in certs, valid from notBefore to
// notAfter.
func signed(t *testing.T, certs, dir, name string, notBefore, notAfter time.Time) (string, string) {
	t.Helper()
	ca, err := tls.LoadX509KeyPair(filepath.Join(certs, devcloud.CACertFile), filepath.Join(certs, devcloud.CAKeyFile))
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: devcloud.ClientCommonName},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Leaf, &key.PublicKey, ca.PrivateKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return c, k
}
