package relaytest

import (
	"fmt"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Pair is what one node's Hubble saw of one workload pair: N forwarded TCP flows from the
// Deployment Src to the Deployment Dst (both in the namespace shop) on Port.
type Pair struct {
	Src, Dst string
	Port     uint32
	N        int
}

// PairEvents returns the flows of pairs as node saw them, 1 ms apart from at on, with pod
// names and addresses of the node's own pods.
func PairEvents(node string, at time.Time, pairs []Pair) []*observerpb.GetFlowsResponse {
	ep := func(name string, id uint32) *flowpb.Endpoint {
		return &flowpb.Endpoint{
			Identity: id, Namespace: "shop", PodName: name + "-" + node,
			Labels:    []string{"k8s:app=" + name},
			Workloads: []*flowpb.Workload{{Name: name, Kind: "Deployment"}},
		}
	}
	var evs []*observerpb.GetFlowsResponse
	for i, p := range pairs {
		for j := range p.N {
			t := timestamppb.New(at.Add(time.Duration(len(evs)) * time.Millisecond))
			evs = append(evs, &observerpb.GetFlowsResponse{NodeName: node, Time: t, ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: &flowpb.Flow{
				Time: t, Uuid: fmt.Sprintf("%s-%d-%d", node, i, j), NodeName: node,
				Verdict: flowpb.Verdict_FORWARDED, Type: flowpb.FlowType_L3_L4,
				IP:     &flowpb.IP{Source: fmt.Sprintf("10.%d.0.%d", len(node), i+1), Destination: "10.9.0.1", IpVersion: flowpb.IPVersion_IPv4},
				Source: ep(p.Src, 1000+uint32(i)), Destination: ep(p.Dst, 2000+uint32(i)),
				L4:      &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: 40000 + uint32(j), DestinationPort: p.Port}}},
				IsReply: wrapperspb.Bool(false), TrafficDirection: flowpb.TrafficDirection_EGRESS,
				EventType: &flowpb.CiliumEventType{Type: 4},
			}}})
		}
	}
	return evs
}
