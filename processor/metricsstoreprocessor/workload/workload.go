// Package workload resolves the workload (Deployment, StatefulSet, ...) that owns a pod when
// metrics carry only pod-level Kubernetes attributes. It is deliberately small: an exact owner
// source (for example the inventory receiver's pod cache) plugs in as a Resolver, and the
// name-based rules below are only a fallback.
package workload // import "github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/workload"

import (
	"fmt"
	"strings"
)

// Workload kinds as they appear in OTelMetric.workload_kind.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindReplicaSet  = "ReplicaSet"
	KindJob         = "Job"
	KindCronJob     = "CronJob"
)

// Kinds lists the supported kinds in the precedence order of their k8s.<kind>.name attributes.
var Kinds = []string{KindDeployment, KindStatefulSet, KindDaemonSet, KindReplicaSet, KindJob, KindCronJob}

// ParseKind returns the canonical spelling of kind (matched case-insensitively), or an error
// naming the supported kinds.
func ParseKind(kind string) (string, error) {
	for _, k := range Kinds {
		if strings.EqualFold(k, kind) {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown workload_kind %q (supported: %s)", kind, strings.Join(Kinds, ", "))
}

// Ref names a workload. The zero value means "no workload known".
type Ref struct {
	Kind string
	Name string
}

// Resolver returns the exact owner of a pod, for example from a pod informer cache.
type Resolver interface {
	// Owner returns the top-level workload owning pod in namespace, and false when unknown.
	Owner(namespace, pod string) (Ref, bool)
}

// Resolve decides the workload of a pod: the exact resolver first (if any), then the explicit
// workload taken from k8s.<kind>.name attributes, then the pod-name rule of Deployments.
// A ReplicaSet whose name ends in a pod-template-hash is reported as its Deployment.
func Resolve(r Resolver, namespace, pod string, explicit Ref) Ref {
	if r != nil && pod != "" {
		if ref, ok := r.Owner(namespace, pod); ok {
			return ref
		}
	}
	if explicit.Name != "" {
		if explicit.Kind == KindReplicaSet {
			if deploy, ok := TrimHashSuffix(explicit.Name); ok {
				return Ref{Kind: KindDeployment, Name: deploy}
			}
		}
		return explicit
	}
	if deploy, ok := DeploymentFromPodName(pod); ok {
		return Ref{Kind: KindDeployment, Name: deploy}
	}
	return Ref{}
}

// safeAlphabet is the alphabet of k8s.io/apimachinery/pkg/util/rand: SafeEncodeString writes the
// pod-template-hash with it and String(5) the generateName suffix. It has no vowels, so ordinary
// words such as "v1beta" or "canary" never look like a hash.
const safeAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func isSafe(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(safeAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// TrimHashSuffix returns name without its "-<pod-template-hash>" suffix. The hash is the decimal
// form of a uint32 mapped onto safeAlphabet, so 8–10 characters in practice (shorter hashes
// are possible but too rare to be worth the false positives).
func TrimHashSuffix(name string) (string, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || !isSafe(name[i+1:], 8, 10) {
		return "", false
	}
	return name[:i], true
}

// DeploymentFromPodName recognises "<deployment>-<pod-template-hash>-<5 random characters>".
// Other shapes (DaemonSet and Job pods are "<name>-<5 characters>") are ambiguous and left
// unresolved rather than guessed.
func DeploymentFromPodName(pod string) (string, bool) {
	i := strings.LastIndexByte(pod, '-')
	if i <= 0 || !isSafe(pod[i+1:], 5, 5) {
		return "", false
	}
	return TrimHashSuffix(pod[:i])
}

// IsStatefulSetPod reports whether pod is "<statefulset>-<ordinal>". It is only meaningful when
// the caller already knows the kind is StatefulSet, since "<name>-<digits>" is a common name.
func IsStatefulSetPod(statefulSet, pod string) bool {
	rest, ok := strings.CutPrefix(pod, statefulSet+"-")
	if !ok || rest == "" || len(rest) > 10 || (len(rest) > 1 && rest[0] == '0') {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return false
		}
	}
	return true
}
