package k8sinventoryreceiver

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	kschema "github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver/internal/metadatatest"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRD installs a namespaced CRD that accepts any spec (as many real CRDs'
// schemas do for parts of their objects), waits until it is established and removes it
// when the test ends.
func installCRD(t *testing.T, dyn dynamic.Interface, group, kind, plural string, versions ...string) {
	t.Helper()
	var vs []any
	for i, v := range versions {
		vs = append(vs, map[string]any{
			"name": v, "served": true, "storage": i == 0,
			"schema": map[string]any{"openAPIV3Schema": map[string]any{
				"type": "object", "x-kubernetes-preserve-unknown-fields": true,
			}},
		})
	}
	name := plural + "." + group
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"group": group, "scope": "Namespaced", "versions": vs,
			"names": map[string]any{"kind": kind, "plural": plural, "singular": strings.ToLower(kind), "listKind": kind + "List"},
		},
	}}
	_, err := dyn.Resource(crdGVR).Create(t.Context(), crd, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		err := dyn.Resource(crdGVR).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting CRD %s: %v", name, err)
		}
		// Later tests must not see it half-deleted. The apiserver first deletes every
		// custom resource of the CRD, which on a loaded machine takes a while.
		require.Eventually(t, func() bool {
			_, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, 4*waitFor, tick)
	})
	require.Eventually(t, func() bool {
		got, err := dyn.Resource(crdGVR).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			m := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true
			}
		}
		return false
	}, waitFor, tick)
}

func authorizationPolicy(ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     spec,
	}}
}

func TestAuthorizationPoliciesAppearAtRunTime(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	ctx := t.Context()
	dyn, err := dynamic.NewForConfig(env.RestConfig())
	require.NoError(t, err)

	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	rc, _ := isolatedConfig(t, env)
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces.Include = []string{ns}
	sink := &consumertest.LogsSink{}
	r := testReceiverWith(t, cfg, rc, sink, metadatatest.NewSettings(tt))
	require.NoError(t, r.Start(ctx, &testutil.StatusHost{}))
	first := waitRecord(t, sink, "snapshot_complete", is(kschema.EventInventorySnapshotComplete, ""))
	assert.Equal(t, false, first.attrs[kschema.AttrIntegrationArgoRollouts])

	// The Istio API is installed while the receiver runs: it discovers it and starts watching.
	installCRD(t, dyn, "security.istio.io", "AuthorizationPolicy", "authorizationpolicies", "v1", "v1beta1")
	aps := dyn.Resource(schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}).Namespace(ns)
	_, err = aps.Create(ctx, authorizationPolicy(ns, "allow-get", map[string]any{
		"selector": map[string]any{"matchLabels": map[string]any{"app": "api"}},
		"action":   "ALLOW",
		"rules":    []any{map[string]any{"to": []any{map[string]any{"operation": map[string]any{"methods": []any{"GET"}}}}}},
	}), metav1.CreateOptions{})
	require.NoError(t, err)
	ap := waitRecord(t, sink, "authorization policy", is(kschema.EventInventoryAuthorizationPolicy, kschema.ActionCreate, attr(kschema.AttrPolicyName, "allow-get")))
	assert.Equal(t, "security.istio.io/v1", ap.str(kschema.AttrPolicyAPIVersion))
	assert.Equal(t, "ALLOW", ap.body.(map[string]any)["spec"].(map[string]any)["action"])

	// An object the CRD accepts but that is not a valid AuthorizationPolicy is skipped
	// (logged and counted); the next one still goes through.
	_, err = aps.Create(ctx, authorizationPolicy(ns, "broken", map[string]any{"rules": "everything"}), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = aps.Create(ctx, authorizationPolicy(ns, "deny-all", map[string]any{"action": "DENY"}), metav1.CreateOptions{})
	require.NoError(t, err)
	waitRecord(t, sink, "the policy after the broken one", is(kschema.EventInventoryAuthorizationPolicy, kschema.ActionCreate, attr(kschema.AttrPolicyName, "deny-all")))
	assert.Empty(t, find(records(sink), attr(kschema.AttrPolicyName, "broken")))
	metadatatest.AssertEqualK8sInventoryObjectsInvalid(t, tt, []metricdata.DataPoint[int64]{{
		Attributes: attribute.NewSet(attribute.String("resource", "authorizationpolicies.v1.security.istio.io")),
		Value:      1,
	}}, metricdatatest.IgnoreTimestamp())

	// Updates and deletes.
	_, err = aps.Patch(ctx, "allow-get", types.MergePatchType, []byte(`{"spec":{"action":"DENY"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	updated := waitRecord(t, sink, "authorization policy update", is(kschema.EventInventoryAuthorizationPolicy, kschema.ActionUpdate, attr(kschema.AttrPolicyName, "allow-get")))
	assert.Equal(t, "DENY", updated.body.(map[string]any)["spec"].(map[string]any)["action"])
	require.NoError(t, aps.Delete(ctx, "allow-get", metav1.DeleteOptions{}))
	waitRecord(t, sink, "authorization policy delete", is(kschema.EventInventoryAuthorizationPolicy, kschema.ActionDelete, attr(kschema.AttrPolicyName, "allow-get")))

	// Integration presence follows CRDs: a new snapshot_complete reports Argo Rollouts.
	installCRD(t, dyn, "argoproj.io", "Rollout", "rollouts", "v1alpha1")
	flags := waitRecord(t, sink, "snapshot_complete with argo rollouts", is(kschema.EventInventorySnapshotComplete, "", func(r rec) bool {
		return r.attrs[kschema.AttrIntegrationArgoRollouts] == true
	}))
	assert.Equal(t, false, flags.attrs[kschema.AttrIntegrationFlux])
}
