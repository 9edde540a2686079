package k8sriskreceiver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The fixture: objects that pass every check ("good"), and for every check an object that
// differs from a good one in what that check looks at. Names are prefixed per test run, so
// that the cluster-scoped ones do not collide.

const priorityClass = "k8srisk-test-high"

// goodSpec is a pod spec that passes every check of a pod template.
func goodSpec() corev1.PodSpec {
	probe := func(threshold int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, FailureThreshold: threshold}
	}
	return corev1.PodSpec{
		ServiceAccountName:           "app",
		AutomountServiceAccountToken: ptr.To(false),
		PriorityClassName:            priorityClass,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name: "app", Image: "registry.k8s.io/pause:3.10",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceEphemeralStorage: resource.MustParse("100Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("128Mi"), corev1.ResourceEphemeralStorage: resource.MustParse("200Mi")},
			},
			ReadinessProbe: probe(3), LivenessProbe: probe(6),
		}},
	}
}

// goodDeployment passes every check; edit changes it.
func goodDeployment(ns, name string, edit func(d *appsv1.Deployment)) *appsv1.Deployment {
	labels := map[string]string{"app": name, "pdb": "yes"}
	spec := goodSpec()
	spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
	}}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app.kubernetes.io/name": name}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
	if edit != nil {
		edit(d)
	}
	return d
}

func container(d *appsv1.Deployment) *corev1.Container { return &d.Spec.Template.Spec.Containers[0] }

// namespaceBasics are what a good namespace has: the workloads' ServiceAccount (no token),
// a ResourceQuota, a LimitRange, a default-deny NetworkPolicy and a PodDisruptionBudget for
// the pods labelled pdb=yes. Each can be left out.
type namespaceBasics struct{ noQuota, noNetpol bool }

func setUpNamespace(t *testing.T, cs kubernetes.Interface, ns string, b namespaceBasics) {
	t.Helper()
	ctx := context.Background()
	create(t, func() error {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}, AutomountServiceAccountToken: ptr.To(false)}, metav1.CreateOptions{})
		return err
	})
	if !b.noQuota {
		create(t, func() error {
			_, err := cs.CoreV1().ResourceQuotas(ns).Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "quota"},
				Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100")}}}, metav1.CreateOptions{})
			return err
		})
	}
	if !b.noNetpol {
		create(t, func() error {
			_, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default-deny"},
				Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}}, metav1.CreateOptions{})
			return err
		})
	}
	create(t, func() error {
		_, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb"},
			Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"pdb": "yes"}}}}, metav1.CreateOptions{})
		return err
	})
}

func create(t *testing.T, fn func() error) {
	t.Helper()
	require.NoError(t, fn())
}

// ensurePriorityClass creates the PriorityClass the good pods use, once per apiserver.
func ensurePriorityClass(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	_, err := cs.SchedulingV1().PriorityClasses().Create(context.Background(), &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: priorityClass}, Value: 1000,
	}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// deploymentCases are the failing Deployments of the main namespace and the checks each is
