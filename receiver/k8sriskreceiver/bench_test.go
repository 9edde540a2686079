package k8sriskreceiver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/checks"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/metadata"
)

// benchCluster is the cluster: 10,000 pods of 2,000 workloads in 100 namespaces, 500
// RBAC bindings, with the objects around them (a Service, a ServiceAccount and a
// PodDisruptionBudget per workload, ReplicaSets, HPAs, policies, quotas, 100 nodes) in the
// shape the shared informers cache them. About a third of the workloads break some rules.
type benchCluster struct {
	stores map[*k8scache.Resource]checks.Store
	counts map[string]int
}

func (c *benchCluster) add(res *k8scache.Resource, obj any) {
	if c.stores[res] == nil {
		c.stores[res] = checks.Store{cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})}
	}
	if err := c.stores[res][0].Add(obj); err != nil {
		panic(err)
	}
	c.counts[res.Name]++
}

// newBenchCluster builds the cluster, the same every time.
func newBenchCluster() *benchCluster {
	c := &benchCluster{stores: map[*k8scache.Resource]checks.Store{}, counts: map[string]int{}}
	for _, res := range append(checks.SubjectResources, contextResources...) {
		c.stores[res] = checks.Store{cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})}
	}
	rng := rand.New(rand.NewPCG(15, 2026))
	uid := 0
	meta := func(ns, name string, labels map[string]string) metav1.ObjectMeta {
		uid++
		return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(fmt.Sprintf("uid-%06d", uid)), Labels: labels, ResourceVersion: "1"}
	}
	const namespaces, workloadsPerNS, podsPerWorkload, nodes = 100, 20, 5, 100
	for n := range nodes {
		c.add(k8scache.Nodes, &corev1.Node{ObjectMeta: meta("", fmt.Sprintf("node-%03d", n), nil), Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi")},
		}})
	}
	for n := range namespaces {
		ns := fmt.Sprintf("team-%03d", n)
		c.add(k8scache.Namespaces, &corev1.Namespace{ObjectMeta: meta("", ns, map[string]string{"team": ns})})
		if n%3 != 0 {
			c.add(k8scache.ResourceQuotas, &corev1.ResourceQuota{ObjectMeta: meta(ns, "quota", nil)})
		}
		if n%4 != 0 {
			c.add(k8scache.NetworkPolicies, &networkingv1.NetworkPolicy{ObjectMeta: meta(ns, "default-deny", nil),
				Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}})
		}
		for r := range 4 {
			rules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}}
			if r == 0 && n%5 == 0 {
				rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets", "pods"}, Verbs: []string{"get", "list", "create"}})
			}
			name := fmt.Sprintf("role-%d", r)
			c.add(k8scache.Roles, &rbacv1.Role{ObjectMeta: meta(ns, name, nil), Rules: rules})
			c.add(k8scache.RoleBindings, &rbacv1.RoleBinding{ObjectMeta: meta(ns, name, nil),
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: fmt.Sprintf("w-%02d", r)}}})
		}
		for w := range workloadsPerNS {
			name := fmt.Sprintf("w-%02d", w)
			labels := map[string]string{"app": name, "team": ns}
			spec := benchSpec(rng, name)
			c.add(k8scache.ServiceAccounts, &corev1.ServiceAccount{ObjectMeta: meta(ns, name, nil)})
			var owner metav1.OwnerReference
			switch {
			case w < 16: // Deployments, with a ReplicaSet each
				d := &appsv1.Deployment{ObjectMeta: meta(ns, name, labels), Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To(int32(podsPerWorkload)), Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
				}}
				c.add(k8scache.Deployments, d)
				rs := &appsv1.ReplicaSet{ObjectMeta: meta(ns, name+"-7d9f8b6c5", labels), Spec: appsv1.ReplicaSetSpec{
					Replicas: d.Spec.Replicas, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: thin(spec)},
				}}
				rs.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: d.UID, Controller: ptr.To(true)}}
				c.add(k8scache.ReplicaSets, rs)
				owner = metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}
				if w%4 == 0 {
					c.add(k8scache.HorizontalPodAutoscalers, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta(ns, name, nil), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
						ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: name}, MinReplicas: ptr.To[int32](2), MaxReplicas: 10,
					}})
				}
			case w < 18:
				s := &appsv1.StatefulSet{ObjectMeta: meta(ns, name, labels), Spec: appsv1.StatefulSetSpec{
					Replicas: ptr.To(int32(podsPerWorkload)), Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
				}}
				c.add(k8scache.StatefulSets, s)
				owner = metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: name, UID: s.UID, Controller: ptr.To(true)}
			case w < 19:
				d := &appsv1.DaemonSet{ObjectMeta: meta(ns, name, labels), Spec: appsv1.DaemonSetSpec{
					Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
				}}
				c.add(k8scache.DaemonSets, d)
				owner = metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: name, UID: d.UID, Controller: ptr.To(true)}
			default:
				cj := &batchv1.CronJob{ObjectMeta: meta(ns, name, labels), Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *",
					JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}}}}
				c.add(k8scache.CronJobs, cj)
				j := &batchv1.Job{ObjectMeta: meta(ns, name+"-29000000", labels), Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: thin(spec)}}}
				j.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: name, UID: cj.UID, Controller: ptr.To(true)}}
				c.add(k8scache.Jobs, j)
				owner = metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID, Controller: ptr.To(true)}
			}
			for p := range podsPerWorkload {
				pod := &corev1.Pod{ObjectMeta: meta(ns, fmt.Sprintf("%s-%d", name, p), labels), Spec: corev1.PodSpec{
					NodeName: fmt.Sprintf("node-%03d", rng.IntN(nodes)), ServiceAccountName: name,
					Resources: &corev1.ResourceRequirements{Requests: spec.Containers[0].Resources.Requests},
				}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
				pod.OwnerReferences = []metav1.OwnerReference{owner}
				c.add(k8scache.Pods, slim.NewPod(pod)) // as the cache keeps it
			}
			svc := &corev1.Service{ObjectMeta: meta(ns, name, nil), Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Port: 80}}}}
			if w == 0 {
				svc.Spec.Type = corev1.ServiceTypeLoadBalancer
			}
			c.add(k8scache.Services, svc)
			c.add(k8scache.PodDisruptionBudgets, &policyv1.PodDisruptionBudget{ObjectMeta: meta(ns, name, nil), Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			}})
		}
	}
	for b := range 100 {
		name := fmt.Sprintf("cluster-%03d", b)
		rules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes", "namespaces"}, Verbs: []string{"get", "list", "watch"}}}
		if b%10 == 0 {
			rules = []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}
		}
		c.add(k8scache.ClusterRoles, &rbacv1.ClusterRole{ObjectMeta: meta("", name, nil), Rules: rules})
		c.add(k8scache.ClusterRoleBindings, &rbacv1.ClusterRoleBinding{ObjectMeta: meta("", name, nil),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: fmt.Sprintf("team-%03d", b), Name: "w-00"}}})
	}
	return c
}

