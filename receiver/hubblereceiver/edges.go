package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
)

// observeEdges hands the allowed traffic of a window to internal/flowgraph, where the risk
// receiver looks for attack chains that only observed traffic shows. It runs on the window's
// goroutine, before the window is emitted, and only while the risk receiver reads the edges
// (flowgraph.Reading): the node agent has none, and keeping edges nobody reads cost 7.7 MB
// at 20,000 keys.
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

func peerOf(k endpointKey, info *endpointInfo) flowgraph.Peer {
	switch k.kind {
	case kindUnmanaged, kindUnknown:
		return flowgraph.Peer{Namespace: k.namespace, Reserved: reservedOf(info.identity, info.labels)}
	}
	return flowgraph.Peer{Namespace: k.namespace, Kind: k.kind, Name: k.name}
}

// reservedOf classifies an endpoint outside the cluster's workloads (flowgraph.ReservedOf).
func reservedOf(identity uint32, labels packed) string {
	return flowgraph.ReservedOf(identity, func(l string) bool { return labels.contains("reserved:" + l) })
}
