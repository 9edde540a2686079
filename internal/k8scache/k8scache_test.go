package k8scache

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
)

func TestMain(m *testing.M) { kubeenv.Main(m) }

const (
	waitFor = 30 * time.Second
	tick    = 20 * time.Millisecond
)

func config(t *testing.T, env *kubeenv.Env) *rest.Config {
	cfg := env.RestConfig()
	cfg.UserAgent = "k8scache-test/" + t.Name()
	return cfg
}

func TestInformersAreSharedAndReleased(t *testing.T) {
	env := kubeenv.Shared(t)
	before := Running()
	a, err := For(config(t, env))
	require.NoError(t, err)
	b, err := For(config(t, env))
	require.NoError(t, err)
	assert.Same(t, a, b, "the same identity shares one cache")
	other, err := For(env.RestConfig())
	require.NoError(t, err)
	assert.NotSame(t, a, other, "another user agent is another identity")

	p1, release1 := a.Informer(Pods, "")
	p2, release2 := b.Informer(Pods, "")
	assert.Same(t, p1, p2)
	nsScoped, release3 := a.Informer(Pods, "default")
	assert.NotSame(t, p1, nsScoped)
	nodes, release4 := a.Informer(Nodes, "ignored for cluster-scoped kinds")
	assert.Empty(t, nodes.Namespace)
	assert.Equal(t, before+3, Running())
	require.Eventually(t, p1.HasSynced, waitFor, tick)

	release1()
	release1() // a second release is a no-op
	assert.Equal(t, before+3, Running(), "still used by the second user")
	release2()
	release3()
	release4()
	assert.Equal(t, before, Running())
	c, err := For(config(t, env))
	require.NoError(t, err)
	assert.Same(t, a, c, "a cache outlives its informers")
	_, release5 := a.Informer(Pods, "")
	assert.Equal(t, before+1, Running(), "an informer acquired again counts")
	release5()
	assert.Equal(t, before, Running())
}

// A component may hold its Cache across uses (the inventory receiver across leadership
// terms): informers it acquires after a term released all of them must be the ones the
// other components of the process get from For, not a second watch on an orphaned cache.
func TestHeldCacheStaysShared(t *testing.T) {
	env := kubeenv.Shared(t)
	before := Running()
	held, err := For(config(t, env))
	require.NoError(t, err)
	_, release := held.Informer(Pods, "")
	release() // the first term ends
	pods, release := held.Informer(Pods, "")
	defer release()

	joined, err := For(config(t, env))
	require.NoError(t, err)
	assert.Same(t, held, joined)
	shared, releaseShared := joined.Informer(Pods, "")
	defer releaseShared()
	assert.Same(t, pods, shared, "one watch for both users")
	assert.Equal(t, before+1, Running())
}

func TestObjectsAreSlimmedBeforeCaching(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	ctx := t.Context()
	spec := corev1.PodSpec{
		ServiceAccountName: "default",
		Containers: []corev1.Container{{
			Name: "app", Image: "registry.k8s.io/pause:3.10",
			Env:          []corev1.EnvVar{{Name: "SECRET", Value: "x"}},
			Ports:        []corev1.ContainerPort{{ContainerPort: 8080}},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			Resources:    corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}},
		}, {
			Name: "sidecar", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
			},
		}},
		Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
	annotations := map[string]string{lastApplied: `{"huge":"copy"}`, "keep": "me"}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app": "web"}, Annotations: annotations},
		Spec:       spec,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "d"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "d"}}, Spec: spec},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	c, err := For(config(t, env))
	require.NoError(t, err)
	pods, releasePods := c.Informer(Pods, ns)
	defer releasePods()
	deps, releaseDeps := c.Informer(Deployments, ns)
	defer releaseDeps()
	require.Eventually(t, func() bool { return pods.HasSynced() && deps.HasSynced() }, waitFor, tick)

	obj, ok, err := pods.GetIndexer().GetByKey(ns + "/p")
	require.NoError(t, err)
	require.True(t, ok)
	p := obj.(*slim.Pod)
	again, err := Pods.transformFunc()(p)
	require.NoError(t, err)
	assert.Same(t, p, again, "the transform is idempotent")
	assert.Empty(t, p.ManagedFields)
	assert.Nil(t, p.Annotations, "pods keep no annotations")
	assert.Equal(t, map[string]string{"app": "web"}, p.Labels)
	require.NotNil(t, p.Spec.Resources)
	assert.Equal(t, "750m", p.Spec.Resources.Requests.Cpu().String())
	assert.Equal(t, "64Mi", p.Spec.Resources.Limits.Memory().String())
	assert.Equal(t, "default", p.Spec.ServiceAccountName)

	objs, err := deps.GetIndexer().ByIndex("namespace", ns)
	require.NoError(t, err)
	require.Len(t, objs, 1)
	d := objs[0].(*appsv1.Deployment)
	assert.Empty(t, d.ManagedFields)
	assert.Equal(t, "me", d.Annotations["keep"], "only the last-applied copy goes")
	assert.NotContains(t, d.Annotations, lastApplied)
	assert.Equal(t, "default", d.Spec.Template.Spec.ServiceAccountName)
	assert.Equal(t, []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}, d.Spec.Template.Spec.Volumes)
	require.Len(t, d.Spec.Template.Spec.Containers, 2)
	ct := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "app", ct.Name)
	assert.Equal(t, "registry.k8s.io/pause:3.10", ct.Image)
	assert.Equal(t, []corev1.EnvVar{{Name: "SECRET", Value: RedactedValue}}, ct.Env, "literal values never reach the cache")
	assert.Equal(t, []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}, ct.VolumeMounts)
	assert.Equal(t, []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}, ct.Ports)
	assert.Equal(t, "250m", ct.Resources.Requests.Cpu().String())
	assert.Empty(t, ct.TerminationMessagePath, "defaults the apiserver filled in are dropped")
}

