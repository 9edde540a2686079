package checks

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// The checks of workloads' pod templates and of pods no template describes.
var workloadChecks = []*Check{
	{
		ID: "security.privileged-container", Title: "Privileged container", Pillar: Security, Severity: Critical,
		Remediation: "Remove securityContext.privileged (or set it to false); grant only the capabilities the process needs.",
		Polaris:     []string{"runAsPrivileged"}, KubeScore: []string{"container-security-context-privileged"},
		Kubescape: []string{"C-0057"}, CIS: []string{"5.2.2"},
		Kinds: workloadKinds, Eval: containerCheck(func(c *corev1.Container, _ *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			if c.SecurityContext != nil && isTrue(c.SecurityContext.Privileged) {
				return one(path+".securityContext.privileged", "true")
			}
			return nil
		}),
	},
	{
		ID: "security.privilege-escalation", Title: "Privilege escalation allowed", Pillar: Security, Severity: High,
		Remediation: "Set securityContext.allowPrivilegeEscalation: false in every container.",
		Polaris:     []string{"privilegeEscalationAllowed"}, Kubescape: []string{"C-0016"}, CIS: []string{"5.2.6"},
		Kinds: workloadKinds, Eval: containerCheck(func(c *corev1.Container, _ *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil {
				return one(path+".securityContext.allowPrivilegeEscalation", unset)
			}
			if *c.SecurityContext.AllowPrivilegeEscalation {
				return one(path+".securityContext.allowPrivilegeEscalation", "true")
			}
			return nil
		}),
	},
	{
		ID: "security.run-as-root", Title: "Container may run as root", Pillar: Security, Severity: Medium,
		Remediation: "Set securityContext.runAsNonRoot: true and a non-zero runAsUser (pod or container).",
		Polaris:     []string{"runAsRootAllowed"}, KubeScore: []string{"container-security-context-user-group-id"},
		Kubescape: []string{"C-0013"}, CIS: []string{"5.2.7"},
		Kinds: workloadKinds, Eval: containerCheck(func(c *corev1.Container, psc *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			nonRoot, nonRootPath := effective(c, psc, path,
				func(sc *corev1.SecurityContext) *bool { return sc.RunAsNonRoot },
				func(sc *corev1.PodSecurityContext) *bool { return sc.RunAsNonRoot }, ".runAsNonRoot")
			user, userPath := effective(c, psc, path,
				func(sc *corev1.SecurityContext) *int64 { return sc.RunAsUser },
				func(sc *corev1.PodSecurityContext) *int64 { return sc.RunAsUser }, ".runAsUser")
			switch {
			case user != nil && *user == 0:
				return one(userPath, "0")
			case isTrue(nonRoot) || user != nil:
				return nil
			case nonRoot != nil:
				return []schema.RiskEvidence{evidence(nonRootPath, "false"), evidence(userPath, unset)}
			}
			return []schema.RiskEvidence{evidence(nonRootPath, unset), evidence(userPath, unset)}
		}),
	},
	{
		ID: "security.capabilities-added", Title: "Capabilities beyond the baseline added", Pillar: Security, Severity: High,
		Remediation: "Remove the capabilities outside the Pod Security Standards' baseline set from securityContext.capabilities.add.",
		Polaris:     []string{"dangerousCapabilities", "insecureCapabilities"}, Kubescape: []string{"C-0046"}, CIS: []string{"5.2.9"},
		Kinds: workloadKinds, Eval: containerCheck(func(c *corev1.Container, _ *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
				return nil
			}
			var bad []string
			for _, capability := range c.SecurityContext.Capabilities.Add {
				if !baselineCapabilities[strings.TrimPrefix(strings.ToUpper(string(capability)), "CAP_")] {
					bad = append(bad, string(capability))
				}
			}
			if len(bad) == 0 {
				return nil
			}
			return one(path+".securityContext.capabilities.add", strings.Join(bad, ","))
		}),
	},
	{
		ID: "security.capabilities-not-dropped", Title: "Capabilities not dropped", Pillar: Security, Severity: Low,
		Remediation: "Add securityContext.capabilities.drop: [ALL] and add back only what the process needs.",
		Kubescape:   []string{"C-0046"}, CIS: []string{"5.2.10"},
		Kinds: workloadKinds, Eval: containerCheck(func(c *corev1.Container, _ *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			if c.SecurityContext != nil && c.SecurityContext.Capabilities != nil &&
				slices.ContainsFunc(c.SecurityContext.Capabilities.Drop, func(x corev1.Capability) bool { return strings.EqualFold(string(x), "ALL") }) {
				return nil
			}
			return one(path+".securityContext.capabilities.drop", "does not contain ALL")
		}),
	},
	{
		ID: "security.host-namespaces", Title: "Host namespaces shared", Pillar: Security, Severity: High,
		Remediation: "Remove hostPID, hostIPC and hostNetwork from the pod spec.",
		Polaris:     []string{"hostPIDSet", "hostIPCSet", "hostNetworkSet"}, Kubescape: []string{"C-0038", "C-0041"},
		CIS:   []string{"5.2.3", "5.2.4", "5.2.5"},
		Kinds: workloadKinds, Eval: specCheck(hostNamespaces),
	},
	{
		ID: "security.host-path", Title: "Host path mounted", Pillar: Security, Severity: High,
		Remediation: "Replace hostPath volumes with emptyDir, ConfigMap, Secret or persistent volumes; if one is unavoidable, mount it read-only.",
		Polaris:     []string{"hostPathSet"}, Kubescape: []string{"C-0048", "C-0045", "C-0074"}, CIS: []string{"5.2.12"},
		Kinds: workloadKinds, Eval: specCheck(hostPaths),
	},
	{
		ID: "security.host-port", Title: "Host port used", Pillar: Security, Severity: Medium,
		Remediation: "Remove hostPort from the container ports; expose the pods through a Service.",
		Polaris:     []string{"hostPortSet"}, Kubescape: []string{"C-0044"}, CIS: []string{"5.2.13"},
		Kinds: workloadKinds, Eval: containerCheck(func(c *corev1.Container, _ *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			var ev []schema.RiskEvidence
			for i, p := range c.Ports {
				if p.HostPort != 0 {
					ev = append(ev, evidence(fmt.Sprintf("%s.ports[%d].hostPort", path, i), strconv.Itoa(int(p.HostPort))))
				}
			}
			return ev
		}),
	},
	{
		ID: "security.read-only-root-filesystem", Title: "Writable root filesystem", Pillar: Security, Severity: Low,
		Remediation: "Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes where the process writes.",
		Polaris:     []string{"notReadOnlyRootFilesystem"}, KubeScore: []string{"container-security-context-readonlyrootfilesystem"},
		Kubescape: []string{"C-0017"},
		Kinds:     workloadKinds, Eval: containerCheck(func(c *corev1.Container, _ *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			if c.SecurityContext != nil && isTrue(c.SecurityContext.ReadOnlyRootFilesystem) {
				return nil
			}
			return one(path+".securityContext.readOnlyRootFilesystem", unsetOr(c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil, "false"))
		}),
	},
	{
		ID: "security.seccomp-profile", Title: "No seccomp profile", Pillar: Security, Severity: Low,
		Remediation: "Set securityContext.seccompProfile.type: RuntimeDefault on the pod (or Localhost with a profile).",
		Polaris:     []string{"linuxHardening"}, KubeScore: []string{"container-seccomp-profile"},
		Kubescape: []string{"C-0210", "C-0055"}, CIS: []string{"5.7.2"},
		Kinds: workloadKinds, Eval: containerCheck(func(c *corev1.Container, psc *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			p, at := effective(c, psc, path,
				func(sc *corev1.SecurityContext) *corev1.SeccompProfile { return sc.SeccompProfile },
				func(sc *corev1.PodSecurityContext) *corev1.SeccompProfile { return sc.SeccompProfile }, ".seccompProfile")
			switch {
			case p == nil:
				return one(at, unset)
			case p.Type == corev1.SeccompProfileTypeUnconfined:
				return one(at+".type", string(p.Type))
			}
			return nil
		}),
	},
	{
		ID: "security.service-account-token-automount", Title: "Service account token mounted", Pillar: Security, Severity: Low,
		Remediation: "Set automountServiceAccountToken: false on the pod (or its ServiceAccount) unless the process calls the Kubernetes API.",
		Polaris:     []string{"automountServiceAccountToken"}, Kubescape: []string{"C-0034", "C-0190"}, CIS: []string{"5.1.6"},
		Kinds: workloadKinds, Needs: []*k8scache.Resource{k8scache.ServiceAccounts}, Eval: specCheck(tokenAutomount),
	},
	{
		ID: "security.default-service-account", Title: "Default service account used", Pillar: Security, Severity: Low, Advisory: true,
		Remediation: "Give the workload a ServiceAccount of its own, with only the permissions it needs.",
		Kubescape:   []string{"C-0189"}, CIS: []string{"5.1.5"},
		Kinds: workloadKinds, Eval: specCheck(func(_ *View, s *Subject) []schema.RiskEvidence {
			if sa := s.Spec.ServiceAccountName; sa == "" || sa == "default" {
				return one(s.SpecPath+".serviceAccountName", "default")
			}
			return nil
		}),
	},
	{
		ID: "security.credentials-in-env", Title: "Credential in an environment variable literal", Pillar: Security, Severity: High,
		Remediation: "Move the value into a Secret and mount it as a file (or reference it with valueFrom.secretKeyRef).",
		Polaris:     []string{"sensitiveContainerEnvVar"}, Kubescape: []string{"C-0012"},
		Kinds: workloadKinds, Eval: containerCheck(func(c *corev1.Container, _ *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			var ev []schema.RiskEvidence
			for _, e := range c.Env {
				if e.Value != "" && credentialName.MatchString(e.Name) {
					ev = append(ev, evidence(path+".env["+e.Name+"].value", "literal value (not shown)"))
				}
			}
			return ev
		}),
	},
	{
		ID: "security.secrets-in-env", Title: "Secret exposed as environment variables", Pillar: Security, Severity: Low, Advisory: true,
		Remediation: "Mount Secrets as files: environment variables leak into logs, crash reports and child processes.",
		Kubescape:   []string{"C-0207"}, CIS: []string{"5.4.1"},
		Kinds: workloadKinds, Eval: containerCheck(func(c *corev1.Container, _ *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			var ev []schema.RiskEvidence
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					ev = append(ev, evidence(path+".env["+e.Name+"].valueFrom.secretKeyRef", e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key))
				}
			}
			for i, e := range c.EnvFrom {
				if e.SecretRef != nil {
					ev = append(ev, evidence(fmt.Sprintf("%s.envFrom[%d].secretRef", path, i), e.SecretRef.Name))
				}
			}
			return ev
		}),
	},
	{
		ID: "security.image-tag", Title: "Image not pinned", Pillar: Security, Severity: Medium,
		Remediation: "Reference images by an immutable tag or, better, by digest (image@sha256:...), never :latest.",
		Polaris:     []string{"tagNotSpecified"}, KubeScore: []string{"container-image-tag"}, Kubescape: []string{"C-0075"},
		Kinds: workloadKinds, Eval: containerCheck(func(c *corev1.Container, _ *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			if unpinned(c.Image) {
				return one(path+".image", c.Image)
			}
			return nil
		}),
	},
	{
		ID: "security.network-policy", Title: "Pods not isolated by a NetworkPolicy", Pillar: Security, Severity: Medium,
		Remediation: "Add NetworkPolicies that select these pods for Ingress and Egress (a namespace default-deny plus the allowed flows).",
		Polaris:     []string{"missingNetworkPolicy"}, KubeScore: []string{"pod-networkpolicy"}, Kubescape: []string{"C-0260"}, CIS: []string{"5.3.2"},
		Kinds: workloadKinds, Needs: []*k8scache.Resource{k8scache.NetworkPolicies}, Eval: specCheck(networkPolicyCoverage),
	},
	{
		ID: "reliability.probes", Title: "Readiness or liveness probe missing", Pillar: Reliability, Severity: Medium,
		Remediation: "Add a readinessProbe (traffic only to ready pods) and a livenessProbe (restart when stuck) to every serving container.",
		Polaris:     []string{"readinessProbeMissing", "livenessProbeMissing"}, KubeScore: []string{"pod-probes"}, Kubescape: []string{"C-0018", "C-0056"},
		Kinds: longRunning, Eval: servingContainerCheck(func(c *corev1.Container, path string) []schema.RiskEvidence {
			var ev []schema.RiskEvidence
			if c.ReadinessProbe == nil {
				ev = append(ev, evidence(path+".readinessProbe", unset))
			}
			if c.LivenessProbe == nil {
				ev = append(ev, evidence(path+".livenessProbe", unset))
			}
			return ev
		}),
	},
	{
		ID: "reliability.probes-identical", Title: "Liveness probe identical to readiness probe", Pillar: Reliability, Severity: Low, Advisory: true,
		Remediation: "Make the liveness probe more tolerant than the readiness probe (another endpoint, or a higher failureThreshold), so that a busy pod is taken out of rotation, not restarted.",
		KubeScore:   []string{"pod-probes-identical"},
		Kinds:       longRunning, Eval: servingContainerCheck(func(c *corev1.Container, path string) []schema.RiskEvidence {
			if c.ReadinessProbe != nil && c.LivenessProbe != nil && equality.Semantic.DeepEqual(c.ReadinessProbe, c.LivenessProbe) {
				return one(path+".livenessProbe", "identical to readinessProbe")
			}
			return nil
		}),
	},
	{
		ID: "reliability.replicas", Title: "Single replica", Pillar: Reliability, Severity: Medium,
		Remediation: "Run at least 2 replicas (spec.replicas, or minReplicas of its HorizontalPodAutoscaler).",
		Polaris:     []string{"deploymentMissingReplicas"}, KubeScore: []string{"deployment-replicas"},
		Kinds: replicated, Needs: []*k8scache.Resource{k8scache.HorizontalPodAutoscalers}, Eval: replicaCount,
	},
	{
		ID: "reliability.pod-disruption-budget", Title: "No PodDisruptionBudget that allows disruptions", Pillar: Reliability, Severity: Medium,
		Remediation: "Add a PodDisruptionBudget selecting the pods with maxUnavailable: 1 (or a minAvailable below the replica count).",
		Polaris:     []string{"missingPodDisruptionBudget", "pdbDisruptionsIsZero"},
		KubeScore:   []string{"deployment-has-poddisruptionbudget", "statefulset-has-poddisruptionbudget"},
		Kinds:       replicated, Needs: []*k8scache.Resource{k8scache.PodDisruptionBudgets, k8scache.HorizontalPodAutoscalers}, Eval: disruptionBudget,
	},
	{
		ID: "reliability.topology-spread", Title: "Replicas not spread across nodes", Pillar: Reliability, Severity: Low,
		Remediation: "Add topologySpreadConstraints (or a podAntiAffinity) on kubernetes.io/hostname and topology.kubernetes.io/zone.",
		Polaris:     []string{"topologySpreadConstraint"}, KubeScore: []string{"deployment-has-host-podantiaffinity", "pod-topology-spread-constraints"},
		Kinds: replicated, Needs: []*k8scache.Resource{k8scache.HorizontalPodAutoscalers}, Eval: func(v *View, s *Subject) Outcome {
			if n := desiredReplicas(v, s); n < 2 {
				return notApplicable()
			}
			if a := s.Spec.Affinity; (a != nil && a.PodAntiAffinity != nil &&
				(len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0)) ||
				len(s.Spec.TopologySpreadConstraints) > 0 {
				return pass()
			}
			return outcomeOf([]schema.RiskEvidence{
				evidence(s.SpecPath+".topologySpreadConstraints", unset),
				evidence(s.SpecPath+".affinity.podAntiAffinity", unset),
			})
		},
	},
	{
		ID: "reliability.naked-pod", Title: "Pod without a controller", Pillar: Reliability, Severity: Medium,
		Remediation: "Run the pod from a Deployment, StatefulSet, DaemonSet or Job, which recreates it when it or its node fails.",
		Kubescape:   []string{"C-0073"},
		Kinds:       []string{KindPod}, Eval: func(_ *View, s *Subject) Outcome {
			if metav1.GetControllerOfNoCopy(s.Meta) != nil {
				return pass()
			}
			return outcomeOf(one("metadata.ownerReferences", "no controller"))
		},
	},
	{
		ID: "performance-efficiency.resource-requests", Title: "CPU or memory requests missing", Pillar: PerformanceEfficiency, Severity: Medium,
		Remediation: "Set resources.requests.cpu and resources.requests.memory for every container, so the scheduler places pods where they fit.",
		Polaris:     []string{"cpuRequestsMissing", "memoryRequestsMissing"}, KubeScore: []string{"container-resources"},
		Kubescape: []string{"C-0268", "C-0269"},
		Kinds:     workloadKinds, Eval: servingContainerCheck(func(c *corev1.Container, path string) []schema.RiskEvidence {
			return missingResources(c.Resources.Requests, path+".resources.requests", corev1.ResourceCPU, corev1.ResourceMemory)
		}),
	},
	{
		ID: "performance-efficiency.resource-limits", Title: "CPU or memory limits missing", Pillar: PerformanceEfficiency, Severity: Medium,
		Remediation: "Set resources.limits.memory (and resources.limits.cpu where noisy neighbours matter) for every container.",
		Polaris:     []string{"cpuLimitsMissing", "memoryLimitsMissing"}, KubeScore: []string{"container-resources"},
		Kubescape: []string{"C-0270", "C-0271", "C-0004", "C-0050"},
		Kinds:     workloadKinds, Eval: servingContainerCheck(func(c *corev1.Container, path string) []schema.RiskEvidence {
			return missingResources(c.Resources.Limits, path+".resources.limits", corev1.ResourceCPU, corev1.ResourceMemory)
		}),
	},
	{
		ID: "performance-efficiency.ephemeral-storage", Title: "Ephemeral storage not bounded", Pillar: PerformanceEfficiency, Severity: Info, Advisory: true,
		Remediation: "Set resources.requests and resources.limits for ephemeral-storage, so that a container filling its disk is evicted before the node runs out.",
		KubeScore:   []string{"container-ephemeral-storage-request-and-limit"},
		Kinds:       workloadKinds, Eval: servingContainerCheck(func(c *corev1.Container, path string) []schema.RiskEvidence {
			return slices.Concat(missingResources(c.Resources.Requests, path+".resources.requests", corev1.ResourceEphemeralStorage),
				missingResources(c.Resources.Limits, path+".resources.limits", corev1.ResourceEphemeralStorage))
		}),
	},
	{
		ID: "performance-efficiency.priority-class", Title: "No PriorityClass", Pillar: PerformanceEfficiency, Severity: Info, Advisory: true,
		Remediation: "Set priorityClassName, so that under pressure the scheduler preempts less important pods first.",
		Polaris:     []string{"priorityClassNotSet"},
		Kinds:       workloadKinds, Eval: specCheck(func(_ *View, s *Subject) []schema.RiskEvidence {
			if s.Spec.PriorityClassName == "" {
				return one(s.SpecPath+".priorityClassName", unset)
			}
			return nil
		}),
	},
	{
		ID: "cost-optimization.request-limit-ratio", Title: "Limits far above requests", Pillar: CostOptimization, Severity: Low,
		Remediation: "Bring requests closer to real usage and limits: at most 4× the request for CPU and 2× for memory, or equal for predictable cost.",
		Kinds:       workloadKinds, Eval: servingContainerCheck(func(c *corev1.Container, path string) []schema.RiskEvidence {
			var ev []schema.RiskEvidence
			for _, r := range []struct {
				name  corev1.ResourceName
				ratio int64
			}{{corev1.ResourceCPU, 4}, {corev1.ResourceMemory, 2}} {
				req, okReq := c.Resources.Requests[r.name]
				lim, okLim := c.Resources.Limits[r.name]
				if okReq && okLim && req.Sign() > 0 && lim.MilliValue() > r.ratio*req.MilliValue() {
					ev = append(ev, evidence(path+".resources.limits."+string(r.name),
						fmt.Sprintf("%s, more than %d× the request of %s", lim.String(), r.ratio, req.String())))
				}
			}
			return ev
		}),
	},
	{
		ID: "operational-excellence.recommended-labels", Title: "No app label", Pillar: OperationalExcellence, Severity: Info, Advisory: true,
		Remediation: "Label the workload with app.kubernetes.io/name (and the other recommended app.kubernetes.io/* labels).",
		Kubescape:   []string{"C-0076", "C-0077"},
		Kinds:       workloadKinds, Eval: func(_ *View, s *Subject) Outcome {
			if s.Meta.Labels["app.kubernetes.io/name"] != "" || s.Meta.Labels["app"] != "" {
				return pass()
			}
			return outcomeOf(one("metadata.labels", "no app.kubernetes.io/name or app"))
		},
	},
	{
		ID: "operational-excellence.default-namespace", Title: "Workload in the default namespace", Pillar: OperationalExcellence, Severity: Low,
		Remediation: "Move the workload to a namespace of its own, where RBAC, quotas and NetworkPolicies can be scoped to it.",
		Kubescape:   []string{"C-0061", "C-0212"}, CIS: []string{"5.7.4"},
		Kinds: workloadKinds, Eval: func(_ *View, s *Subject) Outcome {
			if s.Meta.Namespace == metav1.NamespaceDefault {
				return outcomeOf(one("metadata.namespace", metav1.NamespaceDefault))
			}
			return pass()
		},
	},
	{
		ID: "operational-excellence.duplicate-env", Title: "Environment variable set twice", Pillar: OperationalExcellence, Severity: Low,
		Remediation: "Remove the duplicate: only the last value of an environment variable takes effect, which hides mistakes.",
		KubeScore:   []string{"environment-variable-key-duplication"},
		Kinds:       workloadKinds, Eval: containerCheck(func(c *corev1.Container, _ *corev1.PodSecurityContext, path string) []schema.RiskEvidence {
			seen := make(map[string]bool, len(c.Env))
			var ev []schema.RiskEvidence
			for _, e := range c.Env {
				if seen[e.Name] {
					ev = append(ev, evidence(path+".env["+e.Name+"]", "set more than once"))
				}
				seen[e.Name] = true
			}
			return ev
		}),
	},
}

