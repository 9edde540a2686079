package k8sriskreceiver

import (
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/metadata"
)

// Checks whose data cannot be read report skip, once for the cluster, and never pass; the
// others go on.
func TestChecksWithoutTheirDataAreSkipped(t *testing.T) {
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	ctx := context.Background()
	ns := env.Namespace(t)
	setUpNamespace(t, cs, ns, namespaceBasics{})
	createDeployment(t, cs, goodDeployment(ns, "privileged", func(d *appsv1.Deployment) {
		container(d).SecurityContext.Privileged = ptr.To(true)
		container(d).SecurityContext.AllowPrivilegeEscalation = nil
	}))

	// A user who may read everything the receiver reads but RBAC objects and
	// PodDisruptionBudgets.
	user := ns + "-limited"
	_, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{"", "apps", "batch", "networking.k8s.io", "autoscaling", "apiextensions.k8s.io"},
		Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"},
	}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), user, metav1.DeleteOptions{}) })
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), user, metav1.DeleteOptions{})
	})
	rc := isolatedConfig(t, env)
	rc.Impersonate.UserName = user

	sink := &consumertest.LogsSink{}
	host := &testutil.StatusHost{}
	startReceiverOn(t, testConfig(ns), rc, sink, receivertest.NewNopSettings(metadata.Type), host)
	st := state(waitAssessments(t, sink, 1))

	var skipped []string
	for _, r := range st {
		if r.object.Kind == "Cluster" {
			assert.Equal(t, "skip", r.result, r.String())
			skipped = append(skipped, r.check)
		}
	}
	sort.Strings(skipped)
	assert.Equal(t, []string{
		"reliability.pod-disruption-budget",
		"security.chain-cross-namespace-ingress-unprotected",
		"security.chain-external-to-cluster-takeover",
		"security.chain-unrestricted-egress-to-control-plane",
		"security.rbac-cluster-admin-binding",
		"security.rbac-create-pods",
		"security.rbac-escalation",
		"security.rbac-pod-exec",
		"security.rbac-secrets-access",
		"security.rbac-wildcard",
	}, skipped)
	pdb := findOne(t, st, "Cluster//", "reliability.pod-disruption-budget")
	assert.Contains(t, pdb.message, "poddisruptionbudgets.policy")
	assert.Contains(t, pdb.message, "forbidden")
	// What can be read is still assessed.
	findOne(t, st, "Deployment/"+ns+"/privileged", "security.privileged-container")
	for _, r := range st {
		if r.check == "reliability.pod-disruption-budget" {
			assert.Equal(t, "Cluster", r.object.Kind)
		}
	}
	host.WaitStatus(t, componentstatus.StatusRecoverableError, "rolebindings.rbac.authorization.k8s.io")
	require.NotEmpty(t, host.Statuses())
}
