package k8scache

import (
	"context"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
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

	object    func() runtime.Object
	listWatch func(cl *clients, ns string) cache.ListerWatcherWithContext
	slim      func(obj any)
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

// Kinds the cache knows. Pods keep their metadata except annotations, their whole status,
// and of the spec only the node, service account, host network flag and the pod's
// resources: spec.resources, or else the sum of its containers' requests and limits (the
// containers themselves are dropped; their names and images are in the status). Pod
// templates of workloads keep the node, service account, host network flag and each
// container's name, image, ports and resources. Nodes drop status.images, which lists
// every image on the node.
var (
	Pods = &Resource{
		Name: "pods", Namespaced: true,
		object: func() runtime.Object { return &corev1.Pod{} },
		listWatch: func(cl *clients, ns string) cache.ListerWatcherWithContext {
			c := cl.typed.CoreV1().Pods(ns)
			return listWatch(c.List, c.Watch)
		},
		slim: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				slimPod(p)
			}
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
				slimPodSpec(&d.Spec.Template.Spec)
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
				slimPodSpec(&s.Spec.Template.Spec)
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
				slimPodSpec(&d.Spec.Template.Spec)
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
				slimPodSpec(&r.Spec.Template.Spec)
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
				slimPodSpec(&j.Spec.Template.Spec)
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
				slimPodSpec(&j.Spec.JobTemplate.Spec.Template.Spec)
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

// slimPod reduces a pod to what consumers read: a cached pod then costs about half of
// what a full one does. It is idempotent, as transforms must be.
func slimPod(p *corev1.Pod) {
	p.Annotations = nil
	res := p.Spec.Resources
	if res == nil && len(p.Spec.Containers) > 0 {
		res = sumResources(p.Spec.Containers)
	}
	p.Spec = corev1.PodSpec{
		NodeName:           p.Spec.NodeName,
		ServiceAccountName: p.Spec.ServiceAccountName,
		HostNetwork:        p.Spec.HostNetwork,
		Resources:          res,
	}
}

// sumResources adds up the containers' requests and limits; nil when there are none.
func sumResources(cs []corev1.Container) *corev1.ResourceRequirements {
	var req, lim corev1.ResourceList
	add := func(dst *corev1.ResourceList, src corev1.ResourceList) {
		for name, q := range src {
			if *dst == nil {
				*dst = corev1.ResourceList{}
			}
			sum := (*dst)[name]
			sum.Add(q)
			(*dst)[name] = sum
		}
	}
	for i := range cs {
		add(&req, cs[i].Resources.Requests)
		add(&lim, cs[i].Resources.Limits)
	}
	if req == nil && lim == nil {
		return nil
	}
	return &corev1.ResourceRequirements{Requests: req, Limits: lim}
}

// slimPodSpec keeps what consumers read of a pod spec and drops the rest (volumes, env,
// probes, scheduling constraints, ...), which is most of a pod's memory.
func slimPodSpec(s *corev1.PodSpec) {
	*s = corev1.PodSpec{
		NodeName:           s.NodeName,
		ServiceAccountName: s.ServiceAccountName,
		HostNetwork:        s.HostNetwork,
		Containers:         slimContainers(s.Containers),
		InitContainers:     slimContainers(s.InitContainers),
	}
}

func slimContainers(in []corev1.Container) []corev1.Container {
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
