package toolstest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"
	"github.com/kestrelai/otelcol-kestrel/config/crd"
	"github.com/kestrelai/otelcol-kestrel/config/rbac"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
)

// Changes is the ServiceAccount the change tools impersonate (config/rbac/changes.yaml).
const Changes = "kestrel-ai-changes"

// Approver is the ClusterRole of the people who decide ChangeRequests.
const Approver = "kestrel-ai-changerequest-approver"

// installCRDs is shared by every test of the process: the CRD and its admission policy are
// cluster-wide and the same for all.
var installCRDs sync.Mutex

// InstallCRDs server-side applies the shipped CRD and admission policy (config/crd) and
// waits until ChangeRequests are served.
func InstallCRDs(tb testing.TB, env *kubeenv.Env) {
	tb.Helper()
	installCRDs.Lock()
	defer installCRDs.Unlock()
	Apply(tb, env.RestConfig(), crd.ChangeRequests, nil)
	WaitServed(tb, env, v1alpha1.Group+"/"+v1alpha1.Version, "ChangeRequest")
	Apply(tb, env.RestConfig(), crd.Admission, nil)
}

// WaitServed waits until discovery lists kind in groupVersion.
func WaitServed(tb testing.TB, env *kubeenv.Env, groupVersion, kind string) {
	tb.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(env.RestConfig())
	require.NoError(tb, err)
	require.Eventually(tb, func() bool {
		l, err := dc.ServerResourcesForGroupVersion(groupVersion)
		if err != nil {
			return false
		}
		for _, r := range l.APIResources {
			if r.Kind == kind {
				return true
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "%s %s never served", groupVersion, kind)
}

// SetupChanges installs the CRD and the write profile (config/rbac/changes.yaml) for the
// collector ServiceAccount of Setup in namespace ns: the change identity and its roles, and
// the approver role (config/rbac/approver.yaml) with its example binding for ApproverUser,
// the cluster-wide names suffixed by ns so that tests do not share them.
func SetupChanges(tb testing.TB, env *kubeenv.Env, ns string) {
	tb.Helper()
	InstallCRDs(tb, env)
	localize := func(o *unstructured.Unstructured) { Localize(o, ns) }
	Apply(tb, env.RestConfig(), rbac.Changes, localize)
	Apply(tb, env.RestConfig(), rbac.Approver, localize)
	changes := "system:serviceaccount:" + ns + ":" + Changes
	WaitAllowed(tb, env, "system:serviceaccount:"+ns+":"+Collector, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "impersonate", Resource: "serviceaccounts", Name: Changes})
	WaitAllowed(tb, env, changes, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: v1alpha1.Group, Resource: v1alpha1.Resource})
	WaitAllowed(tb, env, changes, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "networking.k8s.io", Resource: "networkpolicies"})
	WaitAllowed(tb, env, ApproverUser, authorizationv1.ResourceAttributes{Namespace: ns, Verb: v1alpha1.ApproveVerb, Group: v1alpha1.Group, Resource: v1alpha1.Resource})
}

// ApproverUser is the user the example binding of config/rbac/approver.yaml lets decide.
const ApproverUser = "jane@example.com"

// Localize moves an object of the shipped manifests (written for namespace "kestrel" and a
// collector ServiceAccount "otelcol-kestrel") into namespace ns of a test.
func Localize(o *unstructured.Unstructured, ns string) {
	if o.GetNamespace() != "" {
		o.SetNamespace(ns)
	}
	switch o.GetKind() {
	case "ClusterRole", "ClusterRoleBinding":
		o.SetName(o.GetName() + "-" + ns)
	}
	if ref, ok := o.Object["roleRef"].(map[string]any); ok && ref["kind"] == "ClusterRole" {
		ref["name"] = ref["name"].(string) + "-" + ns
	}
	if subjects, ok := o.Object["subjects"].([]any); ok {
		for _, s := range subjects {
			m := s.(map[string]any)
			if m["kind"] == "ServiceAccount" {
				m["namespace"] = ns
				if m["name"] == "otelcol-kestrel" {
					m["name"] = Collector
				}
			}
		}
	}
}

// Apply server-side applies every object of a multi-document YAML text as its owner would
// (force), after edit; cluster-scoped objects are deleted when the test ends.
func Apply(tb testing.TB, rc *rest.Config, manifests []byte, edit func(*unstructured.Unstructured)) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(rc)
	require.NoError(tb, err)
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	require.NoError(tb, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		var o unstructured.Unstructured
		err := dec.Decode(&o.Object)
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(tb, err)
		if len(o.Object) == 0 {
			continue
		}
		if edit != nil {
			edit(&o)
		}
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		require.NoError(tb, err, gvk.String())
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if o.GetNamespace() != "" {
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		_, err = ri.Apply(ctx, o.GetName(), &o, metav1.ApplyOptions{FieldManager: "toolstest", Force: true})
		require.NoError(tb, err, "applying %s %s", gvk.Kind, o.GetName())
		if o.GetNamespace() == "" && !strings.HasSuffix(gvk.Group, "apiextensions.k8s.io") && !strings.HasPrefix(gvk.Group, "admissionregistration") {
			name := o.GetName()
			tb.Cleanup(func() { _ = ri.Delete(context.Background(), name, metav1.DeleteOptions{}) })
		}
	}
}

// Grant binds a ClusterRole with rules to user in namespace ns (a RoleBinding), for the test.
func Grant(tb testing.TB, env *kubeenv.Env, ns, user, role string, rules []rbacv1.PolicyRule) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(tb, err)
	if rules != nil {
		_, err = cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: rules}, metav1.CreateOptions{})
		require.NoError(tb, err)
		tb.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), role, metav1.DeleteOptions{}) })
	}
	kind, name := rbacv1.UserKind, user
	subject := rbacv1.Subject{Kind: kind, APIGroup: rbacv1.GroupName, Name: name}
	if sa, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		saNS, saName, _ := strings.Cut(sa, ":")
		subject = rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: saNS, Name: saName}
	}
	binding := strings.NewReplacer(":", "-", "@", "-").Replace(role + "-" + user)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{subject},
	}, metav1.CreateOptions{})
	require.NoError(tb, err)
	cr, err := cs.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{})
	require.NoError(tb, err)
	r := cr.Rules[0]
	WaitAllowed(tb, env, user, authorizationv1.ResourceAttributes{Namespace: ns, Verb: r.Verbs[0], Group: r.APIGroups[0], Resource: r.Resources[0]})
}

// WaitAllowed waits until the apiserver allows user what: its authorizer learns of RBAC
// bindings through informers, a moment after they are written.
func WaitAllowed(tb testing.TB, env *kubeenv.Env, user string, what authorizationv1.ResourceAttributes) {
	tb.Helper()
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(tb, err)
	require.Eventually(tb, func() bool {
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups(user), ResourceAttributes: &what}}, metav1.CreateOptions{})
		return err == nil && sar.Status.Allowed
	}, 20*time.Second, 50*time.Millisecond, "%s is never allowed to %s %s", user, what.Verb, what.Resource)
}

// groups are the groups the apiserver gives user (ServiceAccounts belong to theirs).
func groups(user string) []string {
	if sa, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		ns, _, _ := strings.Cut(sa, ":")
		return []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	return []string{"system:authenticated"}
}

// As returns the apiserver's admin configuration impersonating user.
func As(env *kubeenv.Env, user string) *rest.Config {
	rc := env.RestConfig()
	rc.Impersonate = rest.ImpersonationConfig{UserName: user}
	return rc
}
