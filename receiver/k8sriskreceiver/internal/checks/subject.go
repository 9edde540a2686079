package checks

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// Subject is one object the checks evaluate.
type Subject struct {
	Resource *k8scache.Resource
	Object   schema.RiskObject
	Meta     *metav1.ObjectMeta
	Obj      any
	// WorkloadKind and WorkloadName name the workload that owns the object: the object
	// itself for workloads, the controller of a pod or ReplicaSet whose controller is not
	// cached (e.g. an Argo Rollout), empty for other objects.
	WorkloadKind, WorkloadName string

	// Workloads: the pod template's spec (slimmed, see k8scache.SlimPodSpec), the path of the
	// spec in the object, the labels of its pods and the desired replicas (Deployments,
	// StatefulSets and ReplicaSets; nil for other kinds). Spec is nil for a pod whose spec
	// could not be read (SpecErr).
	Spec      *corev1.PodSpec
	SpecErr   error
	SpecPath  string
	PodLabels map[string]string
	Replicas  *int32
}

// Kinds of the objects the checks evaluate.
const (
	KindDeployment         = "Deployment"
	KindStatefulSet        = "StatefulSet"
	KindDaemonSet          = "DaemonSet"
	KindReplicaSet         = "ReplicaSet"
	KindJob                = "Job"
	KindCronJob            = "CronJob"
	KindPod                = "Pod"
	KindService            = "Service"
	KindIngress            = "Ingress"
	KindHPA                = "HorizontalPodAutoscaler"
	KindNamespace          = "Namespace"
	KindNode               = "Node"
	KindRole               = "Role"
	KindClusterRole        = "ClusterRole"
	KindRoleBinding        = "RoleBinding"
	KindClusterRoleBinding = "ClusterRoleBinding"
)

var (
	workloadKinds = []string{KindDeployment, KindStatefulSet, KindDaemonSet, KindReplicaSet, KindJob, KindCronJob, KindPod}
	// longRunning workloads serve traffic; Jobs and CronJobs run to completion.
	longRunning = []string{KindDeployment, KindStatefulSet, KindDaemonSet, KindReplicaSet, KindPod}
	replicated  = []string{KindDeployment, KindStatefulSet}
)

// SubjectResources are the resources whose objects can be subjects, in the order a full
// assessment goes through them.
var SubjectResources = []*k8scache.Resource{
	k8scache.Namespaces, k8scache.Nodes,
	k8scache.Deployments, k8scache.StatefulSets, k8scache.DaemonSets, k8scache.ReplicaSets, k8scache.Jobs, k8scache.CronJobs, k8scache.Pods,
	k8scache.Services, k8scache.Ingresses, k8scache.HorizontalPodAutoscalers,
	k8scache.Roles, k8scache.ClusterRoles, k8scache.RoleBindings, k8scache.ClusterRoleBindings,
}

// describedByTemplate are the controllers of pods whose cached templates the checks read
// instead of the pods.
var describedByTemplate = map[string]bool{KindReplicaSet: true, KindStatefulSet: true, KindDaemonSet: true, KindJob: true}

// PodNeedsSpec reports whether a pod is a subject of its own: no cached template describes
// it, so the receiver must read its spec.
func PodNeedsSpec(p *slim.Pod) bool {
	c := metav1.GetControllerOfNoCopy(p)
	return c == nil || !describedByTemplate[c.Kind]
}

