package checks

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// Links of attack chains (RiskChainStep.Link).
const (
	LinkExposure        = "exposure"
	LinkHostAccess      = "host-access"
	LinkPowerfulAccount = "powerful-service-account"
	LinkNoEgressPolicy  = "no-egress-policy"
	LinkNoIngressPolicy = "no-ingress-policy"
	LinkObservedFlow    = "observed-flow"
)

// maxListed bounds the flows and workloads one chain lists.
const maxListed = 10

var rbacResources = []*k8scache.Resource{k8scache.Roles, k8scache.ClusterRoles, k8scache.RoleBindings, k8scache.ClusterRoleBindings}

// Attack chains: findings that join several objects (and observed traffic), which no check
// of one object finds.
var chainChecks = []*Check{
	{
		ID: "security.chain-external-to-cluster-takeover", Title: "Exposed workload with host access and a powerful service account",
		Pillar: Security, Severity: Critical,
		Remediation: "Break any link: stop exposing the workload, remove its privileged/hostPath/host-namespace access, or take the Secret-reading and pod-creating permissions away from its ServiceAccount.",
		Kubescape:   []string{"C-0256", "C-0267"},
		Needs:       slices.Concat([]*k8scache.Resource{k8scache.Services, k8scache.Ingresses, k8scache.Pods}, workloadResources, rbacResources),
		Chains:      externalToTakeover,
	},
	{
		ID: "security.chain-unrestricted-egress-to-control-plane", Title: "Workload without egress policy seen talking to the control plane",
		Pillar: Security, Severity: High,
		Remediation: "Add an egress NetworkPolicy for the workload that allows only what it needs; if it must reach the API server, allow just that and give its ServiceAccount least privilege.",
		Kubescape:   []string{"C-0260"},
		Needs:       slices.Concat([]*k8scache.Resource{k8scache.NetworkPolicies, k8scache.Pods}, workloadResources), NeedsFlows: true,
		Chains: egressToControlPlane,
	},
	{
		ID: "security.chain-cross-namespace-ingress-unprotected", Title: "Namespace reached from other namespaces without ingress policy",
		Pillar: Security, Severity: High,
		Remediation: "Add ingress NetworkPolicies in the namespace (a default-deny plus the namespaces and workloads that may call in).",
		Kubescape:   []string{"C-0260"}, CIS: []string{"5.3.2"},
		Needs: slices.Concat([]*k8scache.Resource{k8scache.NetworkPolicies, k8scache.Namespaces, k8scache.Pods}, workloadResources), NeedsFlows: true,
		Chains: crossNamespaceIngress,
	},
}