const unset = "unset"

func unsetOr(set bool, value string) string {
	if set {
		return value
	}
	return unset
}

func one(path, value string) []schema.RiskEvidence {
	return []schema.RiskEvidence{evidence(path, value)}
}

func isTrue(b *bool) bool { return b != nil && *b }

// baselineCapabilities are the capabilities the Pod Security Standards' baseline profile
// allows containers to add.
var baselineCapabilities = map[string]bool{
	"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true, "FSETID": true, "KILL": true, "MKNOD": true,
	"NET_BIND_SERVICE": true, "SETFCAP": true, "SETGID": true, "SETPCAP": true, "SETUID": true, "SYS_CHROOT": true,
}

// credentialName matches environment variable names that usually hold credentials.
var credentialName = regexp.MustCompile(`(?i)(passw(or)?d|secret|token|api_?key|access_?key|private_?key|credential)`)

// specCheck evaluates a pod spec; a pod whose spec could not be read is skipped.
func specCheck(fn func(v *View, s *Subject) []schema.RiskEvidence) func(v *View, s *Subject) Outcome {
	return func(v *View, s *Subject) Outcome {
		if s.Spec == nil {
			return skip(s.SpecErr.Error())
		}
		return outcomeOf(fn(v, s))
	}
}

// containerCheck evaluates every container, init containers included, with the pod's
// security context and the container's path.
func containerCheck(fn func(c *corev1.Container, psc *corev1.PodSecurityContext, path string) []schema.RiskEvidence) func(v *View, s *Subject) Outcome {
	return specCheck(func(_ *View, s *Subject) []schema.RiskEvidence {
		var ev []schema.RiskEvidence
		for i := range s.Spec.InitContainers {
			c := &s.Spec.InitContainers[i]
			ev = append(ev, fn(c, s.Spec.SecurityContext, s.SpecPath+".initContainers["+c.Name+"]")...)
		}
		for i := range s.Spec.Containers {
			c := &s.Spec.Containers[i]
			ev = append(ev, fn(c, s.Spec.SecurityContext, s.SpecPath+".containers["+c.Name+"]")...)
		}
		return ev
	})
}

