package checks

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// workloadResources are the kinds with pod templates, for the checks that look for the
// pods a selector matches before any exist (a Deployment scaled to zero).
var workloadResources = []*k8scache.Resource{
	k8scache.Deployments, k8scache.StatefulSets, k8scache.DaemonSets, k8scache.ReplicaSets, k8scache.Jobs, k8scache.CronJobs,
}

// The checks of Services, Ingresses, HorizontalPodAutoscalers, CronJobs, namespaces and nodes.
var objectChecks = []*Check{
	{
		ID: "security.service-external-ips", Title: "Service with externalIPs", Pillar: Security, Severity: High,
		Remediation: "Remove spec.externalIPs (anyone who can create Services can intercept traffic to those addresses, CVE-2020-8554); use a LoadBalancer or an Ingress.",
		Kinds:       []string{KindService}, Eval: func(_ *View, s *Subject) Outcome {
			if ips := s.Obj.(*corev1.Service).Spec.ExternalIPs; len(ips) > 0 {
				return outcomeOf(one("spec.externalIPs", strings.Join(ips, ",")))
			}
			return pass()
		},
	},
	{
		ID: "security.service-node-port", Title: "Service exposed on every node", Pillar: Security, Severity: Low,
		Remediation: "Use a ClusterIP Service behind an Ingress or a LoadBalancer instead of type NodePort.",
		KubeScore:   []string{"service-type"},
		Kinds:       []string{KindService}, Eval: func(_ *View, s *Subject) Outcome {
			if t := s.Obj.(*corev1.Service).Spec.Type; t == corev1.ServiceTypeNodePort {
				return outcomeOf(one("spec.type", string(t)))
			}
			return pass()
		},
	},
	{
		ID: "cost-optimization.load-balancer", Title: "Service with a load balancer of its own", Pillar: CostOptimization, Severity: Info, Advisory: true,
		Remediation: "Share one Ingress or Gateway between HTTP services instead of a cloud load balancer per Service.",
		Kinds:       []string{KindService}, Eval: func(_ *View, s *Subject) Outcome {
			if t := s.Obj.(*corev1.Service).Spec.Type; t == corev1.ServiceTypeLoadBalancer {
				return outcomeOf(one("spec.type", string(t)))
			}
			return pass()
		},
	},
	{
		ID: "reliability.service-selects-no-pods", Title: "Service selects no pods", Pillar: Reliability, Severity: Low,
		Remediation: "Fix spec.selector to match the labels of the pods that serve it, or delete the Service.",
		KubeScore:   []string{"service-targets-pod"},
		Kinds:       []string{KindService}, Needs: append([]*k8scache.Resource{k8scache.Pods}, workloadResources...), Eval: serviceTargets,
	},
	{
		ID: "security.ingress-tls", Title: "Ingress without TLS", Pillar: Security, Severity: Medium,
		Remediation: "Add spec.tls with a certificate for the Ingress hosts.",
		Polaris:     []string{"tlsSettingsMissing"}, Kubescape: []string{"C-0263"},
		Kinds: []string{KindIngress}, Eval: func(_ *View, s *Subject) Outcome {
			if len(s.Obj.(*networkingv1.Ingress).Spec.TLS) == 0 {
				return outcomeOf(one("spec.tls", unset))
			}
			return pass()
		},
	},
	{
		ID: "performance-efficiency.hpa-replicas", Title: "Autoscaler cannot keep two replicas or cannot scale", Pillar: PerformanceEfficiency, Severity: Low,
		Remediation: "Set minReplicas to at least 2 and maxReplicas above it.",
		Polaris:     []string{"hpaMinAvailability", "hpaMaxAvailability"}, KubeScore: []string{"horizontalpodautoscaler-replicas"},
		Kinds: []string{KindHPA}, Eval: func(_ *View, s *Subject) Outcome {
			h := s.Obj.(*autoscalingv2.HorizontalPodAutoscaler)
			minReplicas := int32(1)
			if h.Spec.MinReplicas != nil {
				minReplicas = *h.Spec.MinReplicas
			}
			var ev []schema.RiskEvidence
			if minReplicas < 2 {
				ev = append(ev, evidence("spec.minReplicas", strconv.Itoa(int(minReplicas))))
			}
			if h.Spec.MaxReplicas <= minReplicas {
				ev = append(ev, evidence("spec.maxReplicas", strconv.Itoa(int(h.Spec.MaxReplicas))))
			}
			return outcomeOf(ev)
		},
	},
	{
		ID: "reliability.cronjob-deadline", Title: "CronJob without a starting deadline", Pillar: Reliability, Severity: Low,
		Remediation: "Set spec.startingDeadlineSeconds, so that missed runs are skipped rather than started late all at once.",
		KubeScore:   []string{"cronjob-has-deadline"},
		Kinds:       []string{KindCronJob}, Eval: func(_ *View, s *Subject) Outcome {
			if s.Obj.(*batchv1.CronJob).Spec.StartingDeadlineSeconds == nil {
				return outcomeOf(one("spec.startingDeadlineSeconds", unset))
			}
			return pass()
		},
	},
	{
		ID: "performance-efficiency.namespace-quota", Title: "Namespace without ResourceQuota or LimitRange", Pillar: PerformanceEfficiency, Severity: Low,
		Remediation: "Add a ResourceQuota (and a LimitRange for default requests and limits) to the namespace.",
		Kinds:       []string{KindNamespace}, Needs: []*k8scache.Resource{k8scache.ResourceQuotas, k8scache.LimitRanges},
		Eval: func(v *View, s *Subject) Outcome {
			if len(v.Store(k8scache.ResourceQuotas).InNamespace(s.Object.Name)) > 0 || len(v.Store(k8scache.LimitRanges).InNamespace(s.Object.Name)) > 0 {
				return pass()
			}
			return outcomeOf([]schema.RiskEvidence{evidence("ResourceQuota", "none"), evidence("LimitRange", "none")})
		},
	},
	{
		ID: "sustainability.node-underutilized", Title: "Node mostly idle", Pillar: Sustainability, Severity: Info, Advisory: true,
		Remediation: "Consolidate: the pods on this node request less than 15% of its CPU and memory; a smaller node, or bin-packing by the autoscaler, would do.",
		Kinds:       []string{KindNode}, Needs: []*k8scache.Resource{k8scache.Pods}, Eval: nodeUtilization,
	},
}