// NewSubject returns the subject for obj, an object of res; false when the checks do not
// evaluate it (a ReplicaSet of a Deployment, a Job of a CronJob, a pod of a controller
// with a cached template, an object of another kind).
func NewSubject(v *View, res *k8scache.Resource, obj any) (*Subject, bool) {
	s := &Subject{Resource: res, Obj: obj}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		s.workload(&o.ObjectMeta, "apps/v1", KindDeployment, &o.Spec.Template, "spec.template.spec")
		s.Replicas = replicasOf(o.Spec.Replicas)
	case *appsv1.StatefulSet:
		s.workload(&o.ObjectMeta, "apps/v1", KindStatefulSet, &o.Spec.Template, "spec.template.spec")
		s.Replicas = replicasOf(o.Spec.Replicas)
	case *appsv1.DaemonSet:
		s.workload(&o.ObjectMeta, "apps/v1", KindDaemonSet, &o.Spec.Template, "spec.template.spec")
	case *appsv1.ReplicaSet:
		if controlledBy(&o.ObjectMeta, KindDeployment) {
			return nil, false
		}
		s.workload(&o.ObjectMeta, "apps/v1", KindReplicaSet, &o.Spec.Template, "spec.template.spec")
		s.Replicas = replicasOf(o.Spec.Replicas)
	case *batchv1.Job:
		if controlledBy(&o.ObjectMeta, KindCronJob) {
			return nil, false
		}
		s.workload(&o.ObjectMeta, "batch/v1", KindJob, &o.Spec.Template, "spec.template.spec")
	case *batchv1.CronJob:
		s.workload(&o.ObjectMeta, "batch/v1", KindCronJob, &o.Spec.JobTemplate.Spec.Template, "spec.jobTemplate.spec.template.spec")
	case *slim.Pod:
		if !PodNeedsSpec(o) {
			return nil, false
		}
		s.set(&o.ObjectMeta, "v1", KindPod)
		s.WorkloadKind, s.WorkloadName = KindPod, o.Name
		if c := metav1.GetControllerOfNoCopy(o); c != nil {
			s.WorkloadKind, s.WorkloadName = c.Kind, c.Name
		}
		s.SpecPath, s.PodLabels = "spec", o.Labels
		// The cached pod keeps neither its spec nor its annotations; the receiver reads both.
		meta := o.ObjectMeta
		meta.Annotations = nil
		s.Meta = &meta
		ps, ok := v.PodSpecs(o.UID)
		switch {
		case !ok:
			s.SpecErr = errNotRead
		case ps.Err != nil:
			s.SpecErr = ps.Err
		default:
			s.Spec = ps.Spec
			meta.Annotations = ps.Annotations
		}
	case *corev1.Service:
		s.set(&o.ObjectMeta, "v1", KindService)
	case *networkingv1.Ingress:
		s.set(&o.ObjectMeta, "networking.k8s.io/v1", KindIngress)
	case *autoscalingv2.HorizontalPodAutoscaler:
		s.set(&o.ObjectMeta, "autoscaling/v2", KindHPA)
	case *corev1.Namespace:
		s.set(&o.ObjectMeta, "v1", KindNamespace)
	case *corev1.Node:
		s.set(&o.ObjectMeta, "v1", KindNode)
	case *rbacv1.Role:
		s.set(&o.ObjectMeta, "rbac.authorization.k8s.io/v1", KindRole)
	case *rbacv1.ClusterRole:
		s.set(&o.ObjectMeta, "rbac.authorization.k8s.io/v1", KindClusterRole)
	case *rbacv1.RoleBinding:
		s.set(&o.ObjectMeta, "rbac.authorization.k8s.io/v1", KindRoleBinding)
	case *rbacv1.ClusterRoleBinding:
		s.set(&o.ObjectMeta, "rbac.authorization.k8s.io/v1", KindClusterRoleBinding)
	default:
		return nil, false
	}
	return s, true
}

type specError string

func (e specError) Error() string { return string(e) }

// errNotRead: the receiver has not read the pod's spec yet.
const errNotRead = specError("the pod's spec has not been read yet")

func (s *Subject) set(m *metav1.ObjectMeta, apiVersion, kind string) {
	s.Meta = m
	s.Object = schema.RiskObject{APIVersion: apiVersion, Kind: kind, Namespace: m.Namespace, Name: m.Name, UID: string(m.UID)}
}

func (s *Subject) workload(m *metav1.ObjectMeta, apiVersion, kind string, t *corev1.PodTemplateSpec, path string) {
	s.set(m, apiVersion, kind)
	s.WorkloadKind, s.WorkloadName = kind, m.Name
	if c := metav1.GetControllerOfNoCopy(m); c != nil {
		s.WorkloadKind, s.WorkloadName = c.Kind, c.Name
	}
	s.Spec, s.SpecPath, s.PodLabels = &t.Spec, path, t.Labels
}

func controlledBy(m *metav1.ObjectMeta, kind string) bool {
	c := metav1.GetControllerOfNoCopy(m)
	return c != nil && c.Kind == kind
}

// replicasOf is the desired replica count: the API's default is 1.
func replicasOf(r *int32) *int32 {
	if r == nil {
		one := int32(1)
		return &one
	}
	return r
}

// String names the subject's object, for messages.
func (s *Subject) String() string {
	if s.Object.Namespace == "" {
		return s.Object.Kind + " " + s.Object.Name
	}
	return s.Object.Kind + " " + s.Object.Namespace + "/" + s.Object.Name
}