// servingContainerCheck evaluates the containers that run alongside the pod's lifetime: the
// containers and the sidecars (init containers that restart always).
func servingContainerCheck(fn func(c *corev1.Container, path string) []schema.RiskEvidence) func(v *View, s *Subject) Outcome {
	return specCheck(func(_ *View, s *Subject) []schema.RiskEvidence {
		var ev []schema.RiskEvidence
		for i := range s.Spec.InitContainers {
			if c := &s.Spec.InitContainers[i]; c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				ev = append(ev, fn(c, s.SpecPath+".initContainers["+c.Name+"]")...)
			}
		}
		for i := range s.Spec.Containers {
			c := &s.Spec.Containers[i]
			ev = append(ev, fn(c, s.SpecPath+".containers["+c.Name+"]")...)
		}
		return ev
	})
}

// effective returns a security setting of a container, else of its pod, and the path where
// it is (or would be) set.
func effective[T any](c *corev1.Container, psc *corev1.PodSecurityContext, path string,
	ofContainer func(*corev1.SecurityContext) *T, ofPod func(*corev1.PodSecurityContext) *T, field string,
) (*T, string) {
	if c.SecurityContext != nil {
		if v := ofContainer(c.SecurityContext); v != nil {
			return v, path + ".securityContext" + field
		}
	}
	if psc != nil {
		if v := ofPod(psc); v != nil {
			return v, podPath(path) + ".securityContext" + field
		}
	}
	return nil, path + ".securityContext" + field
}

