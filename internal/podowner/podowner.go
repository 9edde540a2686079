// Package podowner tells which workload (Deployment, StatefulSet, ...) a pod belongs to:
// exactly, by following controller references through the shared informers of
// internal/k8scache, or, where no cache is available or the pod is not in it yet, by the
// names Kubernetes controllers give their pods.
package podowner // import "github.com/kestrelai/otelcol-kestrel/internal/podowner"

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Workload kinds as Kubernetes spells them.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindReplicaSet  = "ReplicaSet"
	KindJob         = "Job"
	KindCronJob     = "CronJob"
)

// Ref names a workload. The zero value means "no workload known".
type Ref struct {
	Kind string
	Name string
}

// Resolver returns the workload owning a pod. Implementations are safe for concurrent use.
type Resolver interface {
	// Owner returns the top-level workload owning pod in namespace, and false when unknown
	// (or when the pod has no controller).
	Owner(namespace, pod string) (Ref, bool)
}

// Chain asks each resolver in turn; the first that knows the pod answers.
type Chain []Resolver

// Owner implements Resolver.
func (c Chain) Owner(namespace, pod string) (Ref, bool) {
	for _, r := range c {
		if ref, ok := r.Owner(namespace, pod); ok {
			return ref, true
		}
	}
	return Ref{}, false
}

// OwnerOf follows a pod's controller reference up to the workload users deal with: a
// ReplicaSet owned by a Deployment is reported as the Deployment, a Job owned by a CronJob
// as the CronJob; p is a pod (what the cache keeps of one, or a whole one). replicaSet and job look the intermediate objects up (nil when unknown, in
// which case the intermediate object is the answer). A pod without a controller has no
// owner.
func OwnerOf(p metav1.Object, replicaSet func(namespace, name string) *appsv1.ReplicaSet, job func(namespace, name string) *batchv1.Job) (Ref, bool) {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return Ref{}, false
	}
	var up *metav1.OwnerReference
	switch ref.Kind {
	case KindReplicaSet:
		if rs := replicaSet(p.GetNamespace(), ref.Name); rs != nil {
			up = metav1.GetControllerOf(rs)
		}
		if up != nil && up.Kind == KindDeployment {
			return Ref{Kind: up.Kind, Name: up.Name}, true
		}
	case KindJob:
		if j := job(p.GetNamespace(), ref.Name); j != nil {
			up = metav1.GetControllerOf(j)
		}
		if up != nil && up.Kind == KindCronJob {
			return Ref{Kind: up.Kind, Name: up.Name}, true
		}
	}
	return Ref{Kind: ref.Kind, Name: ref.Name}, true
}

// Names resolves a pod by the shape of its name alone:
//   - <deployment>-<pod-template-hash>-<suffix>: Deployment;
//   - <cronjob>-<scheduled minute>-<suffix>: CronJob.
//
// Other names are ambiguous and not resolved: <daemonset>-<suffix> may be a DaemonSet, Job
// or bare ReplicaSet pod, and <name>-<digits> is as often a bare pod as a StatefulSet's
// (IsStatefulSetPod checks the shape when the kind is known from elsewhere). A bare pod whose name merely looks like one of these is
// misattributed, which is why an Informed resolver goes first wherever there is one.
type Names struct{}

var _ Resolver = Names{}

// Owner implements Resolver.
func (Names) Owner(_, pod string) (Ref, bool) {
	rest, last, ok := cutLast(pod)
	if !ok {
		return Ref{}, false
	}
	if !isSafe(last, 5, 5) {
		return Ref{}, false
	}
	if deploy, ok := TrimHashSuffix(rest); ok {
		return Ref{Kind: KindDeployment, Name: deploy}, true
	}
	// Jobs of a CronJob are named after the scheduled time in minutes since the epoch.
	if owner, minute, ok := cutLast(rest); ok && len(minute) >= 8 && isDigits(minute) {
		return Ref{Kind: KindCronJob, Name: owner}, true
	}
	return Ref{}, false
}

// safeAlphabet is the alphabet of k8s.io/apimachinery/pkg/util/rand: SafeEncodeString writes
// the pod-template-hash with it and String(5) the generateName suffix. It has no vowels, so
// ordinary words such as "v1beta" or "canary" never look like a hash.
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

// TrimHashSuffix returns name without its "-<pod-template-hash>" suffix. The hash is the
// decimal form of a uint32 mapped onto safeAlphabet, so 8–10 characters in practice
// (shorter hashes are possible but too rare to be worth the false positives).
func TrimHashSuffix(name string) (string, bool) {
	rest, hash, ok := cutLast(name)
	if !ok || !isSafe(hash, 8, 10) {
		return "", false
	}
	return rest, true
}

// IsStatefulSetPod reports whether pod is "<statefulSet>-<ordinal>".
func IsStatefulSetPod(statefulSet, pod string) bool {
	rest, ok := strings.CutPrefix(pod, statefulSet+"-")
	return ok && isOrdinal(rest)
}

// isOrdinal matches what the StatefulSet controller appends: a decimal without leading zeros.
func isOrdinal(s string) bool {
	return isDigits(s) && len(s) <= 10 && (len(s) == 1 || s[0] != '0')
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func cutLast(s string) (rest, last string, ok bool) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
