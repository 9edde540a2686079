package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
)

// observeEdges hands the allowed traffic of a window to internal/flowgraph, where the risk
// receiver looks for attack chains that only observed traffic shows. It runs on the window's
// goroutine, before the window is emitted.
func observeEdges(aggs map[aggKey]*flowAgg) {
	for _, a := range aggs {
		k := &a.key
		if k.verdict != flowpb.Verdict_FORWARDED {
			continue
		}
		flowgraph.Observe(flowgraph.Edge{
			Src: peerOf(k.src, &a.src), Dst: peerOf(k.dst, &a.dst),
			Port: k.port, Protocol: transportOf[k.proto],
		}, a.Count, time.Unix(0, a.First), time.Unix(0, a.Last))
	}
}

// Cilium's reserved security identities.
const (
	identityHost          = 1
	identityWorld         = 2
	identityRemoteNode    = 6
	identityKubeAPIServer = 7
	identityWorldIPv4     = 9
	identityWorldIPv6     = 10
)

func peerOf(k endpointKey, info *endpointInfo) flowgraph.Peer {
	switch k.kind {
	case kindUnmanaged, kindUnknown:
		return flowgraph.Peer{Namespace: k.namespace, Reserved: reservedOf(info.identity, info.labels)}
	}
	return flowgraph.Peer{Namespace: k.namespace, Kind: k.kind, Name: k.name}
}

// reservedOf classifies an endpoint outside the cluster's workloads by its identity or its
// reserved: labels. The API server goes first: on a control-plane node it is the host too.
func reservedOf(identity uint32, labels packed) string {
	has := func(l string) bool { return labels.contains("reserved:" + l) }
	switch {
	case identity == identityKubeAPIServer || has("kube-apiserver"):
		return flowgraph.ReservedKubeAPIServer
	case identity == identityWorld || identity == identityWorldIPv4 || identity == identityWorldIPv6 ||
		has("world") || has("world-ipv4") || has("world-ipv6"):
		return flowgraph.ReservedWorld
	case identity == identityHost || has("host"):
		return flowgraph.ReservedHost
	case identity == identityRemoteNode || has("remote-node"):
		return flowgraph.ReservedRemoteNode
	}
	return flowgraph.ReservedOther
}
