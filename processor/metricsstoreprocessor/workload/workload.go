// Package workload decides the workload (Deployment, StatefulSet, ...) of the pods metrics
// come from, when the metrics carry only pod-level Kubernetes attributes. Owners come from
// internal/podowner: an exact resolver (the Kubernetes API, through the shared informer
// cache) first, then the k8s.<kind>.name attributes, then the pod's name.
package workload // import "github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/workload"

import (
	"fmt"
	"strings"

	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
)

// Kinds lists the kinds OTelMetric.workload_kind reports, in the precedence order of their
// k8s.<kind>.name attributes.
var Kinds = []string{
	podowner.KindDeployment, podowner.KindStatefulSet, podowner.KindDaemonSet,
	podowner.KindReplicaSet, podowner.KindJob, podowner.KindCronJob,
}

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

// Resolve decides the workload of a pod: the exact resolver first (if any), then the explicit
// workload taken from k8s.<kind>.name attributes, then the pod's name. A ReplicaSet whose
// name ends in a pod-template-hash is reported as its Deployment.
func Resolve(exact podowner.Resolver, namespace, pod string, explicit podowner.Ref) podowner.Ref {
	if exact != nil && pod != "" {
		if ref, ok := exact.Owner(namespace, pod); ok {
			return ref
		}
	}
	if explicit.Name != "" {
		if explicit.Kind == podowner.KindReplicaSet {
			if deploy, ok := podowner.TrimHashSuffix(explicit.Name); ok {
				return podowner.Ref{Kind: podowner.KindDeployment, Name: deploy}
			}
		}
		return explicit
	}
	ref, _ := podowner.Names{}.Owner(namespace, pod)
	return ref
}