// A pod template keeps what the risk checks read only when no other cached template
// describes the same pods: ReplicaSets of Deployments and Jobs of CronJobs stay thin.
func TestTemplatesSlimmedByWhoDescribesThePods(t *testing.T) {
	spec := func() corev1.PodSpec {
		return corev1.PodSpec{
			HostPID: true, ServiceAccountName: "sa", AutomountServiceAccountToken: ptr.To(false),
			SecurityContext:   &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
			PriorityClassName: "high",
			Affinity: &corev1.Affinity{
				NodeAffinity:    &corev1.NodeAffinity{},
				PodAntiAffinity: &corev1.PodAntiAffinity{},
			},
			Volumes: []corev1.Volume{
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}},
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
				{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db", Items: []corev1.KeyToPath{{Key: "k", Path: "p"}}}}},
			},
			Containers: []corev1.Container{{
				Name: "app", Image: "app:1", Command: []string{"run"}, Args: []string{"--x"},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
				ReadinessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{}}},
				Env: []corev1.EnvVar{
					{Name: "PLAIN", Value: "v"},
					{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "pw"}}},
					{Name: "FROM_FIELD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				},
				EnvFrom:      []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{}}, {SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "all"}}}},
				VolumeMounts: []corev1.VolumeMount{{Name: "host", MountPath: "/host", ReadOnly: true, SubPath: "x"}},
			}},
		}
	}
	want := corev1.PodSpec{
		HostPID: true, ServiceAccountName: "sa", AutomountServiceAccountToken: ptr.To(false),
		SecurityContext:   &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
		PriorityClassName: "high",
		Affinity:          &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{}},
		Volumes: []corev1.Volume{
			{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}},
			{Name: "cm"},
			{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}},
		},
		Containers: []corev1.Container{{
			Name: "app", Image: "app:1",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			ReadinessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{}}},
			Env: []corev1.EnvVar{
				{Name: "PLAIN", Value: RedactedValue},
				{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "pw"}}},
				{Name: "FROM_FIELD"},
			},
			EnvFrom:      []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "all"}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "host", MountPath: "/host", ReadOnly: true}},
		}},
	}
	thin := corev1.PodSpec{ServiceAccountName: "sa", Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}

	controlled := func(kind string) metav1.ObjectMeta {
		return metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{{Kind: kind, Name: "owner", Controller: ptr.To(true)}}}
	}
	for name, tc := range map[string]struct {
		res  *Resource
		obj  runtime.Object
		spec func(runtime.Object) *corev1.PodSpec
		want corev1.PodSpec
	}{
		"Deployment": {Deployments, &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec()}}},
			func(o runtime.Object) *corev1.PodSpec { return &o.(*appsv1.Deployment).Spec.Template.Spec }, want},
		"ReplicaSet of a Deployment": {ReplicaSets, &appsv1.ReplicaSet{ObjectMeta: controlled("Deployment"), Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: spec()}}},
			func(o runtime.Object) *corev1.PodSpec { return &o.(*appsv1.ReplicaSet).Spec.Template.Spec }, thin},
		"ReplicaSet of a Rollout": {ReplicaSets, &appsv1.ReplicaSet{ObjectMeta: controlled("Rollout"), Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: spec()}}},
			func(o runtime.Object) *corev1.PodSpec { return &o.(*appsv1.ReplicaSet).Spec.Template.Spec }, want},
		"Job of a CronJob": {Jobs, &batchv1.Job{ObjectMeta: controlled("CronJob"), Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec()}}},
			func(o runtime.Object) *corev1.PodSpec { return &o.(*batchv1.Job).Spec.Template.Spec }, thin},
		"standalone Job": {Jobs, &batchv1.Job{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec()}}},
			func(o runtime.Object) *corev1.PodSpec { return &o.(*batchv1.Job).Spec.Template.Spec }, want},
		"CronJob": {CronJobs, &batchv1.CronJob{Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec()}}}}},
			func(o runtime.Object) *corev1.PodSpec {
				return &o.(*batchv1.CronJob).Spec.JobTemplate.Spec.Template.Spec
			}, want},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := tc.res.transformFunc()(tc.obj)
			require.NoError(t, err)
			assert.Equal(t, tc.want, *tc.spec(out.(runtime.Object)))
			again, err := tc.res.transformFunc()(out)
			require.NoError(t, err)
			assert.Equal(t, tc.want, *tc.spec(again.(runtime.Object)), "slimming is idempotent")
		})
	}
}

