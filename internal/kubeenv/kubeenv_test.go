package kubeenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { Main(m) }

const (
	waitFor = 20 * time.Second
	tick    = 20 * time.Millisecond
)

func clientset(t *testing.T, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return cs
}

func TestWrapperGoMod(t *testing.T) {
	upstream := "module k8s.io/kubernetes\n\ngo 1.26.0\n\nrequire (\n\tk8s.io/api v0.0.0\n)\n\n" +
		"replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tk8s.io/kubectl => ./staging/src/k8s.io/kubectl\n)\n"
	got, err := wrapperGoMod(upstream)
	require.NoError(t, err)
	v := "v0." + strings.TrimPrefix(KubernetesVersion, "v1.")
	assert.Equal(t, "module kubeenv/kube\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes "+KubernetesVersion+"\n\nreplace (\n"+
		"\tk8s.io/api => k8s.io/api "+v+"\n\tk8s.io/kubectl => k8s.io/kubectl "+v+"\n)\n", got)

	_, err = wrapperGoMod("module k8s.io/kubernetes\n\ngo 1.26.0\n")
	assert.Error(t, err)
}

func TestKubeconfigAndVersion(t *testing.T) {
	env := Shared(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig())
	require.NoError(t, err)
	v, err := clientset(t, cfg).Discovery().ServerVersion()
	require.NoError(t, err)
	assert.Equal(t, KubernetesVersion, v.GitVersion, "version ldflags are missing from the build")
}

func TestDeploymentGetsReplicaSetAndPods(t *testing.T) {
	env := Shared(t)
	cs := clientset(t, env.RestConfig())
	ns := env.Namespace(t)
	ctx := t.Context()

	labels := map[string]string{"app": "web"}
	dep, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		require.NoError(c, err)
		require.Len(c, rss.Items, 1)
		assert.Equal(c, dep.UID, rss.Items[0].OwnerReferences[0].UID)
		// Pods go through the ServiceAccount admission plugin, which the controller-manager
		// makes pass by creating the namespace's default ServiceAccount.
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(c, err)
		assert.Len(c, pods.Items, 2)
	}, waitFor, tick)
}

func TestCRDBecomesEstablished(t *testing.T) {
	env := Shared(t)
	dyn, err := dynamic.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	ctx := t.Context()

	group := fmt.Sprintf("t%d.kubeenv.test", time.Now().UnixNano()) // CRDs are cluster-scoped
	crdRes := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "widgets." + group},
		"spec": map[string]any{
			"group": group,
			"scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{"spec": map[string]any{
						"type":       "object",
						"properties": map[string]any{"size": map[string]any{"type": "integer", "minimum": int64(1)}},
					}},
				}},
			}},
		},
	}}
	_, err = dyn.Resource(crdRes).Create(ctx, crd, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, dyn.Resource(crdRes).Delete(context.Background(), "widgets."+group, metav1.DeleteOptions{}))
	})

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := dyn.Resource(crdRes).Get(ctx, "widgets."+group, metav1.GetOptions{})
		require.NoError(c, err)
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		established := false
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			established = established || (m["type"] == "Established" && m["status"] == "True")
		}
		assert.True(c, established, "conditions: %v", conds)
	}, waitFor, tick)

	ns := env.Namespace(t)
	widgets := dyn.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}).Namespace(ns)
	widget := func(size int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": group + "/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w" + strconv.FormatInt(size, 10)},
			"spec":     map[string]any{"size": size},
		}}
	}
	// Discovery of a just-established CRD can lag by a moment; the first create may 404.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := widgets.Create(ctx, widget(3), metav1.CreateOptions{})
		assert.NoError(c, err)
	}, waitFor, tick)
	_, err = widgets.Create(ctx, widget(0), metav1.CreateOptions{})
	require.True(t, apierrors.IsInvalid(err), "schema minimum not enforced: %v", err)
}

func TestRBACRestrictedServiceAccount(t *testing.T) {
	env := Shared(t)
	admin := clientset(t, env.RestConfig())
	ns := env.Namespace(t)
	ctx := t.Context()

	_, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader-reads-pods"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: ns}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// A real token signed with the environment's ServiceAccount key, not impersonation.
	tok, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	require.NoError(t, err)

	cfg := env.RestConfig()
	cfg.BearerToken = tok.Status.Token
	reader := clientset(t, cfg)

	_, err = reader.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	_, err = reader.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "listing secrets: %v", err)
	_, err = reader.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "listing pods in another namespace: %v", err)
}

