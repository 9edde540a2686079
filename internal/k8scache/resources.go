package k8scache

import (
	"context"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
)

// lastApplied is the annotation kubectl apply writes: a full copy of the object.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Resource is a kind the cache can watch: how to list and watch it and how to slim it.
type Resource struct {
	// Name identifies the resource in keys, logs and status, e.g. "pods" or
	// "authorizationpolicies.v1.security.istio.io".
	Name string
	// Namespaced resources can be watched per namespace.
	Namespaced bool

	// object is the type the apiserver sends; the cache keeps it, or what cached makes of it.
	object    func() runtime.Object
	listWatch func(cl *clients, ns string) cache.ListerWatcherWithContext
	// slim removes, in place, what consumers do not read.
	slim func(obj any)
	// cached, when set, converts a decoded object to the slimmer type the cache keeps. It
	// must return objects of that type as they are: transforms must be idempotent.
	cached func(obj any) any
}

func (r *Resource) transformFunc() cache.TransformFunc {
	return func(obj any) (any, error) {
		// Tombstones of deleted objects are passed as they are.
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
			if a := m.GetAnnotations(); a[lastApplied] != "" {
				delete(a, lastApplied)
			}
			if r.slim != nil {
				r.slim(obj)
			}
			if r.cached != nil {
				obj = r.cached(obj)
			}
		}
		return obj, nil
	}
}

// listWatch builds the list and watch functions of a typed client. Generic so that each
// kind is one line below.
func listWatch[L runtime.Object](
	list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error),
) cache.ListerWatcherWithContext {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return list(ctx, opts)
		},
		WatchFuncWithContext: watchFn,
	}
}

