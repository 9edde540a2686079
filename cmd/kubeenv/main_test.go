package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
)

func TestMain(m *testing.M) { kubeenv.Main(m) }

// runCmd runs the command line and returns its stdout and error; stderr goes to the log.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(args, &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Logf("stderr of %v:\n%s", args, stderr.String())
	}
	return stdout.String(), err
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// TestApplyDemo applies config/demo and config/demo/live (what make run applies) twice:
// the second run must succeed too, since make run re-applies to a cluster it reuses.
func TestApplyDemo(t *testing.T) {
	env := kubeenv.Shared(t)
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	ctx := t.Context()
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(t.Context(), "shop", metav1.DeleteOptions{})
		_ = cs.CoreV1().Namespaces().Delete(t.Context(), "kestrel", metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoleBindings().Delete(t.Context(), "kestrel-ai-reader-view", metav1.DeleteOptions{})
	})

	demo := filepath.Join("..", "..", "config", "demo")
	live := filepath.Join(demo, "live")
	before := time.Now().Truncate(time.Second)
	out, err := runCmd(t, "apply", "--kubeconfig", env.Kubeconfig(), "-f", demo, "-f", live)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Equal(t, "applied Namespace shop", lines[0], "namespaces go first")
	assert.ElementsMatch(t, []string{
		"applied Namespace shop",
		"applied Namespace kestrel",
		"applied ServiceAccount kestrel/kestrel-ai-reader",
		"applied ClusterRoleBinding kestrel-ai-reader-view",
		"applied Deployment shop/checkout",
		"applied Service shop/checkout",
		"applied StatefulSet shop/orders-db",
		"applied Service shop/orders-db",
		"applied NetworkPolicy shop/orders-db-from-checkout",
		"applied Event shop/orders-db-0.kestrel-demo",
	}, lines)

	dep, err := cs.AppsV1().Deployments("shop").Get(ctx, "checkout", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(2), *dep.Spec.Replicas)
	// The controller-manager adds its own (status) entry, in no fixed order.
	assert.True(t, slices.ContainsFunc(dep.ManagedFields, func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == "kubeenv" && f.Operation == metav1.ManagedFieldsOperationApply
	}), "server-side applied by kubeenv: %v", dep.ManagedFields)
	_, err = cs.AppsV1().StatefulSets("shop").Get(ctx, "orders-db", metav1.GetOptions{})
	require.NoError(t, err)
	_, err = cs.NetworkingV1().NetworkPolicies("shop").Get(ctx, "orders-db-from-checkout", metav1.GetOptions{})
	require.NoError(t, err)
	ev, err := cs.CoreV1().Events("shop").Get(ctx, "orders-db-0.kestrel-demo", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.EventTypeWarning, ev.Type)
	assert.False(t, ev.LastTimestamp.Time.Before(before), "the event is dated at apply time, got %v", ev.LastTimestamp)
	assert.Equal(t, ev.LastTimestamp, ev.FirstTimestamp)

	// Another manager changed replicas (kubectl scale); applying again restores the file's.
	// A patch, not an update: the controller-manager keeps changing the object, so an
	// update from the Get above could meet a conflict.
	_, err = cs.AppsV1().Deployments("shop").Patch(ctx, "checkout", types.MergePatchType,
		[]byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{FieldManager: "kubectl"})
	require.NoError(t, err)
	_, err = runCmd(t, "apply", "--kubeconfig", env.Kubeconfig(), "-f", demo, "-f", live)
	require.NoError(t, err)
	dep, err = cs.AppsV1().Deployments("shop").Get(ctx, "checkout", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(2), *dep.Spec.Replicas)
}

