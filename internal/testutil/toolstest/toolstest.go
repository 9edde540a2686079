// Package toolstest sets up, in a real kube-apiserver, the identities the kestrel_tools
// receiver runs with: the cloud's read-only ServiceAccount with ordinary RBAC, and a
// collector ServiceAccount whose only right is to impersonate that one ServiceAccount (by
// resourceNames), with a kubeconfig for it.
package toolstest // import "github.com/kestrelai/otelcol-kestrel/internal/testutil/toolstest"

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
)

const (
	// Reader is the ServiceAccount the cloud's reads impersonate.
	Reader = "kestrel-ai-reader"
	// Collector is the collector's own ServiceAccount.
	Collector = "kestrel-collector"
)

// ReaderRules is what the reader may do in the tests: read workloads, pods and their logs,
// events, services, ConfigMaps and Secrets (so that Secret redaction, not RBAC, is what
// keeps Secret values in the cluster). Nodes are left out: reading them is the denied read.
var ReaderRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods", "pods/log", "events", "services", "configmaps", "secrets", "namespaces", "serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets", "statefulsets", "daemonsets"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"get", "list", "watch"}},
}

// Setup creates, in namespace ns, the reader ServiceAccount bound cluster-wide to
// ReaderRules and the collector ServiceAccount with a Role that allows only
// `impersonate` on serviceaccounts named Reader, and writes a kubeconfig that authenticates
// as the collector. It returns that kubeconfig's path. The cluster-scoped objects are
// deleted when the test ends.
func Setup(tb testing.TB, env *kubeenv.Env, ns string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(tb, err)
	for _, name := range []string{Reader, Collector} {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(tb, err)
	}
	role := ns + "-" + Reader
	_, err = cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: ReaderRules}, metav1.CreateOptions{})
	require.NoError(tb, err)
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: Reader, Namespace: ns}},
	}, metav1.CreateOptions{})
	require.NoError(tb, err)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = cs.RbacV1().ClusterRoleBindings().Delete(ctx, role, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(ctx, role, metav1.DeleteOptions{})
	})
	// The collector's one right: impersonate the reader, by name, in its namespace.
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "kestrel-impersonate-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"serviceaccounts"},
			Verbs: []string{"impersonate"}, ResourceNames: []string{Reader}}},
	}, metav1.CreateOptions{})
	require.NoError(tb, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kestrel-impersonate-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "kestrel-impersonate-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: Collector, Namespace: ns}},
	}, metav1.CreateOptions{})
	require.NoError(tb, err)
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, Collector, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	require.NoError(tb, err)
	rc := env.RestConfig()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubeenv"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
	cfg.AuthInfos[Collector] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["collector"] = &clientcmdapi.Context{Cluster: "kubeenv", AuthInfo: Collector, Namespace: ns}
	cfg.CurrentContext = "collector"
	path := filepath.Join(tb.TempDir(), "collector.kubeconfig")
	require.NoError(tb, clientcmd.WriteToFile(*cfg, path))
	return path
}