func TestHealthFollowsListAndWatch(t *testing.T) {
	env := kubeenv.Shared(t)
	cfg := config(t, env)
	cfg.Impersonate.UserName = "nobody" // may read nothing
	c, err := For(cfg)
	require.NoError(t, err)
	inf, release := c.Informer(Services, "")
	defer release()
	changes := make(chan error, 10)
	stop := inf.OnHealth(func(err error) { changes <- err })
	defer stop()
	select {
	case err := <-changes:
		assert.True(t, apierrors.IsForbidden(err), "%v", err)
	case <-time.After(waitFor):
		t.Fatal("no health change reported")
	}
	assert.True(t, apierrors.IsForbidden(inf.Err()))
	assert.False(t, inf.HasSynced())

	ok, releaseOK := c.Informer(Namespaces, "")
	defer releaseOK()
	assert.Eventually(t, func() bool { return apierrors.IsForbidden(ok.Err()) }, waitFor, tick)
}

func TestEventsOfType(t *testing.T) {
	assert.Same(t, Events, EventsOfType([]string{"Normal", "Warning"}))
	assert.Same(t, Events, EventsOfType(nil))
	warnings := EventsOfType([]string{"Warning"})
	assert.Same(t, warnings, EventsOfType([]string{"Warning"}))
	assert.Equal(t, "events?fieldSelector=type=Warning", warnings.Name)

	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	for _, typ := range []string{corev1.EventTypeNormal, corev1.EventTypeWarning} {
		_, err := cs.CoreV1().Events(ns).Create(t.Context(), &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: typ},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "p"},
			Type:           typ, Reason: "Test",
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	c, err := For(config(t, env))
	require.NoError(t, err)
	inf, release := c.Informer(warnings, ns)
	defer release()
	require.Eventually(t, inf.HasSynced, waitFor, tick)
	assert.Equal(t, []string{ns + "/Warning"}, inf.GetIndexer().ListKeys())
}

// The kinds added for the risk receiver list and watch through their typed clients, and
// their status and secret lists stay out of the cache.
func TestRiskKinds(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	ctx := t.Context()
	_, err = cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "sa"},
		Secrets:    []corev1.ObjectReference{{Name: "token"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "pdb"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1))},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "r"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	c, err := For(config(t, env))
	require.NoError(t, err)
	for _, res := range []*Resource{
		ServiceAccounts, PodDisruptionBudgets, HorizontalPodAutoscalers, Ingresses, ResourceQuotas, LimitRanges,
		Roles, ClusterRoles, RoleBindings, ClusterRoleBindings,
	} {
		inf, release := c.Informer(res, ns)
		require.Eventually(t, inf.HasSynced, waitFor, tick, res.Name)
		require.NoError(t, inf.Err(), res.Name)
		switch res {
		case ServiceAccounts:
			obj, ok, err := inf.GetIndexer().GetByKey(ns + "/sa")
			require.NoError(t, err)
			require.True(t, ok)
			assert.Nil(t, obj.(*corev1.ServiceAccount).Secrets)
		case PodDisruptionBudgets:
			obj, ok, err := inf.GetIndexer().GetByKey(ns + "/pdb")
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, policyv1.PodDisruptionBudgetStatus{}, obj.(*policyv1.PodDisruptionBudget).Status)
		case Roles:
			obj, ok, err := inf.GetIndexer().GetByKey(ns + "/r")
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, []string{"secrets"}, obj.(*rbacv1.Role).Rules[0].Resources)
		case ClusterRoles:
			_, ok, err := inf.GetIndexer().GetByKey("cluster-admin")
			require.NoError(t, err)
			assert.True(t, ok, "cluster-scoped kinds are watched cluster-wide")
		}
		release()
	}
}