// benchSpec is a workload's template as the cache keeps it; a third of them break a few
// rules each.
func benchSpec(rng *rand.Rand, name string) corev1.PodSpec {
	spec := goodSpec()
	spec.ServiceAccountName = name
	spec.Containers = append(spec.Containers, *spec.Containers[0].DeepCopy())
	spec.Containers[1].Name = "sidecar"
	spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: k8scache.RedactedValue}, {Name: "PORT", Value: k8scache.RedactedValue}}
	if rng.IntN(3) == 0 {
		c := &spec.Containers[rng.IntN(2)]
		switch rng.IntN(5) {
		case 0:
			c.SecurityContext.Privileged = ptr.To(true)
			spec.HostNetwork = true
		case 1:
			c.Image = "nginx:latest"
			c.LivenessProbe = nil
		case 2:
			c.Resources = corev1.ResourceRequirements{}
		case 3:
			spec.SecurityContext = nil
			spec.AutomountServiceAccountToken = nil
		case 4:
			spec.Volumes = []corev1.Volume{{Name: "docker", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run/docker.sock"}}}}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "docker", MountPath: "/var/run/docker.sock"}}
		}
	}
	k8scache.SlimPodSpec(&spec)
	return spec
}

// thin is a template described by another (a ReplicaSet's, a Job's).
func thin(s corev1.PodSpec) corev1.PodSpec {
	out := corev1.PodSpec{ServiceAccountName: s.ServiceAccountName}
	for _, c := range s.Containers {
		out.Containers = append(out.Containers, corev1.Container{Name: c.Name, Image: c.Image, Resources: c.Resources})
	}
	return out
}

// benchSource serves the bench cluster to the engine.
type benchSource struct{ c *benchCluster }

func (s benchSource) stores() map[*k8scache.Resource]checks.Store { return s.c.stores }
func (benchSource) missing() map[*k8scache.Resource]error         { return map[*k8scache.Resource]error{} }
func (benchSource) events() []item                                { return nil }

// countingSink counts the records of a full assessment and drops them.
type countingSink struct{ n atomic.Int64 }

func (*countingSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (s *countingSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	s.n.Add(int64(ld.LogRecordCount()))
	return nil
}

// BenchmarkFullAssessment measures one full assessment of the cluster (10,000 pods,
// 2,000 workloads, 500 RBAC bindings), unpaced, on one goroutine, with the records going to
// a sink that counts them.
//
// cpu: the CPU time of the process (garbage collection included) per assessment, at the
// default GOGC. heap: the peak of the heap above what it was, collected, with the cache
// filled; GOGC=5 there, so that what is measured is what the assessment holds (at most 5%
// of the heap is garbage not yet collected) rather than when the collector happens to run.
// Both report what the assessment keeps afterwards. baseline: the cpu measurement of the same
// walk over every object with every check excluded (what the engine costs by itself), in
// the same run, and the heap the cached cluster takes.
//
//	go test -run '^$' -bench FullAssessment -benchtime=5x ./receiver/k8sriskreceiver/
func BenchmarkFullAssessment(b *testing.B) {
	before := liveHeap()
	cluster := newBenchCluster()
	cached := liveHeap() - min(liveHeap(), before)
	b.Logf("objects: %v", cluster.counts)
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces = NamespacesConfig{}
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.NewNop()
	ctx := context.Background()
	assess := func(b *testing.B, cfg *Config, measure func(run func())) {
		var kept uint64
		var records int64
		var objects int
		for b.Loop() {
			b.StopTimer()
			sink := &countingSink{}
			r, err := newReceiver(cfg, set, sink)
			if err != nil {
				b.Fatal(err)
			}
			base := liveHeap()
			var e *engine
			b.StartTimer()
			measure(func() {
				e = newEngine(r, nil, benchSource{cluster})
				e.startSweep()
				for e.sweep != nil {
					e.continueSweep(ctx, 1<<30)
				}
				e.flush(ctx)
			})
			b.StopTimer()
			kept = max(kept, liveHeap()-min(liveHeap(), base))
			records = sink.n.Load()
			objects = len(e.objects)
			r.tb.Shutdown()
			b.StartTimer()
		}
		b.ReportMetric(float64(kept)/(1<<20), "kept-heap-MiB")
		b.ReportMetric(float64(records), "records")
		b.ReportMetric(float64(objects), "objects")
	}
	b.Run("cpu", func(b *testing.B) {
		var cpu time.Duration
		assess(b, cfg, func(run func()) {
			cpu0 := processCPU()
			run()
			cpu += processCPU() - cpu0
		})
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/assessment")
	})
	b.Run("baseline", func(b *testing.B) {
		none := *cfg
		none.Checks.Exclude = []string{"*"}
		var cpu time.Duration
		assess(b, &none, func(run func()) {
			cpu0 := processCPU()
			run()
			cpu += processCPU() - cpu0
		})
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/assessment")
		b.ReportMetric(float64(cached)/(1<<20), "cache-heap-MiB")
	})
	b.Run("heap", func(b *testing.B) {
		defer debug.SetGCPercent(debug.SetGCPercent(5))
		var peak uint64
		assess(b, cfg, func(run func()) {
			base := liveHeap()
			sampler := startHeapSampler()
			run()
			p := sampler.stop()
			peak = max(peak, p-min(p, base))
		})
		b.ReportMetric(float64(peak)/(1<<20), "peak-extra-heap-MiB")
	})
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// heapSampler records the largest heap (live objects and garbage not yet collected) seen
// every millisecond, without stopping the world as ReadMemStats would.
type heapSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func startHeapSampler() *heapSampler {
	s := &heapSampler{done: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	s.wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			s.peak = max(s.peak, sample[0].Value.Uint64())
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	})
	return s
}

func (s *heapSampler) stop() uint64 {
	close(s.done)
	s.wg.Wait()
	return s.peak
}
