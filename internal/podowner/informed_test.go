package podowner

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
)

func TestMain(m *testing.M) { kubeenv.Main(m) }

const (
	waitFor = 30 * time.Second
	tick    = 20 * time.Millisecond
)

var podSpec = corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}

func template(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}}, Spec: podSpec}
}

// The controllers of the real kube-controller-manager create the pods, so the owner
// chains are the ones a cluster has; names are chosen so that Names could not tell.
func TestInformedFollowsControllers(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	ctx := t.Context()

	sel := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: sel("shop"), Template: template("shop")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), Selector: sel("db"), Template: template("db")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "cache"},
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](1), Selector: sel("cache"), Template: template("cache")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	cron, err := cs.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "report"},
		Spec: batchv1.CronJobSpec{Schedule: "0 0 1 1 *", JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: withRestartNever(podSpec)}},
		}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The job a run of the CronJob would create, made now instead of at its schedule.
	_, err = cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "report-manual", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "batch/v1", Kind: KindCronJob, Name: cron.Name, UID: cron.UID, Controller: ptr.To(true),
		}}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: withRestartNever(podSpec)}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "debug-7d9f8b6c5-x2x4k"}, Spec: podSpec}, metav1.CreateOptions{})
	require.NoError(t, err)

	c, err := k8scache.For(env.RestConfig())
	require.NoError(t, err)
	r := NewInformed(c)
	defer r.Close()
	require.Eventually(t, r.HasSynced, waitFor, tick)
	for _, inf := range []*k8scache.Informer{r.pods, r.replicaSets, r.jobs} {
		require.NoError(t, inf.Err())
	}

	want := map[string]Ref{
		"shop":   {KindDeployment, "shop"},
		"db":     {KindStatefulSet, "db"},
		"cache":  {KindReplicaSet, "cache"},
		"report": {KindCronJob, "report"},
	}
	require.Eventually(t, func() bool {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		found := map[string]int{}
		for _, p := range pods.Items {
			app := p.Labels["app"]
			if p.Labels["job-name"] == "report-manual" {
				app = "report"
			}
			ref, ok := r.Owner(ns, p.Name)
			if app == "" { // the bare pod named like a Deployment's
				assert.False(t, ok, p.Name)
				continue
			}
			if ok && ref == want[app] {
				found[app]++
			}
		}
		return found["shop"] == 2 && found["db"] == 1 && found["cache"] == 1 && found["report"] == 1
	}, waitFor, 100*time.Millisecond, "every controller's pods resolve to their top workload")

	_, ok := r.Owner(ns, "no-such-pod")
	assert.False(t, ok)
	_, ok = r.Owner("no-such-namespace", "debug-7d9f8b6c5-x2x4k")
	assert.False(t, ok)

	// Chained with Names, a pod the cache does not know yet still gets a best guess.
	ref, ok := Chain{r, Names{}}.Owner(ns, "api-7d9f8b6c5d-x2k4p")
	assert.True(t, ok)
	assert.Equal(t, Ref{KindDeployment, "api"}, ref)
}

func withRestartNever(s corev1.PodSpec) corev1.PodSpec {
	s.RestartPolicy = corev1.RestartPolicyNever
	return s
}

func TestInformedReleasesItsInformers(t *testing.T) {
	env := kubeenv.Shared(t)
	cfg := env.RestConfig()
	cfg.UserAgent = "podowner-test/" + t.Name()
	c, err := k8scache.For(cfg)
	require.NoError(t, err)
	before := k8scache.Running()
	r := NewInformed(c)
	assert.Equal(t, before+3, k8scache.Running())
	r.Close()
	assert.Equal(t, before, k8scache.Running())
}

// An apiserver that is not there does not stop the component: the failure is reported as a
// recoverable status, and pods are resolved by name meanwhile.
func TestOpenReportsAnUnreachableAPIServer(t *testing.T) {
	env := kubeenv.Shared(t)
	kubeconfig, err := os.ReadFile(env.Kubeconfig())
	require.NoError(t, err)
	// The same credentials, aimed at a port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := l.Addr().String()
	require.NoError(t, l.Close())
	broken := strings.ReplaceAll(string(kubeconfig), strings.TrimPrefix(env.Host(), "https://"), dead)
	require.NotEqual(t, string(kubeconfig), broken)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(broken), 0o600))
	t.Setenv("KUBECONFIG", path)

	host := &testutil.StatusHost{}
	r, err := Open(&k8sapi.Config{AuthType: k8sapi.AuthTypeKubeConfig}, zap.NewNop(), host)
	require.NoError(t, err)
	defer r.Close()
	require.Eventually(t, func() bool {
		e := host.Last()
		return e != nil && e.Status() == componentstatus.StatusRecoverableError
	}, waitFor, tick)
	require.ErrorContains(t, host.Last().Err(), dead)
	assert.False(t, r.HasSynced())
	_, ok := Chain{r, Names{}}.Owner("default", "web-7d9f8b6c5-x2x4k")
	assert.True(t, ok, "names still answer")
}

func TestOpenRefusesAConfigurationItCannotBuild(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	_, err := Open(&k8sapi.Config{AuthType: k8sapi.AuthTypeKubeConfig}, zap.NewNop(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "auth_type kubeConfig")
}