// podPath is the spec path of a container's path, e.g. spec.template.spec for
// spec.template.spec.containers[app].
func podPath(containerPath string) string {
	if i := strings.LastIndex(containerPath, "."); i >= 0 {
		return containerPath[:i]
	}
	return containerPath
}

func hostNamespaces(_ *View, s *Subject) []schema.RiskEvidence {
	var ev []schema.RiskEvidence
	for _, h := range []struct {
		set  bool
		name string
	}{{s.Spec.HostPID, "hostPID"}, {s.Spec.HostIPC, "hostIPC"}, {s.Spec.HostNetwork, "hostNetwork"}} {
		if h.set {
			ev = append(ev, evidence(s.SpecPath+"."+h.name, "true"))
		}
	}
	return ev
}

// hostPaths lists the hostPath volumes and the mounts that write to them.
func hostPaths(_ *View, s *Subject) []schema.RiskEvidence {
	var ev []schema.RiskEvidence
	for _, vol := range s.Spec.Volumes {
		if vol.HostPath == nil {
			continue
		}
		ev = append(ev, evidence(s.SpecPath+".volumes["+vol.Name+"].hostPath.path", vol.HostPath.Path))
		for _, cs := range []struct {
			list []corev1.Container
			key  string
		}{{s.Spec.InitContainers, "initContainers"}, {s.Spec.Containers, "containers"}} {
			for _, c := range cs.list {
				for _, m := range c.VolumeMounts {
					if m.Name == vol.Name && !m.ReadOnly {
						ev = append(ev, evidence(s.SpecPath+"."+cs.key+"["+c.Name+"].volumeMounts["+m.MountPath+"].readOnly", "false"))
					}
				}
			}
		}
	}
	return ev
}