func TestApplyDefaultsAndErrors(t *testing.T) {
	env := kubeenv.Shared(t)
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	dir := t.TempDir()
	ns := "apply-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(t.Context(), ns, metav1.DeleteOptions{})
		_ = cs.CoreV1().ConfigMaps("default").Delete(t.Context(), "no-namespace", metav1.DeleteOptions{})
	})

	// The namespace comes after its ConfigMap and gets applied first; a ConfigMap without
	// a namespace lands in the kubeconfig's ("default"); an empty document is skipped.
	f := writeFile(t, dir, "objects.yaml", `apiVersion: v1
kind: ConfigMap
metadata: {name: inside, namespace: `+ns+`}
data: {k: v}
---
# nothing here
---
apiVersion: v1
kind: Namespace
metadata: {name: `+ns+`}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: no-namespace}
`)
	out, err := runCmd(t, "apply", "--kubeconfig", env.Kubeconfig(), "-f", f)
	require.NoError(t, err)
	assert.Equal(t, "applied Namespace "+ns+"\napplied ConfigMap "+ns+"/inside\napplied ConfigMap default/no-namespace\n", out)
	_, err = cs.CoreV1().ConfigMaps("default").Get(t.Context(), "no-namespace", metav1.GetOptions{})
	require.NoError(t, err)

	// Every object is tried: the bad ones are named with file and document, the good one applied.
	bad := writeFile(t, dir, "bad.yaml", `apiVersion: example.com/v1
kind: Gadget
metadata: {name: g}
---
apiVersion: v1
kind: Namespace
metadata: {name: x, namespace: default}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: still-applied, namespace: `+ns+`}
`)
	out, err = runCmd(t, "apply", "--kubeconfig", env.Kubeconfig(), "-f", bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), bad+"#1: Gadget g:")
	assert.Contains(t, err.Error(), bad+`#2: Namespace x is cluster-scoped but has metadata.namespace "default"`)
	assert.Equal(t, "applied ConfigMap "+ns+"/still-applied\n", out)
	_, err = cs.CoreV1().Namespaces().Get(t.Context(), "x", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "got %v", err)

	// Problems found while reading apply nothing.
	for name, tc := range map[string]struct {
		content string
		want    string
	}{
		"no-name.yaml": {"apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: default}\n", "#1: ConfigMap has no metadata.name"},
		"no-kind.yaml": {"apiVersion: v1\nmetadata: {name: a}\n", "#1: Object 'Kind' is missing"},
		"broken.yaml":  {"kind: [\n", "#1: "},
	} {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), name, tc.content)
			out, err := runCmd(t, "apply", "--kubeconfig", env.Kubeconfig(), "-f", p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), p+tc.want)
			assert.Empty(t, out)
		})
	}

	_, err = runCmd(t, "apply", "--kubeconfig", env.Kubeconfig(), "-f", t.TempDir())
	assert.ErrorContains(t, err, "no .yaml, .yml or .json files in")
}

func TestStatus(t *testing.T) {
	env := kubeenv.Shared(t)

	// The shared environment wrote pid files and a kubeconfig in its directory, as
	// "up --detach" does.
	out, err := runCmd(t, "status", "--dir", env.Dir())
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^etcd +running \(pid \d+\)$`, out)
	assert.Regexp(t, `(?m)^kube-apiserver +running \(pid \d+\)$`, out)
	assert.Regexp(t, `(?m)^kube-controller-manager +running \(pid \d+\)$`, out)
	assert.Contains(t, out, env.Host()+" ready")

	empty := t.TempDir()
	_, err = runCmd(t, "status", "--dir", empty)
	require.EqualError(t, err, "kubeenv: no environment runs in "+empty)

	// A pid file whose process is not that binary (crashed, pid reused) is not healthy.
	dead := t.TempDir()
	self := strconv.Itoa(os.Getpid())
	writeFile(t, dead, "etcd.pid", self+"\n")
	writeFile(t, dead, "kube-apiserver.pid", self+"\n")
	out, err = runCmd(t, "status", "--dir", dead)
	require.EqualError(t, err, "kubeenv: environment in "+dead+" is not healthy: etcd exited, kube-apiserver exited")
	assert.Contains(t, out, "etcd                     exited (pid "+self+")")

	// An apiserver that runs but is not reachable through the kubeconfig is not healthy.
	broken := t.TempDir()
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		pid, err := os.ReadFile(filepath.Join(env.Dir(), name+".pid"))
		require.NoError(t, err)
		writeFile(t, broken, name+".pid", string(pid))
	}
	writeFile(t, broken, "kubeconfig", "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"+
		"contexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n")
	_, err = runCmd(t, "status", "--dir", broken)
	assert.ErrorContains(t, err, "kubeenv: environment in "+broken+" is not healthy: https://127.0.0.1:1/readyz:")
}

func TestRunRejectsBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"start"}, `unknown command "start"`},
		{[]string{"up"}, "up needs --dir"},
		{[]string{"down"}, "down needs --dir"},
		{[]string{"status"}, "status needs --dir"},
		{[]string{"apply"}, "apply needs -f"},
		{[]string{"up", "--dir", "x", "extra"}, "unexpected arguments"},
		{[]string{"up", "--bogus"}, "flag provided but not defined"},
		// Each command has its own flags.
		{[]string{"build", "--dir", "x"}, "flag provided but not defined: -dir"},
		{[]string{"down", "--dir", "x", "--detach"}, "flag provided but not defined: -detach"},
	} {
		var out, errOut bytes.Buffer
		err := run(tc.args, &out, &errOut)
		if assert.Error(t, err, "%v", tc.args) {
			assert.Contains(t, err.Error(), tc.want)
		}
		assert.Empty(t, out.String(), "%v: nothing on stdout, which scripts eval", tc.args)
	}
}

func TestDownWithoutEnvironmentIsANoOp(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.NoError(t, run([]string{"down", "--dir", t.TempDir()}, &out, &errOut))
}

func TestBuildCheck(t *testing.T) {
	t.Setenv("KUBEENV_CACHE", t.TempDir())
	out, err := runCmd(t, "build", "--check")
	require.ErrorContains(t, err, "are not built yet")
	assert.Empty(t, out)

	dir, err := kubeenv.AssetsDir()
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o755))
	}
	out, err = runCmd(t, "build", "--check")
	require.NoError(t, err)
	assert.Equal(t, dir+"\n", out)
}
