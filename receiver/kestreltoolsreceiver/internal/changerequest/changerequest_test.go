package changerequest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"
)

const policy = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: shop}\nspec: {podSelector: {}}\n"

func TestName(t *testing.T) {
	a := Name(v1alpha1.OriginApply, "req-1")
	assert.Equal(t, a, Name(v1alpha1.OriginApply, "req-1"), "the same request finds the same ChangeRequest")
	assert.NotEqual(t, a, Name(v1alpha1.OriginApply, "req-2"))
	assert.True(t, strings.HasPrefix(Name(v1alpha1.OriginPolicyPush, "p"), "policy-"))
	assert.Len(t, a, len("apply-")+16)
}

func TestTarget(t *testing.T) {
	assert.Equal(t, "NetworkPolicy shop/web", target([]string{"networking.k8s.io/v1 NetworkPolicy shop/web"}))
	assert.Equal(t, "2 objects: NetworkPolicy shop/a, PriorityClass high", target([]string{"networking.k8s.io/v1 NetworkPolicy shop/a", "scheduling.k8s.io/v1 PriorityClass high"}))
	long := make([]string, 40)
	for i := range long {
		long[i] = "v1 ConfigMap shop/a-rather-long-name"
	}
	assert.Len(t, target(long), 256)
}

func TestAutoApproved(t *testing.T) {
	c := &Controller{cfg: Config{Limits: manifest.DefaultLimits, AutoApprove: []Rule{
		{Kinds: []string{"NetworkPolicy"}, Namespaces: []string{"shop"}},
		{Kinds: []string{"cilium.io/CiliumNetworkPolicy"}},
	}}}
	cr := func(yamls ...string) *v1alpha1.ChangeRequest {
		r := &v1alpha1.ChangeRequest{}
		for _, y := range yamls {
			r.Spec.Manifests = append(r.Spec.Manifests, v1alpha1.Manifest{YAML: y})
		}
		return r
	}
	cnp := "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x, namespace: any}\n"
	assert.True(t, c.autoApproved(cr(policy)))
	assert.True(t, c.autoApproved(cr(policy, cnp)))
	assert.False(t, c.autoApproved(cr(strings.Replace(policy, "shop", "prod", 1))), "another namespace")
	assert.False(t, c.autoApproved(cr(policy, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: shop}\n")), "every object must be covered")
	assert.False(t, (&Controller{cfg: Config{Limits: manifest.DefaultLimits}}).autoApproved(cr(policy)), "off by default")
}

func TestFinal(t *testing.T) {
	base := v1alpha1.ChangeRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "kestrel", Name: "apply-1"},
		Spec: v1alpha1.ChangeRequestSpec{Origin: v1alpha1.OriginApply, RequestID: "r1", DecidedBy: "jane",
			ExpiresAt: metav1.NewTime(time.Unix(0, 0)),
			Manifests: []v1alpha1.Manifest{{ID: "m1", Object: "v1 A ns/a"}, {ID: "m1", Object: "v1 B ns/b"}, {ID: "m2", Object: "v1 C ns/c"}}}}

	applied := base
	applied.Status = v1alpha1.ChangeRequestStatus{State: v1alpha1.StateApplied, Results: []v1alpha1.Result{{StatusCode: 200}, {StatusCode: 200}, {StatusCode: 200}}}
	resp := Final(&applied).(*cloudv1.YamlApplyResponse)
	assert.Equal(t, "r1", resp.GetRequestId())
	assert.False(t, resp.GetPending())
	assert.Equal(t, "kestrel/apply-1", resp.GetChangeRequest())
	require.Len(t, resp.GetResults(), 2, "one result per manifest_id, as the cloud sent them")
	assert.Equal(t, "applied v1 A ns/a; applied v1 B ns/b", resp.GetResults()[0].GetAppliedResourceInfo())
	assert.Empty(t, resp.GetGlobalErrorMessage())

	failed := base
	failed.Status = v1alpha1.ChangeRequestStatus{State: v1alpha1.StateFailed, Results: []v1alpha1.Result{
		{StatusCode: 200}, {StatusCode: http.StatusConflict, Message: "Apply failed with 1 conflict"}, {StatusCode: http.StatusFailedDependency, Message: "not applied"}}}
	resp = Final(&failed).(*cloudv1.YamlApplyResponse)
	assert.False(t, resp.GetResults()[0].GetSuccess())
	assert.Equal(t, int32(http.StatusConflict), resp.GetResults()[0].GetStatusCode())
	assert.Equal(t, int32(http.StatusFailedDependency), resp.GetResults()[1].GetStatusCode())
	assert.Contains(t, resp.GetGlobalErrorMessage(), "was approved but applying failed: Apply failed with 1 conflict")

	for state, code := range map[v1alpha1.State]int32{v1alpha1.StateRejected: http.StatusForbidden, v1alpha1.StateExpired: http.StatusGone} {
		cr := base
		cr.Status = v1alpha1.ChangeRequestStatus{State: state, Message: "ended"}
		resp := Final(&cr).(*cloudv1.YamlApplyResponse)
		assert.Equal(t, "ChangeRequest kestrel/apply-1 ended", resp.GetGlobalErrorMessage())
		for _, r := range resp.GetResults() {
			assert.Equal(t, code, r.GetStatusCode())
			assert.False(t, r.GetSuccess())
		}
	}

	push := base
	push.Spec.Origin, push.Spec.PolicyID = v1alpha1.OriginPolicyPush, "p1"
	push.Spec.Manifests = []v1alpha1.Manifest{{YAML: policy}}
	push.Status.State = v1alpha1.StateApplied
	ack := Final(&push).(*cloudv1.NetworkPoliciesWithErrors)
	require.Len(t, ack.GetPolicies(), 1)
	assert.Equal(t, "p1", ack.GetPolicies()[0].GetPolicyId())
	assert.Equal(t, policy, ack.GetPolicies()[0].GetNetworkPolicy())
	assert.Empty(t, ack.GetPolicies()[0].GetErrorMessage())
	push.Status = v1alpha1.ChangeRequestStatus{State: v1alpha1.StateRejected, Message: "rejected by jane; nothing was applied"}
	assert.Contains(t, Final(&push).(*cloudv1.NetworkPoliciesWithErrors).GetPolicies()[0].GetErrorMessage(), "rejected by jane")
}