// tokenAutomount: the token is mounted unless the pod, or else its ServiceAccount, says
// automountServiceAccountToken: false.
func tokenAutomount(v *View, s *Subject) []schema.RiskEvidence {
	if s.Spec.AutomountServiceAccountToken != nil {
		if *s.Spec.AutomountServiceAccountToken {
			return one(s.SpecPath+".automountServiceAccountToken", "true")
		}
		return nil
	}
	name := saName(s.Spec)
	if obj, ok := v.Store(k8scache.ServiceAccounts).Get(s.Object.Namespace, name); ok {
		if sa := obj.(*corev1.ServiceAccount); sa.AutomountServiceAccountToken != nil {
			if *sa.AutomountServiceAccountToken {
				return one("ServiceAccount "+name+" automountServiceAccountToken", "true")
			}
			return nil
		}
	}
	return []schema.RiskEvidence{
		evidence(s.SpecPath+".automountServiceAccountToken", unset),
		evidence("ServiceAccount "+name+" automountServiceAccountToken", unset),
	}
}

func saName(spec *corev1.PodSpec) string {
	if spec.ServiceAccountName == "" {
		return "default"
	}
	return spec.ServiceAccountName
}

// unpinned reports whether an image reference has no digest and no tag, or the tag latest.
func unpinned(image string) bool {
	if strings.Contains(image, "@") {
		return false
	}
	name := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(name, ":")
	return i < 0 || name[i+1:] == "" || name[i+1:] == "latest"
}