// expected to fail (advisory checks: warn).
func deploymentCases(ns string) map[string]struct {
	d    *appsv1.Deployment
	want []string
} {
	type tc = struct {
		d    *appsv1.Deployment
		want []string
	}
	d := func(name string, edit func(d *appsv1.Deployment), want ...string) tc {
		return tc{goodDeployment(ns, name, edit), want}
	}
	return map[string]tc{
		"good": d("good", nil),
		"privileged": d("privileged", func(d *appsv1.Deployment) {
			container(d).SecurityContext.Privileged = ptr.To(true)
			container(d).SecurityContext.AllowPrivilegeEscalation = nil // privileged escalates: the API refuses false
		}, "security.privilege-escalation=fail", "security.privileged-container=fail"),
		"escalation": d("escalation", func(d *appsv1.Deployment) {
			container(d).SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
		}, "security.privilege-escalation=fail"),
		"root": d("root", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
			d.Spec.Template.Spec.SecurityContext.RunAsUser = ptr.To[int64](0)
		}, "security.run-as-root=fail"),
		"caps-added": d("caps-added", func(d *appsv1.Deployment) {
			container(d).SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN", "NET_BIND_SERVICE"}
		}, "security.capabilities-added=fail"),
		"caps-kept": d("caps-kept", func(d *appsv1.Deployment) {
			container(d).SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"}
		}, "security.capabilities-not-dropped=fail"),
		"host-pid": d("host-pid", func(d *appsv1.Deployment) { d.Spec.Template.Spec.HostPID = true }, "security.host-namespaces=fail"),
		"host-path": d("host-path", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "logs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}}}
			container(d).VolumeMounts = []corev1.VolumeMount{{Name: "logs", MountPath: "/logs"}}
		}, "security.host-path=fail"),
		"host-port": d("host-port", func(d *appsv1.Deployment) { container(d).Ports[0].HostPort = 8080 }, "security.host-port=fail"),
		"writable-root": d("writable-root", func(d *appsv1.Deployment) {
			container(d).SecurityContext.ReadOnlyRootFilesystem = ptr.To(false)
		}, "security.read-only-root-filesystem=fail"),
		"no-seccomp": d("no-seccomp", func(d *appsv1.Deployment) { d.Spec.Template.Spec.SecurityContext.SeccompProfile = nil }, "security.seccomp-profile=fail"),
		// ServiceAccount tokenful leaves automountServiceAccountToken unset, so the token is mounted.
		"token": d("token", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.AutomountServiceAccountToken = nil
			d.Spec.Template.Spec.ServiceAccountName = "tokenful"
		}, "security.service-account-token-automount=fail"),
		// The default ServiceAccount mounts its token, but the pod says no.
		"default-sa": d("default-sa", func(d *appsv1.Deployment) { d.Spec.Template.Spec.ServiceAccountName = "" }, "security.default-service-account=warn"),
		"password": d("password", func(d *appsv1.Deployment) {
			container(d).Env = []corev1.EnvVar{{Name: "DB_PASSWORD", Value: "hunter2"}, {Name: "LOG_LEVEL", Value: "info"}}
		}, "security.credentials-in-env=fail"),
		"secret-env": d("secret-env", func(d *appsv1.Deployment) {
			container(d).Env = []corev1.EnvVar{{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
		}, "security.secrets-in-env=warn"),
		"latest":      d("latest", func(d *appsv1.Deployment) { container(d).Image = "registry.k8s.io/pause:latest" }, "security.image-tag=fail"),
		"no-liveness": d("no-liveness", func(d *appsv1.Deployment) { container(d).LivenessProbe = nil }, "reliability.probes=fail"),
		"same-probes": d("same-probes", func(d *appsv1.Deployment) {
			container(d).LivenessProbe = container(d).ReadinessProbe.DeepCopy()
		}, "reliability.probes-identical=warn"),
		"one-replica": d("one-replica", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](1) }, "reliability.replicas=fail"),
		"no-pdb":      d("no-pdb", func(d *appsv1.Deployment) { delete(d.Spec.Template.Labels, "pdb") }, "reliability.pod-disruption-budget=fail"),
		"zero-pdb":    d("zero-pdb", func(d *appsv1.Deployment) { d.Spec.Template.Labels["pdb"] = "zero" }, "reliability.pod-disruption-budget=fail"),
		"no-spread":   d("no-spread", func(d *appsv1.Deployment) { d.Spec.Template.Spec.TopologySpreadConstraints = nil }, "reliability.topology-spread=fail"),
		"no-requests": d("no-requests", func(d *appsv1.Deployment) {
			delete(container(d).Resources.Requests, corev1.ResourceCPU)
			delete(container(d).Resources.Requests, corev1.ResourceMemory)
		}, "performance-efficiency.resource-requests=fail"),
		"no-limits": d("no-limits", func(d *appsv1.Deployment) {
			delete(container(d).Resources.Limits, corev1.ResourceCPU)
			delete(container(d).Resources.Limits, corev1.ResourceMemory)
		}, "performance-efficiency.resource-limits=fail"),
		"no-ephemeral": d("no-ephemeral", func(d *appsv1.Deployment) {
			delete(container(d).Resources.Requests, corev1.ResourceEphemeralStorage)
			delete(container(d).Resources.Limits, corev1.ResourceEphemeralStorage)
		}, "performance-efficiency.ephemeral-storage=warn"),
		"no-priority": d("no-priority", func(d *appsv1.Deployment) { d.Spec.Template.Spec.PriorityClassName = "" }, "performance-efficiency.priority-class=warn"),
		"ratio": d("ratio", func(d *appsv1.Deployment) {
			container(d).Resources.Limits[corev1.ResourceMemory] = resource.MustParse("1Gi")
		}, "cost-optimization.request-limit-ratio=fail"),
		"unlabelled": d("unlabelled", func(d *appsv1.Deployment) { d.Labels = nil }, "operational-excellence.recommended-labels=warn"),
		"dup-env": d("dup-env", func(d *appsv1.Deployment) {
			container(d).Env = []corev1.EnvVar{{Name: "MODE", Value: "a"}, {Name: "MODE", Value: "b"}}
		}, "operational-excellence.duplicate-env=fail"),
		// Scaled by an autoscaler that keeps one replica.
		"hpa-target": d("hpa-target", nil, "reliability.replicas=fail"),
		"hpa-ok":     d("hpa-ok", nil),
	}
}

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