// serviceTargets fails a Service whose selector matches no pod and no pod template in its
// namespace.
func serviceTargets(v *View, s *Subject) Outcome {
	svc := s.Obj.(*corev1.Service)
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return notApplicable() // endpoints managed by hand, or a DNS alias
	}
	sel := labels.SelectorFromValidatedSet(svc.Spec.Selector)
	for _, obj := range v.Store(k8scache.Pods).InNamespace(svc.Namespace) {
		if sel.Matches(labels.Set(obj.(*slim.Pod).Labels)) {
			return pass()
		}
	}
	for _, res := range workloadResources {
		for _, obj := range v.Store(res).InNamespace(svc.Namespace) {
			if sel.Matches(labels.Set(templateLabels(obj))) {
				return pass()
			}
		}
	}
	return outcomeOf(one("spec.selector", labelString(svc.Spec.Selector)+" matches no pod or pod template"))
}

func templateLabels(obj any) map[string]string {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Spec.Template.Labels
	case *appsv1.StatefulSet:
		return o.Spec.Template.Labels
	case *appsv1.DaemonSet:
		return o.Spec.Template.Labels
	case *appsv1.ReplicaSet:
		return o.Spec.Template.Labels
	case *batchv1.Job:
		return o.Spec.Template.Labels
	case *batchv1.CronJob:
		return o.Spec.JobTemplate.Spec.Template.Labels
	}
	return nil
}

// Nodes below this size are not worth consolidating.
var (
	minNodeCPU    = resource.MustParse("4")
	minNodeMemory = resource.MustParse("8Gi")
)

// underutilized is the share of allocatable CPU and memory below which a node is mostly idle.
const underutilized = 0.15

func nodeUtilization(v *View, s *Subject) Outcome {
	n := s.Obj.(*corev1.Node)
	cpu, mem := n.Status.Allocatable[corev1.ResourceCPU], n.Status.Allocatable[corev1.ResourceMemory]
	if n.Spec.Unschedulable || (cpu.Cmp(minNodeCPU) < 0 && mem.Cmp(minNodeMemory) < 0) {
		return notApplicable()
	}
	req := v.requestsOn(n.Name)
	cpuShare := float64(req.cpu) / float64(max(cpu.MilliValue(), 1))
	memShare := float64(req.memory) / float64(max(mem.Value(), 1))
	if cpuShare >= underutilized || memShare >= underutilized {
		return pass()
	}
	return outcomeOf([]schema.RiskEvidence{
		evidence("status.allocatable.cpu", cpu.String()+", "+percent(cpuShare)+" requested"),
		evidence("status.allocatable.memory", mem.String()+", "+percent(memShare)+" requested"),
	})
}

func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

// nodeRequests are the summed requests of the pods on a node (millicores and bytes).
type nodeRequests struct{ cpu, memory int64 }

// requestsOn sums the requests of the pods bound to node, from an index of all pods built
// once per View generation (InvalidatePods drops it).
func (v *View) requestsOn(node string) nodeRequests {
	if v.byNode == nil {
		v.byNode = map[string]nodeRequests{}
		for _, obj := range v.Store(k8scache.Pods).List() {
			p := obj.(*slim.Pod)
			if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.Spec.Resources == nil {
				continue
			}
			r := v.byNode[p.Spec.NodeName]
			r.cpu += p.Spec.Resources.Requests.Cpu().MilliValue()
			r.memory += p.Spec.Resources.Requests.Memory().Value()
			v.byNode[p.Spec.NodeName] = r
		}
	}
	return v.byNode[node]
}