// networkPolicyCoverage fails when no NetworkPolicy of the namespace selects the pods for
// ingress, or none for egress.
func networkPolicyCoverage(v *View, s *Subject) []schema.RiskEvidence {
	ingress, egress := policyTypesSelecting(v, s.Object.Namespace, s.PodLabels)
	var ev []schema.RiskEvidence
	if !ingress {
		ev = append(ev, evidence("NetworkPolicy (Ingress) selecting "+labelString(s.PodLabels), "none"))
	}
	if !egress {
		ev = append(ev, evidence("NetworkPolicy (Egress) selecting "+labelString(s.PodLabels), "none"))
	}
	return ev
}

// policyTypesSelecting reports whether NetworkPolicies of ns select pods with podLabels for
// ingress and for egress.
func policyTypesSelecting(v *View, ns string, podLabels map[string]string) (ingress, egress bool) {
	for _, obj := range v.Store(k8scache.NetworkPolicies).InNamespace(ns) {
		np := obj.(*networkingv1.NetworkPolicy)
		if !selects(&np.Spec.PodSelector, podLabels) {
			continue
		}
		in, out := policyTypes(np)
		ingress, egress = ingress || in, egress || out
	}
	return ingress, egress
}

// policyTypes are the directions a NetworkPolicy isolates: its policyTypes, or by default
// Ingress, and Egress when it has egress rules.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	return slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress), slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// selects reports whether a label selector matches a set of labels; an invalid selector
// matches nothing.
func selects(sel *metav1.LabelSelector, set map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(set))
}