func TestCheckRequests(t *testing.T) {
	l := manifest.DefaultLimits
	for _, tc := range []struct {
		req  *cloudv1.YamlApplyRequest
		want string
	}{
		{&cloudv1.YamlApplyRequest{RequestId: "r"}, "no yaml_manifests"},
		{&cloudv1.YamlApplyRequest{YamlManifests: []*cloudv1.YamlManifest{{}}}, "request_id is empty"},
		{&cloudv1.YamlApplyRequest{RequestId: "r", YamlManifests: make([]*cloudv1.YamlManifest, 33)}, "33 manifests in one request"},
		{&cloudv1.YamlApplyRequest{RequestId: "r", YamlManifests: []*cloudv1.YamlManifest{{ManifestId: "big", YamlContent: strings.Repeat("#", 2<<20)}}}, "manifest big is 2097152 bytes"},
	} {
		code, msg := CheckApply(tc.req, l)
		assert.NotZero(t, code)
		assert.Contains(t, msg, tc.want)
	}
	code, _ := CheckApply(&cloudv1.YamlApplyRequest{RequestId: "r", YamlManifests: []*cloudv1.YamlManifest{{YamlContent: policy}}}, l)
	assert.Zero(t, code)

	for push, want := range map[*cloudv1.NetworkPolicyWithError]string{
		{NetworkPolicy: policy}: "policy_id is empty",
		{PolicyId: "p", NetworkPolicy: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: y}\n"}: "exactly one networking.k8s.io/v1 NetworkPolicy",
		{PolicyId: "p", NetworkPolicy: policy + "---\n" + policy}:                                              "exactly one",
		{PolicyId: "p", NetworkPolicy: strings.Replace(policy, ", namespace: shop", "", 1)}:                    "must name its metadata.namespace",
		{PolicyId: "p", NetworkPolicy: "a: &a [*a]"}:                                                           "refused",
	} {
		code, msg := CheckPush(push, l)
		assert.Equal(t, int32(http.StatusBadRequest), code, msg)
		assert.Contains(t, msg, want)
	}
	code, msg := CheckPush(&cloudv1.NetworkPolicyWithError{PolicyId: "p", NetworkPolicy: policy}, l)
	assert.Zero(t, code, msg)
}

func FuzzCheckPush(f *testing.F) {
	f.Add("p", policy)
	f.Add("", "a: &a [*a]")
	f.Add("p", policy+"---\n"+policy)
	small := manifest.Limits{MaxBytes: 64 << 10, MaxDocuments: 8, MaxNodes: 10_000}
	f.Fuzz(func(t *testing.T, id, text string) {
		code, msg := CheckPush(&cloudv1.NetworkPolicyWithError{PolicyId: id, NetworkPolicy: text}, small)
		if code == 0 {
			require.Empty(t, msg)
			objs, err := manifest.Decode(text, small)
			require.NoError(t, err)
			require.Len(t, objs, 1)
			require.Equal(t, "NetworkPolicy", objs[0].GetKind())
			require.NotEmpty(t, objs[0].GetNamespace())
			return
		}
		require.NotEmpty(t, msg)
		require.GreaterOrEqual(t, code, int32(400))
	})
}

func FuzzCheckApply(f *testing.F) {
	f.Add("r", "m", policy, 1)
	f.Add("", "", "", 0)
	f.Add("r", "m", "x", 40)
	small := manifest.Limits{MaxBytes: 64 << 10, MaxDocuments: 8, MaxNodes: 10_000}
	f.Fuzz(func(t *testing.T, id, manifestID, text string, n int) {
		n = min(max(n, 0), 64)
		req := &cloudv1.YamlApplyRequest{RequestId: id}
		for range n {
			req.YamlManifests = append(req.YamlManifests, &cloudv1.YamlManifest{ManifestId: manifestID, YamlContent: text})
		}
		code, msg := CheckApply(req, small)
		if code == 0 {
			require.NotEmpty(t, id)
			require.LessOrEqual(t, n, maxObjects)
			require.Positive(t, n)
			return
		}
		require.NotEmpty(t, msg)
	})
}