// Kinds the cache knows. Pods are cached as *slim.Pod, which lists what is kept of them.
// A pod template keeps what SlimPodSpec keeps when it is the only description of its pods,
// and only the node, service account, host network flag and each container's name, image,
// ports and resources when another cached template describes them too (ReplicaSets of
// Deployments, Jobs of CronJobs): there can be many of those. Nodes drop status.images,
// which lists every image on the node.
var (
	Pods = &Resource{
		Name: "pods", Namespaced: true,
		object: func() runtime.Object { return &corev1.Pod{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.CoreV1().Pods(ns)
			return listWatch(c.List, c.Watch)
		},
		cached: func(obj any) any {
			if p, ok := obj.(*corev1.Pod); ok {
				return slim.NewPod(p)
			}
			return obj
		},
	}
	Namespaces = &Resource{
		Name:   "namespaces",
		object: func() runtime.Object { return &corev1.Namespace{} },
		listWatch: func(cl *clients, _ string) cache.ListerWatcherWithContext {
			c := cl.typed.CoreV1().Namespaces()
			return listWatch(c.List, c.Watch)
		},
	}
	Nodes = &Resource{
		Name:   "nodes",
		object: func() runtime.Object { return &corev1.Node{} },
		listWatch: func(cl *clients, _ string) cache.ListerWatcherWithContext {
			c := cl.typed.CoreV1().Nodes()
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if n, ok := obj.(*corev1.Node); ok {
				n.Status.Images = nil
			}
		},
	}
	Services = &Resource{
		Name: "services", Namespaced: true,
		object: func() runtime.Object { return &corev1.Service{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.CoreV1().Services(ns)
			return listWatch(c.List, c.Watch)
		},
	}
	Events = &Resource{
		Name: "events", Namespaced: true,
		object: func() runtime.Object { return &corev1.Event{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.CoreV1().Events(ns)
			return listWatch(c.List, c.Watch)
		},
	}
	Deployments = &Resource{
		Name: "deployments.apps", Namespaced: true,
		object: func() runtime.Object { return &appsv1.Deployment{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.AppsV1().Deployments(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if d, ok := obj.(*appsv1.Deployment); ok {
				SlimPodSpec(&d.Spec.Template.Spec)
			}
		},
	}
	StatefulSets = &Resource{
		Name: "statefulsets.apps", Namespaced: true,
		object: func() runtime.Object { return &appsv1.StatefulSet{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.AppsV1().StatefulSets(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if s, ok := obj.(*appsv1.StatefulSet); ok {
				SlimPodSpec(&s.Spec.Template.Spec)
				s.Spec.VolumeClaimTemplates = nil
			}
		},
	}
	DaemonSets = &Resource{
		Name: "daemonsets.apps", Namespaced: true,
		object: func() runtime.Object { return &appsv1.DaemonSet{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.AppsV1().DaemonSets(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if d, ok := obj.(*appsv1.DaemonSet); ok {
				SlimPodSpec(&d.Spec.Template.Spec)
			}
		},
	}
	ReplicaSets = &Resource{
		Name: "replicasets.apps", Namespaced: true,
		object: func() runtime.Object { return &appsv1.ReplicaSet{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.AppsV1().ReplicaSets(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if r, ok := obj.(*appsv1.ReplicaSet); ok {
				slimTemplate(&r.ObjectMeta, "Deployment", &r.Spec.Template.Spec)
			}
		},
	}
	Jobs = &Resource{
		Name: "jobs.batch", Namespaced: true,
		object: func() runtime.Object { return &batchv1.Job{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.BatchV1().Jobs(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if j, ok := obj.(*batchv1.Job); ok {
				slimTemplate(&j.ObjectMeta, "CronJob", &j.Spec.Template.Spec)
			}
		},
	}
	CronJobs = &Resource{
		Name: "cronjobs.batch", Namespaced: true,
		object: func() runtime.Object { return &batchv1.CronJob{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.BatchV1().CronJobs(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if j, ok := obj.(*batchv1.CronJob); ok {
				SlimPodSpec(&j.Spec.JobTemplate.Spec.Template.Spec)
			}
		},
	}
	NetworkPolicies = &Resource{
		Name: "networkpolicies.networking.k8s.io", Namespaced: true,
		object: func() runtime.Object { return &networkingv1.NetworkPolicy{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.NetworkingV1().NetworkPolicies(ns)
			return listWatch(c.List, c.Watch)
		},
	}
	Ingresses = &Resource{
		Name: "ingresses.networking.k8s.io", Namespaced: true,
		object: func() runtime.Object { return &networkingv1.Ingress{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.NetworkingV1().Ingresses(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if i, ok := obj.(*networkingv1.Ingress); ok {
				i.Status = networkingv1.IngressStatus{}
			}
		},
	}
	// ServiceAccounts drop their lists of token and pull secrets.
	ServiceAccounts = &Resource{
		Name: "serviceaccounts", Namespaced: true,
		object: func() runtime.Object { return &corev1.ServiceAccount{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.CoreV1().ServiceAccounts(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if sa, ok := obj.(*corev1.ServiceAccount); ok {
				sa.Secrets, sa.ImagePullSecrets = nil, nil
			}
		},
	}
	// PodDisruptionBudgets drop their status (the evicted pods and conditions).
	PodDisruptionBudgets = &Resource{
		Name: "poddisruptionbudgets.policy", Namespaced: true,
		object: func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.PolicyV1().PodDisruptionBudgets(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if p, ok := obj.(*policyv1.PodDisruptionBudget); ok {
				p.Status = policyv1.PodDisruptionBudgetStatus{}
			}
		},
	}
	// HorizontalPodAutoscalers drop their status (current metrics and conditions).
	HorizontalPodAutoscalers = &Resource{
		Name: "horizontalpodautoscalers.autoscaling", Namespaced: true,
		object: func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.AutoscalingV2().HorizontalPodAutoscalers(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler); ok {
				h.Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
			}
		},
	}
	ResourceQuotas = &Resource{
		Name: "resourcequotas", Namespaced: true,
		object: func() runtime.Object { return &corev1.ResourceQuota{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.CoreV1().ResourceQuotas(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if q, ok := obj.(*corev1.ResourceQuota); ok {
				q.Status = corev1.ResourceQuotaStatus{}
			}
		},
	}
	LimitRanges = &Resource{
		Name: "limitranges", Namespaced: true,
		object: func() runtime.Object { return &corev1.LimitRange{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.CoreV1().LimitRanges(ns)
			return listWatch(c.List, c.Watch)
		},
	}
	Roles = &Resource{
		Name: "roles.rbac.authorization.k8s.io", Namespaced: true,
		object: func() runtime.Object { return &rbacv1.Role{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.RbacV1().Roles(ns)
			return listWatch(c.List, c.Watch)
		},
	}
	ClusterRoles = &Resource{
		Name:   "clusterroles.rbac.authorization.k8s.io",
		object: func() runtime.Object { return &rbacv1.ClusterRole{} },
		listWatch: func(cl *clients, _ string) cache.ListerWatcherWithContext {
			c := cl.typed.RbacV1().ClusterRoles()
			return listWatch(c.List, c.Watch)
		},
	}
	RoleBindings = &Resource{
		Name: "rolebindings.rbac.authorization.k8s.io", Namespaced: true,
		object: func() runtime.Object { return &rbacv1.RoleBinding{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.RbacV1().RoleBindings(ns)
			return listWatch(c.List, c.Watch)
		},
	}
	ClusterRoleBindings = &Resource{
		Name:   "clusterrolebindings.rbac.authorization.k8s.io",
		object: func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
		listWatch: func(cl *clients, _ string) cache.ListerWatcherWithContext {
			c := cl.typed.RbacV1().ClusterRoleBindings()
			return listWatch(c.List, c.Watch)
		},
	}
	// CustomResourceDefinitions holds only the metadata of CRDs (PartialObjectMetadata):
	// enough to see which APIs are installed, without their large schemas.
	CustomResourceDefinitions = &Resource{
		Name:   "customresourcedefinitions.apiextensions.k8s.io",
		object: func() runtime.Object { return &metav1.PartialObjectMetadata{} },
		listWatch: func(cl *clients, _ string) cache.ListerWatcherWithContext {
			c := cl.metadata.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
			return listWatch(c.List, c.Watch)
		},
	}
)

// Dynamic returns a Resource for a custom resource, cached as unstructured objects.
func Dynamic(gvr schema.GroupVersionResource, namespaced bool) *Resource {
	return &Resource{
		Name:       gvr.Resource + "." + gvr.Version + "." + gvr.Group,
		Namespaced: namespaced,
		object:     func() runtime.Object { return &unstructured.Unstructured{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			var c interface {
				List(context.Context, metav1.ListOptions) (*unstructured.UnstructuredList, error)
				Watch(context.Context, metav1.ListOptions) (watch.Interface, error)
			} = cl.dynamic.Resource(gvr)
			if namespaced && ns != "" {
				c = cl.dynamic.Resource(gvr).Namespace(ns)
			}
			return listWatch(c.List, c.Watch)
		},
	}
}

// slimTemplate slims the pod template of a workload: thinly when its controller (a
// Deployment for a ReplicaSet, a CronJob for a Job) has a cached template of its own that
// describes the same pods, else with SlimPodSpec.
func slimTemplate(meta *metav1.ObjectMeta, describedBy string, s *corev1.PodSpec) {
	if c := metav1.GetControllerOfNoCopy(meta); c != nil && c.Kind == describedBy {
		thinPodSpec(s)
		return
	}
	SlimPodSpec(s)
}

// thinPodSpec keeps what the inventory reads of a pod template and drops the rest
// (volumes, env, probes, scheduling constraints, ...), which is most of a pod's memory.
func thinPodSpec(s *corev1.PodSpec) {
	*s = corev1.PodSpec{
		NodeName:           s.NodeName,
		ServiceAccountName: s.ServiceAccountName,
		HostNetwork:        s.HostNetwork,
		Containers:         thinContainers(s.Containers),
		InitContainers:     thinContainers(s.InitContainers),
	}
}

func thinContainers(in []corev1.Container) []corev1.Container {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(in))
	for i := range in {
		c := &in[i]
		out[i] = corev1.Container{Name: c.Name, Image: c.Image, Ports: c.Ports, Resources: corev1.ResourceRequirements{
			Requests: c.Resources.Requests,
			Limits:   c.Resources.Limits,
		}}
	}
	return out
}

// RedactedValue replaces the literal value of every environment variable SlimPodSpec keeps:
// no consumer needs the values, and they are often credentials that should not sit in the
// collector's memory.
const RedactedValue = "(redacted)"

// SlimPodSpec reduces a pod spec to what the consumers of a workload's template read: the
// inventory (node, service account, host network flag, each container's name, image, ports
// and resources) and the risk checks (security contexts, host namespaces, the token
// automount flag, priority class, pod anti-affinity and topology spread, probes, the names
// of environment variables with their Secret references, Secret references in envFrom,
// volume mounts, and volumes with only their hostPath, Secret or emptyDir source). The
// risk receiver applies it to the pods it reads itself, so that both look alike. It is
// idempotent, as transforms must be.
func SlimPodSpec(s *corev1.PodSpec) {
	var affinity *corev1.Affinity
	if s.Affinity != nil && s.Affinity.PodAntiAffinity != nil {
		affinity = &corev1.Affinity{PodAntiAffinity: s.Affinity.PodAntiAffinity}
	}
	*s = corev1.PodSpec{
		NodeName:                     s.NodeName,
		ServiceAccountName:           s.ServiceAccountName,
		AutomountServiceAccountToken: s.AutomountServiceAccountToken,
		HostNetwork:                  s.HostNetwork,
		HostPID:                      s.HostPID,
		HostIPC:                      s.HostIPC,
		SecurityContext:              s.SecurityContext,
		PriorityClassName:            s.PriorityClassName,
		Affinity:                     affinity,
		TopologySpreadConstraints:    s.TopologySpreadConstraints,
		Volumes:                      slimVolumes(s.Volumes),
		Containers:                   slimContainers(s.Containers),
		InitContainers:               slimContainers(s.InitContainers),
	}
}

func slimContainers(in []corev1.Container) []corev1.Container {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(in))
	for i := range in {
		c := &in[i]
		out[i] = corev1.Container{
			Name: c.Name, Image: c.Image, Ports: c.Ports,
			Resources:       corev1.ResourceRequirements{Requests: c.Resources.Requests, Limits: c.Resources.Limits},
			SecurityContext: c.SecurityContext,
			LivenessProbe:   c.LivenessProbe, ReadinessProbe: c.ReadinessProbe, StartupProbe: c.StartupProbe,
			Env:           slimEnv(c.Env),
			EnvFrom:       slimEnvFrom(c.EnvFrom),
			VolumeMounts:  slimMounts(c.VolumeMounts),
			RestartPolicy: c.RestartPolicy,
		}
	}
	return out
}

func slimEnv(in []corev1.EnvVar) []corev1.EnvVar {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.EnvVar, len(in))
	for i := range in {
		e := corev1.EnvVar{Name: in[i].Name}
		if in[i].Value != "" {
			e.Value = RedactedValue
		}
		if ref := in[i].ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			e.ValueFrom = &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: ref.SecretKeyRef.LocalObjectReference, Key: ref.SecretKeyRef.Key,
			}}
		}
		out[i] = e
	}
	return out
}

func slimEnvFrom(in []corev1.EnvFromSource) []corev1.EnvFromSource {
	var out []corev1.EnvFromSource
	for i := range in {
		if in[i].SecretRef != nil {
			out = append(out, corev1.EnvFromSource{SecretRef: in[i].SecretRef})
		}
	}
	return out
}

func slimMounts(in []corev1.VolumeMount) []corev1.VolumeMount {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.VolumeMount, len(in))
	for i := range in {
		out[i] = corev1.VolumeMount{Name: in[i].Name, MountPath: in[i].MountPath, ReadOnly: in[i].ReadOnly}
	}
	return out
}

// slimVolumes keeps every volume's name (mounts refer to it) and only the hostPath, Secret
// and emptyDir sources.
func slimVolumes(in []corev1.Volume) []corev1.Volume {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.Volume, len(in))
	for i := range in {
		v := corev1.Volume{Name: in[i].Name}
		src := &in[i].VolumeSource
		switch {
		case src.HostPath != nil:
			v.HostPath = src.HostPath
		case src.Secret != nil:
			v.Secret = &corev1.SecretVolumeSource{SecretName: src.Secret.SecretName}
		case src.EmptyDir != nil:
			v.EmptyDir = src.EmptyDir
		}
		out[i] = v
	}
	return out
}

// EventsOfType returns the Events resource restricted to the given types (Normal,
// Warning) by a field selector, so that the cache holds only those. Consumers asking for
// the same types share one informer.
func EventsOfType(types []string) *Resource {
	if len(types) != 1 {
		return Events
	}
	selector := fields.OneTermEqualSelector("type", types[0]).String()
	eventsByType.mu.Lock()
	defer eventsByType.mu.Unlock()
	if r, ok := eventsByType.m[selector]; ok {
		return r
	}
	r := &Resource{
		Name: "events?fieldSelector=" + selector, Namespaced: true,
		object: Events.object,
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.CoreV1().Events(ns)
			withSelector := func(opts *metav1.ListOptions) { opts.FieldSelector = selector }
			return listWatch(
				func(ctx context.Context, opts metav1.ListOptions) (*corev1.EventList, error) {
					withSelector(&opts)
					return c.List(ctx, opts)
				},
				func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
					withSelector(&opts)
					return c.Watch(ctx, opts)
				})
		},
	}
	eventsByType.m[selector] = r
	return r
}

// eventsByType keeps one Resource per selector: the cache keys informers by Resource name,
// and handing out the same pointer keeps Resource comparisons simple for callers.
var eventsByType = struct {
	mu sync.Mutex
	m  map[string]*Resource
}{m: map[string]*Resource{}}