// TestAPIServerRestart uses an environment of its own: the outage would break tests sharing
// the package's server. It also covers running without the controller-manager and
// stopping an environment through its pid files, as kubeenv down does.
func TestAPIServerRestart(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	env := New(t, Options{Dir: dir, NoControllerManager: true})
	t.Logf("started in %v", time.Since(start))

	cs := clientset(t, env.RestConfig())
	ctx := t.Context()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "restart"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	// ServiceAccount admission is off without the controller-manager, so no SA is needed.
	_, err = cs.CoreV1().Pods(ns.Name).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	seen := make(chan string, 16)
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns.Name))
	_, err = factory.Core().V1().ConfigMaps().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if cm, ok := obj.(*corev1.ConfigMap); ok && strings.HasPrefix(cm.Name, "cm-") {
				seen <- cm.Name
			}
		},
	})
	require.NoError(t, err)
	stop := make(chan struct{})
	stopInformers := sync.OnceFunc(func() {
		close(stop) // Shutdown waits for the informers, which stop only when stop is closed
		factory.Shutdown()
	})
	defer stopInformers()
	factory.Start(stop)
	require.True(t, cache.WaitForCacheSync(stop, factory.Core().V1().ConfigMaps().Informer().HasSynced))

	createCM := func(name string) error {
		_, err := cs.CoreV1().ConfigMaps(ns.Name).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	}
	require.NoError(t, createCM("cm-before"))
	requireSeen(t, seen, "cm-before")

	stopped := time.Now()
	env.StopAPIServer()
	t.Logf("apiserver stopped in %v", time.Since(stopped))
	require.Error(t, createCM("cm-during"), "the apiserver still answers")

	restarted := time.Now()
	require.NoError(t, env.StartAPIServer(ctx))
	t.Logf("apiserver ready again in %v", time.Since(restarted))
	_, err = cs.CoreV1().Pods(ns.Name).Get(ctx, "p", metav1.GetOptions{})
	require.NoError(t, err, "state kept in etcd")
	require.NoError(t, createCM("cm-after"))
	requireSeen(t, seen, "cm-after") // the informer re-established its watch on its own

	// An open watch would hold the apiserver's graceful shutdown for the whole grace period.
	stopInformers()
	pids := map[string]int{}
	for _, name := range []string{binEtcd, binAPIServer} {
		data, err := os.ReadFile(pidFile(dir, name))
		require.NoError(t, err)
		pids[name], err = strconv.Atoi(strings.TrimSpace(string(data)))
		require.NoError(t, err)
	}
	require.NoError(t, StopDir(dir))
	for name, pid := range pids {
		_, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		require.Error(t, err, "%s (pid %d) still running after StopDir", name, pid)
		assert.NoFileExists(t, pidFile(dir, name))
	}
}

func requireSeen(t *testing.T, seen <-chan string, want string) {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case got := <-seen:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("informer did not deliver %s", want)
		}
	}
}

func TestEnsureBinariesWaitsForConcurrentBuild(t *testing.T) {
	t.Setenv("KUBEENV_CACHE", t.TempDir())
	t.Setenv("PATH", "") // a build attempt fails fast: no go tool
	out, err := AssetsDir()
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	defer lock.Close()
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)) // "another process is building"
	st, err := lock.Stat()
	require.NoError(t, err)
	inode := ":" + strconv.FormatUint(st.Sys().(*syscall.Stat_t).Ino, 10) + " "

	type result struct {
		dir string
		err error
	}
	done := make(chan result, 1)
	go func() {
		dir, err := EnsureBinaries(context.Background(), nil)
		done <- result{dir, err}
	}()
	// /proc/locks marks a process blocked on a lock with "->".
	require.Eventually(t, func() bool {
		locks, err := os.ReadFile("/proc/locks")
		require.NoError(t, err)
		for _, l := range strings.Split(string(locks), "\n") {
			if strings.Contains(l, "-> FLOCK") && strings.Contains(l, inode) {
				return true
			}
		}
		return false
	}, waitFor, tick)

	require.NoError(t, os.MkdirAll(out, 0o755))
	for _, b := range allBinaries {
		require.NoError(t, os.WriteFile(filepath.Join(out, b), []byte("#!/bin/sh\n"), 0o755))
	}
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_UN))
	select {
	case r := <-done:
		require.NoError(t, r.err, "it built instead of using the other process's binaries")
		assert.Equal(t, out, r.dir)
	case <-time.After(waitFor):
		t.Fatal("EnsureBinaries still waits after the lock was released")
	}
}

func TestStartReportsWhyAProcessDied(t *testing.T) {
	assets := t.TempDir()
	for _, b := range allBinaries {
		require.NoError(t, os.WriteFile(filepath.Join(assets, b), []byte("#!/bin/sh\necho \"cannot start: $1\"\nexit 3\n"), 0o755))
	}
	_, err := Start(t.Context(), Options{AssetsDir: assets})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "etcd exited: exit status 3")
	assert.Contains(t, err.Error(), "cannot start: --name=kubeenv", "the error should carry the end of the log")
}