// workloadsIn returns the workload subjects (pod templates and pods no template describes)
// of namespace ns.
func workloadsIn(v *View, ns string) []*Subject {
	var out []*Subject
	for _, res := range append(slices.Clip(workloadResources), k8scache.Pods) {
		for _, obj := range v.Store(res).InNamespace(ns) {
			if s, ok := NewSubject(v, res, obj); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// workloadNamed finds the workload subject a flow endpoint names.
func workloadNamed(v *View, p flowgraph.Peer) (*Subject, bool) {
	res, ok := resourceOfKind[p.Kind]
	if !ok {
		return nil, false
	}
	obj, ok := v.Store(res).Get(p.Namespace, p.Name)
	if !ok {
		return nil, false
	}
	return NewSubject(v, res, obj)
}

var resourceOfKind = map[string]*k8scache.Resource{
	KindDeployment: k8scache.Deployments, KindStatefulSet: k8scache.StatefulSets, KindDaemonSet: k8scache.DaemonSets,
	KindReplicaSet: k8scache.ReplicaSets, KindJob: k8scache.Jobs, KindCronJob: k8scache.CronJobs, KindPod: k8scache.Pods,
}

// exposure is how a Service is reachable from outside the cluster.
type exposure struct {
	step schema.RiskChainStep
	svc  *corev1.Service
}

// exposures returns the Services reachable from outside the cluster: LoadBalancer and
// NodePort Services, Services with externalIPs, and the backends of Ingresses.
func exposures(v *View) []exposure {
	var out []exposure
	for _, obj := range v.Store(k8scache.Services).List() {
		svc := obj.(*corev1.Service)
		var ev []schema.RiskEvidence
		if t := svc.Spec.Type; t == corev1.ServiceTypeLoadBalancer || t == corev1.ServiceTypeNodePort {
			ev = append(ev, evidence("spec.type", string(t)))
		}
		if len(svc.Spec.ExternalIPs) > 0 {
			ev = append(ev, evidence("spec.externalIPs", strings.Join(svc.Spec.ExternalIPs, ",")))
		}
		if len(ev) > 0 {
			out = append(out, exposure{svc: svc, step: schema.RiskChainStep{Link: LinkExposure, Object: serviceObject(svc), Evidence: ev}})
		}
	}
	for _, obj := range v.Store(k8scache.Ingresses).List() {
		ing := obj.(*networkingv1.Ingress)
		for _, name := range ingressBackends(ing) {
			o, ok := v.Store(k8scache.Services).Get(ing.Namespace, name)
			if !ok {
				continue
			}
			out = append(out, exposure{svc: o.(*corev1.Service), step: schema.RiskChainStep{
				Link:     LinkExposure,
				Object:   schema.RiskObject{APIVersion: "networking.k8s.io/v1", Kind: KindIngress, Namespace: ing.Namespace, Name: ing.Name, UID: string(ing.UID)},
				Evidence: []schema.RiskEvidence{evidence("backend", "Service "+name)},
			}})
		}
	}
	return out
}

func serviceObject(svc *corev1.Service) schema.RiskObject {
	return schema.RiskObject{APIVersion: "v1", Kind: KindService, Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID)}
}

func ingressBackends(ing *networkingv1.Ingress) []string {
	var names []string
	add := func(b *networkingv1.IngressBackend) {
		if b != nil && b.Service != nil && !slices.Contains(names, b.Service.Name) {
			names = append(names, b.Service.Name)
		}
	}
	add(ing.Spec.DefaultBackend)
	for _, r := range ing.Spec.Rules {
		if r.HTTP != nil {
			for i := range r.HTTP.Paths {
				add(&r.HTTP.Paths[i].Backend)
			}
		}
	}
	return names
}

// externalToTakeover: an exposed Service (or Ingress) selects a workload that runs
// privileged, with a hostPath or in host namespaces, whose ServiceAccount can read Secrets
// in every namespace or create pods.
func externalToTakeover(v *View) []Chain {
	type found struct {
		s        *Subject
		exposure []schema.RiskChainStep
	}
	byWorkload := map[string]*found{}
	var order []string
	for _, e := range exposures(v) {
		if len(e.svc.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromValidatedSet(e.svc.Spec.Selector)
		for _, s := range workloadsIn(v, e.svc.Namespace) {
			if !sel.Matches(labels.Set(s.PodLabels)) || s.Spec == nil {
				continue
			}
			key := s.Object.UID
			f := byWorkload[key]
			if f == nil {
				f = &found{s: s}
				byWorkload[key] = f
				order = append(order, key)
			}
			f.exposure = append(f.exposure, e.step)
		}
	}
	var out []Chain
	for _, key := range order {
		f := byWorkload[key]
		host := hostAccess(f.s)
		if len(host) == 0 {
			continue
		}
		sa := saName(f.s.Spec)
		powers := v.powers(f.s.Object.Namespace, sa)
		if len(powers) == 0 {
			continue
		}
		steps := slices.Clone(f.exposure)
		if seen := inboundFromWorld(v, f.s); len(seen) > 0 {
			steps[0].Evidence = append(slices.Clip(steps[0].Evidence), seen...)
		}
		steps = append(steps,
			schema.RiskChainStep{Link: LinkHostAccess, Object: f.s.Object, Evidence: host},
			schema.RiskChainStep{Link: LinkPowerfulAccount, Object: schema.RiskObject{APIVersion: "v1", Kind: "ServiceAccount", Namespace: f.s.Object.Namespace, Name: sa}, Evidence: powers},
		)
		out = append(out, Chain{
			Anchor: f.s.Object, AnchorMeta: f.s.Meta, WorkloadKind: f.s.WorkloadKind, WorkloadName: f.s.WorkloadName, Steps: steps,
			Message: fmt.Sprintf("%s is exposed outside the cluster, can reach its node, and its ServiceAccount %s can take over the cluster", f.s, sa),
		})
	}
	return out
}

// hostAccess is the evidence that a workload's pods can reach their node: privileged
// containers, hostPath volumes, host namespaces.
func hostAccess(s *Subject) []schema.RiskEvidence {
	var ev []schema.RiskEvidence
	for _, cs := range []struct {
		list []corev1.Container
		key  string
	}{{s.Spec.InitContainers, "initContainers"}, {s.Spec.Containers, "containers"}} {
		for _, c := range cs.list {
			if c.SecurityContext != nil && isTrue(c.SecurityContext.Privileged) {
				ev = append(ev, evidence(s.SpecPath+"."+cs.key+"["+c.Name+"].securityContext.privileged", "true"))
			}
		}
	}
	for _, vol := range s.Spec.Volumes {
		if vol.HostPath != nil {
			ev = append(ev, evidence(s.SpecPath+".volumes["+vol.Name+"].hostPath.path", vol.HostPath.Path))
		}
	}
	return append(ev, hostNamespaces(nil, s)...)
}

// inboundFromWorld is the observed traffic from outside the cluster to a workload, as
// evidence that its exposure is used.
func inboundFromWorld(v *View, s *Subject) []schema.RiskEvidence {
	if v.Flows == nil {
		return nil
	}
	var ev []schema.RiskEvidence
	for _, e := range v.Flows() {
		if e.Src.Reserved == flowgraph.ReservedWorld && e.Dst.Namespace == s.Object.Namespace &&
			e.Dst.Kind == s.WorkloadKind && e.Dst.Name == s.WorkloadName && len(ev) < maxListed {
			ev = append(ev, evidence("observed inbound from "+flowgraph.ReservedWorld, flowString(&e)))
		}
	}
	return ev
}

func flowString(e *flowgraph.Stat) string {
	port := e.Protocol
	if e.Port != 0 {
		port = fmt.Sprintf("%s/%d", e.Protocol, e.Port)
	}
	return fmt.Sprintf("%s, %d flows, last %s", port, e.Count, e.Last.UTC().Format(time.RFC3339))
}

func peerString(p flowgraph.Peer) string {
	if p.Reserved != "" {
		return p.Reserved
	}
	return p.Namespace + "/" + p.Kind + "/" + p.Name
}

// isDNS: name lookups go to the cluster DNS in kube-system from every pod; they say nothing
// about exposure.
func isDNS(e *flowgraph.Stat) bool { return e.Port == 53 }

// egressToControlPlane: a workload that no egress NetworkPolicy isolates was seen talking
// to the API server or to kube-system (DNS aside).
func egressToControlPlane(v *View) []Chain {
	type found struct {
		s     *Subject
		flows []schema.RiskEvidence
	}
	bySource := map[string]*found{}
	var order []string
	for _, e := range v.Flows() {
		if isDNS(&e) || e.Src.Reserved != "" || e.Src.Namespace == metav1NamespaceSystem {
			continue
		}
		if e.Dst.Reserved != flowgraph.ReservedKubeAPIServer && (e.Dst.Reserved != "" || e.Dst.Namespace != metav1NamespaceSystem) {
			continue
		}
		s, ok := workloadNamed(v, e.Src)
		if !ok || s.Spec == nil {
			continue
		}
		key := s.Object.UID
		f := bySource[key]
		if f == nil {
			if _, egress := policyTypesSelecting(v, s.Object.Namespace, s.PodLabels); egress {
				continue
			}
			f = &found{s: s}
			bySource[key] = f
			order = append(order, key)
		}
		if len(f.flows) < maxListed {
			f.flows = append(f.flows, evidence("to "+peerString(e.Dst), flowString(&e)))
		}
	}
	var out []Chain
	for _, key := range order {
		f := bySource[key]
		slices.SortFunc(f.flows, func(a, b schema.RiskEvidence) int { return strings.Compare(a.Path, b.Path) })
		out = append(out, Chain{
			Anchor: f.s.Object, AnchorMeta: f.s.Meta, WorkloadKind: f.s.WorkloadKind, WorkloadName: f.s.WorkloadName,
			Steps: []schema.RiskChainStep{
				{Link: LinkNoEgressPolicy, Object: f.s.Object, Evidence: one("NetworkPolicy (Egress) selecting "+labelString(f.s.PodLabels), "none")},
				{Link: LinkObservedFlow, Object: f.s.Object, Evidence: f.flows},
			},
			Message: fmt.Sprintf("%s has no egress NetworkPolicy and was seen talking to the control plane", f.s),
		})
	}
	return out
}

const metav1NamespaceSystem = "kube-system"

// crossNamespaceIngress: workloads of a namespace that no ingress NetworkPolicy isolates
// were seen receiving traffic from other namespaces (DNS aside).
func crossNamespaceIngress(v *View) []Chain {
	type target struct {
		s     *Subject
		flows []schema.RiskEvidence
	}
	byNamespace := map[string]map[string]*target{}
	var order []string
	for _, e := range v.Flows() {
		if isDNS(&e) || e.Src.Reserved != "" || e.Src.Namespace == "" || e.Dst.Reserved != "" || e.Src.Namespace == e.Dst.Namespace {
			continue
		}
		s, ok := workloadNamed(v, e.Dst)
		if !ok {
			continue
		}
		targets := byNamespace[e.Dst.Namespace]
		if targets == nil {
			targets = map[string]*target{}
			byNamespace[e.Dst.Namespace] = targets
			order = append(order, e.Dst.Namespace)
		}
		t := targets[s.Object.UID]
		if t == nil {
			if ingress, _ := policyTypesSelecting(v, s.Object.Namespace, s.PodLabels); ingress {
				continue
			}
			t = &target{s: s}
			targets[s.Object.UID] = t
		}
		if len(t.flows) < maxListed {
			t.flows = append(t.flows, evidence("from "+peerString(e.Src)+" to "+s.Object.Kind+"/"+s.Object.Name, flowString(&e)))
		}
	}
	var out []Chain
	for _, ns := range order {
		targets := byNamespace[ns]
		if len(targets) == 0 {
			continue
		}
		obj, ok := v.Store(k8scache.Namespaces).Get("", ns)
		if !ok {
			continue
		}
		n := obj.(*corev1.Namespace)
		anchor := schema.RiskObject{APIVersion: "v1", Kind: KindNamespace, Name: n.Name, UID: string(n.UID)}
		list := make([]*target, 0, len(targets))
		for _, t := range targets {
			list = append(list, t)
		}
		slices.SortFunc(list, func(a, b *target) int { return strings.Compare(a.s.Object.Name, b.s.Object.Name) })
		var flows, unprotected []schema.RiskEvidence
		for _, t := range list[:min(len(list), maxListed)] {
			slices.SortFunc(t.flows, func(a, b schema.RiskEvidence) int { return strings.Compare(a.Path, b.Path) })
			flows = append(flows, t.flows...)
			unprotected = append(unprotected, evidence(t.s.Object.Kind+"/"+t.s.Object.Name+": NetworkPolicy (Ingress) selecting "+labelString(t.s.PodLabels), "none"))
		}
		out = append(out, Chain{
			Anchor: anchor, AnchorMeta: &n.ObjectMeta,
			Steps: []schema.RiskChainStep{
				{Link: LinkObservedFlow, Object: anchor, Evidence: flows},
				{Link: LinkNoIngressPolicy, Object: anchor, Evidence: unprotected},
			},
			Message: fmt.Sprintf("namespace %s is reached from other namespaces and %d of the workloads reached have no ingress NetworkPolicy", ns, len(list)),
		})
	}
	return out
}
