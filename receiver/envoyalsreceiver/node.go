package envoyalsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver"

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
)

// node is the Envoy that sends a stream, identified once from the stream's first message.
type node struct {
	id, logName    string
	namespace, pod string
	kind, workload string // the pod's workload, when known
	hasIdentity    bool
}

// ownerKinds maps the resource of an Istio OWNER reference to its kind.
var ownerKinds = map[string]string{
	"deployments":  podowner.KindDeployment,
	"statefulsets": podowner.KindStatefulSet,
	"daemonsets":   podowner.KindDaemonSet,
	"replicasets":  podowner.KindReplicaSet,
	"jobs":         podowner.KindJob,
	"cronjobs":     podowner.KindCronJob,
}

// identify reads the pod and namespace of an Envoy from its node: Istio's node metadata
// (NAME, NAMESPACE, OWNER) when present, else the node id, which Istio writes as
// <type>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>. The workload comes from OWNER, else
// from the resolver.
func identify(n *corev3.Node, logName string, resolver podowner.Resolver) *node {
	nd := &node{id: n.GetId(), logName: logName}
	if parts := strings.Split(nd.id, "~"); len(parts) == 4 {
		nd.namespace, _, _ = strings.Cut(parts[3], ".")
		nd.pod = strings.TrimSuffix(parts[2], "."+nd.namespace)
	}
	fields := n.GetMetadata().GetFields()
	if v := fields["NAMESPACE"].GetStringValue(); v != "" {
		nd.namespace = v
	}
	if v := fields["NAME"].GetStringValue(); v != "" {
		nd.pod = v
	}
	nd.hasIdentity = nd.namespace != "" && nd.pod != ""
	if !nd.hasIdentity {
		return nd
	}
	// kubernetes://apis/apps/v1/namespaces/<ns>/deployments/<name>
	if owner := fields["OWNER"].GetStringValue(); owner != "" {
		parts := strings.Split(owner, "/")
		if len(parts) >= 2 {
			if kind, ok := ownerKinds[parts[len(parts)-2]]; ok && parts[len(parts)-1] != "" {
				nd.kind, nd.workload = kind, parts[len(parts)-1]
				return nd
			}
		}
	}
	if ref, ok := resolver.Owner(nd.namespace, nd.pod); ok {
		nd.kind, nd.workload = ref.Kind, ref.Name
	}
	return nd
}