func labelString(set map[string]string) string {
	if len(set) == 0 {
		return "(no labels)"
	}
	return labels.Set(set).String()
}

// hpaFor returns the HorizontalPodAutoscaler that scales the subject, if any.
func hpaFor(v *View, s *Subject) *autoscalingv2.HorizontalPodAutoscaler {
	for _, obj := range v.Store(k8scache.HorizontalPodAutoscalers).InNamespace(s.Object.Namespace) {
		h := obj.(*autoscalingv2.HorizontalPodAutoscaler)
		if h.Spec.ScaleTargetRef.Kind == s.Object.Kind && h.Spec.ScaleTargetRef.Name == s.Object.Name {
			return h
		}
	}
	return nil
}

// desiredReplicas is the replica count the subject runs with at least: its HPA's
// minReplicas when one scales it, else spec.replicas.
func desiredReplicas(v *View, s *Subject) int32 {
	if h := hpaFor(v, s); h != nil {
		if h.Spec.MinReplicas != nil {
			return *h.Spec.MinReplicas
		}
		return 1
	}
	if s.Replicas == nil {
		return 1
	}
	return *s.Replicas
}

func replicaCount(v *View, s *Subject) Outcome {
	if s.Replicas != nil && *s.Replicas == 0 {
		return notApplicable() // scaled to zero on purpose
	}
	if h := hpaFor(v, s); h != nil {
		if n := desiredReplicas(v, s); n < 2 {
			return outcomeOf(one("HorizontalPodAutoscaler "+h.Name+" spec.minReplicas", strconv.Itoa(int(n))))
		}
		return pass()
	}
	if *s.Replicas < 2 {
		return outcomeOf(one("spec.replicas", strconv.Itoa(int(*s.Replicas))))
	}
	return pass()
}

