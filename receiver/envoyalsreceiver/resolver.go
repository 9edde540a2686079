package envoyalsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver"

import (
	"strings"
)

// WorkloadResolver finds the workload (Deployment, StatefulSet, ...) that owns a pod.
// Implementations must be safe for concurrent use; they are called once per Envoy stream.
type WorkloadResolver interface {
	// ResolveWorkload returns the kind and name of the pod's workload, or ok=false when it is
	// not known (the pod then stands for itself).
	ResolveWorkload(namespace, pod string) (kind, name string, ok bool)
}

// NameHeuristics is the default WorkloadResolver. It recognises the names Kubernetes
// controllers give their pods:
//   - <deployment>-<pod-template-hash>-<suffix>: Deployment;
//   - <cronjob>-<scheduled minute>-<suffix>: CronJob;
//   - <statefulset>-<ordinal>: StatefulSet.
//
// Names such as <daemonset>-<suffix> are ambiguous (DaemonSet, Job or a bare ReplicaSet) and
// are not resolved. A bare pod whose name merely looks like one of these is misattributed;
// a resolver backed by the Kubernetes API has no such limits.
type NameHeuristics struct{}

var _ WorkloadResolver = NameHeuristics{}

// ResolveWorkload implements WorkloadResolver.
func (NameHeuristics) ResolveWorkload(_, pod string) (string, string, bool) {
	rest, last, ok := cutLast(pod)
	if !ok {
		return "", "", false
	}
	if isDigits(last) {
		return "StatefulSet", rest, true
	}
	if len(last) != 5 || !isSafeEncoded(last) {
		return "", "", false
	}
	owner, hash, ok := cutLast(rest)
	switch {
	case !ok:
		return "", "", false
	case len(hash) >= 8 && isDigits(hash):
		// Jobs of a CronJob are named after the scheduled time in minutes.
		return "CronJob", owner, true
	case len(hash) >= 6 && len(hash) <= 10 && isSafeEncoded(hash):
		return "Deployment", owner, true
	}
	return "", "", false
}

func cutLast(s string) (string, string, bool) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isSafeEncoded reports whether s uses only the alphabet Kubernetes generates name suffixes
// and pod-template hashes from (k8s.io/apimachinery/pkg/util/rand: no vowels, no 0, 1, 3).
func isSafeEncoded(s string) bool {
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("bcdfghjklmnpqrstvwxz2456789", rune(s[i])) {
			return false
		}
	}
	return true
}