// others are the fixture's objects of the kinds other than workloads.
type others struct {
	svcs   []*corev1.Service
	ings   []*networkingv1.Ingress
	hpas   []*autoscalingv2.HorizontalPodAutoscaler
	roles  []*rbacv1.Role
	croles []*rbacv1.ClusterRole
	rbs    []*rbacv1.RoleBinding
	crbs   []*rbacv1.ClusterRoleBinding
	crons  []*batchv1.CronJob
}

// otherObjects returns the objects of the other kinds in namespace ns (cluster-scoped ones
// named with prefix).
func otherObjects(ns, prefix string) others {
	var o others
	svc := func(name string, edit func(s *corev1.Service)) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "good"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}
		if edit != nil {
			edit(s)
		}
		return s
	}
	o.svcs = []*corev1.Service{
		svc("svc-good", nil),
		svc("svc-external-ips", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.10"} }),
		svc("svc-node-port", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }),
		svc("svc-lb", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer }),
		svc("svc-orphan", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "nothing"} }),
	}
	ing := func(name string, tls bool) *networkingv1.Ingress {
		i := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: "svc-good", Port: networkingv1.ServiceBackendPort{Number: 80},
			}}},
		}
		if tls {
			i.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"shop.example.com"}, SecretName: "tls"}}
		}
		return i
	}
	o.ings = []*networkingv1.Ingress{ing("ing-tls", true), ing("ing-plain", false)}
	hpa := func(name, target string, minReplicas, maxReplicas int32) *autoscalingv2.HorizontalPodAutoscaler {
		return &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
				MinReplicas:    ptr.To(minReplicas), MaxReplicas: maxReplicas,
			},
		}
	}
	o.hpas = []*autoscalingv2.HorizontalPodAutoscaler{hpa("hpa-single", "hpa-target", 1, 1), hpa("hpa-good", "hpa-ok", 2, 4)}
	role := func(name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
		return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
	}
	r := func(group, res string, verbs ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{res}, Verbs: verbs}
	}
	o.roles = []*rbacv1.Role{
		role("role-good", r("", "configmaps", "get", "list")),
		role("role-wildcard", r("", "configmaps", "*")),
		role("role-secrets", r("", "secrets", "list")),
		role("role-exec", r("", "pods/exec", "create")),
		role("role-bind", r("rbac.authorization.k8s.io", "roles", "bind")),
		role("role-create-pods", r("", "pods", "create")),
	}
	o.croles = []*rbacv1.ClusterRole{
		{ObjectMeta: metav1.ObjectMeta{Name: prefix + "reader"}, Rules: []rbacv1.PolicyRule{r("", "pods", "get", "list")}},
		{ObjectMeta: metav1.ObjectMeta{Name: prefix + "everything"}, Rules: []rbacv1.PolicyRule{r("*", "*", "*")}},
	}
	alice := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}
	o.rbs = []*rbacv1.RoleBinding{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rb-good"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "role-good"}, Subjects: alice},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rb-admin"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}, Subjects: alice},
	}
	o.crbs = []*rbacv1.ClusterRoleBinding{
		{ObjectMeta: metav1.ObjectMeta{Name: prefix + "reader"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: prefix + "reader"}, Subjects: alice},
		{ObjectMeta: metav1.ObjectMeta{Name: prefix + "everything"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: prefix + "everything"}, Subjects: alice},
	}
	cron := func(name string, deadline *int64) *batchv1.CronJob {
		spec := goodSpec()
		spec.RestartPolicy = corev1.RestartPolicyNever
		return &batchv1.CronJob{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
			Spec: batchv1.CronJobSpec{
				Schedule: "0 3 * * *", Suspend: ptr.To(true), StartingDeadlineSeconds: deadline,
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: spec,
				}}},
			},
		}
	}
	o.crons = []*batchv1.CronJob{cron("cron-good", ptr.To[int64](60)), cron("cron-no-deadline", nil)}
	return o
}