func disruptionBudget(v *View, s *Subject) Outcome {
	replicas := desiredReplicas(v, s)
	if replicas < 2 {
		return notApplicable() // a single replica cannot be protected; reliability.replicas says so
	}
	var ev []schema.RiskEvidence
	for _, obj := range v.Store(k8scache.PodDisruptionBudgets).InNamespace(s.Object.Namespace) {
		pdb := obj.(*policyv1.PodDisruptionBudget)
		if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector, s.PodLabels) {
			continue
		}
		if zero, why := allowsNoDisruption(pdb, replicas); zero {
			ev = append(ev, evidence("PodDisruptionBudget "+pdb.Name+" "+why.Path, why.Value))
			continue
		}
		return pass()
	}
	if len(ev) == 0 {
		ev = one("PodDisruptionBudget selecting "+labelString(s.PodLabels), "none")
	}
	return outcomeOf(ev)
}

// allowsNoDisruption reports whether a PDB blocks every voluntary eviction of a workload of
// replicas pods, and the field that does.
func allowsNoDisruption(pdb *policyv1.PodDisruptionBudget, replicas int32) (bool, schema.RiskEvidence) {
	if mu := pdb.Spec.MaxUnavailable; mu != nil {
		n, err := intstr.GetScaledValueFromIntOrPercent(mu, int(replicas), true)
		return err == nil && n == 0, evidence("spec.maxUnavailable", mu.String())
	}
	if ma := pdb.Spec.MinAvailable; ma != nil {
		n, err := intstr.GetScaledValueFromIntOrPercent(ma, int(replicas), true)
		return err == nil && n >= int(replicas), evidence("spec.minAvailable", ma.String())
	}
	return false, schema.RiskEvidence{}
}

func missingResources(list corev1.ResourceList, path string, names ...corev1.ResourceName) []schema.RiskEvidence {
	var ev []schema.RiskEvidence
	for _, n := range names {
		if q, ok := list[n]; !ok || q.IsZero() {
			ev = append(ev, evidence(path+"."+string(n), unset))
		}
	}
	return ev
}
