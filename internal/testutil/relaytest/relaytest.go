// Package relaytest is the project's test Hubble Relay: a server of Cilium's observer API that
// replays recorded or constructed flows in follow mode, honouring since, the allow/deny
// filters the tests use and field masks (with Cilium's own code). It refuses what it would
// not answer correctly, so a test cannot pass by accident. The hubble receiver's tests and
// the risk receiver's attack-chain tests use it.
package relaytest // import "github.com/kestrelai/otelcol-kestrel/internal/testutil/relaytest"

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/cilium/cilium/pkg/hubble/parser/fieldmask"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Relay is a Hubble Relay built on Cilium's observer API. It replays events in follow
// mode, honouring since and the allow/deny filters that the tests use, and refuses requests
// it would not answer correctly.
type Relay struct {
	observerpb.UnimplementedObserverServer
	events []*observerpb.GetFlowsResponse
	// PauseAfter > 0 makes the relay stop after sending that many flows, close Paused and
	// keep the stream open, so that a test can kill it at a known point. Set it before the
	// first request.
	PauseAfter int
	Paused     chan struct{}

	mu       sync.Mutex
	requests []*observerpb.GetFlowsRequest
}

// New returns a relay that replays events (in follow mode) to every GetFlows request.
func New(events []*observerpb.GetFlowsResponse) *Relay {
	return &Relay{events: events, Paused: make(chan struct{})}
}

// Requests returns the GetFlows requests received so far.
func (s *Relay) Requests() []*observerpb.GetFlowsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// GetFlows serves one request.
func (s *Relay) GetFlows(req *observerpb.GetFlowsRequest, st grpc.ServerStreamingServer[observerpb.GetFlowsResponse]) error {
	s.mu.Lock()
	s.requests = append(s.requests, proto.Clone(req).(*observerpb.GetFlowsRequest))
	s.mu.Unlock()
	if !req.Follow || req.First {
		return status.Error(codes.InvalidArgument, "the test relay serves follow mode only")
	}
	if req.Number != 0 && (req.Since != nil || req.Until != nil) {
		return status.Error(codes.InvalidArgument, "number is incompatible with since/until")
	}
	allow, err := compile(req.Whitelist)
	if err != nil {
		return err
	}
	deny, err := compile(req.Blacklist)
	if err != nil {
		return err
	}
	mask, err := fieldmask.New(req.FieldMask)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	sent := 0
	for _, ev := range s.events {
		if req.Since != nil && ev.Time.AsTime().Before(req.Since.AsTime()) {
			continue
		}
		if f := ev.GetFlow(); f != nil {
			if (len(allow) > 0 && !matchAny(allow, f)) || matchAny(deny, f) {
				continue
			}
			if s.PauseAfter > 0 && sent == s.PauseAfter {
				close(s.Paused)
				<-st.Context().Done()
				return st.Context().Err()
			}
			sent++
			ev = Masked(mask, ev)
		}
		if err := st.Send(ev); err != nil {
			return err
		}
	}
	<-st.Context().Done()
	return nil
}

// Masked applies a field mask to a flow response the way Relay does, with Cilium's own code.
func Masked(mask fieldmask.FieldMask, ev *observerpb.GetFlowsResponse) *observerpb.GetFlowsResponse {
	if !mask.Active() {
		return ev
	}
	f := &flowpb.Flow{}
	mask.Alloc(f.ProtoReflect())
	mask.Copy(f.ProtoReflect(), ev.GetFlow().ProtoReflect())
	return &observerpb.GetFlowsResponse{
		ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f},
		NodeName:      ev.NodeName,
		Time:          ev.Time,
	}
}

type matcher func(*flowpb.Flow) bool

// compile supports the filter fields the tests use; any other field is refused rather than
// ignored, so a test cannot pass by accident.
func compile(filters []*flowpb.FlowFilter) ([][]matcher, error) {
	var out [][]matcher
	for _, f := range filters {
		rest := proto.Clone(f).(*flowpb.FlowFilter)
		rest.Verdict, rest.Protocol, rest.DestinationPort, rest.SourcePod, rest.DestinationPod = nil, nil, nil, nil, nil
		rest.SourceLabel, rest.DestinationLabel, rest.TrafficDirection = nil, nil, nil
		if proto.Size(rest) != 0 {
			return nil, status.Errorf(codes.InvalidArgument, "the test relay does not support filter %v", rest)
		}
		var ms []matcher
		if len(f.Verdict) > 0 {
			ms = append(ms, func(fl *flowpb.Flow) bool { return slices.Contains(f.Verdict, fl.Verdict) })
		}
		if len(f.TrafficDirection) > 0 {
			ms = append(ms, func(fl *flowpb.Flow) bool { return slices.Contains(f.TrafficDirection, fl.TrafficDirection) })
		}
		if len(f.Protocol) > 0 {
			ms = append(ms, func(fl *flowpb.Flow) bool { return slices.Contains(f.Protocol, ProtocolName(fl)) })
		}
		if len(f.DestinationPort) > 0 {
			ms = append(ms, func(fl *flowpb.Flow) bool {
				return slices.Contains(f.DestinationPort, strconv.FormatUint(uint64(DestPort(fl)), 10))
			})
		}
		if len(f.SourcePod) > 0 {
			ms = append(ms, func(fl *flowpb.Flow) bool { return podMatch(f.SourcePod, fl.Source) })
		}
		if len(f.DestinationPod) > 0 {
			ms = append(ms, func(fl *flowpb.Flow) bool { return podMatch(f.DestinationPod, fl.Destination) })
		}
		if len(f.SourceLabel) > 0 {
			ms = append(ms, func(fl *flowpb.Flow) bool { return labelMatch(f.SourceLabel, fl.Source) })
		}
		if len(f.DestinationLabel) > 0 {
			ms = append(ms, func(fl *flowpb.Flow) bool { return labelMatch(f.DestinationLabel, fl.Destination) })
		}
		out = append(out, ms)
	}
	return out, nil
}

// matchAny: a flow matches a filter when it matches all of its fields, and the list when it
// matches any filter (Hubble's semantics).
func matchAny(filters [][]matcher, f *flowpb.Flow) bool {
	for _, ms := range filters {
		all := true
		for _, m := range ms {
			all = all && m(f)
		}
		if all {
			return true
		}
	}
	return false
}

// DestPort is the flow's L4 destination port, 0 without one.
func DestPort(f *flowpb.Flow) uint32 {
	switch p := f.L4.GetProtocol().(type) {
	case *flowpb.Layer4_TCP:
		return p.TCP.GetDestinationPort()
	case *flowpb.Layer4_UDP:
		return p.UDP.GetDestinationPort()
	case *flowpb.Layer4_SCTP:
		return p.SCTP.GetDestinationPort()
	}
	return 0
}

// ProtocolName is the flow's L4 protocol as Hubble's protocol filter names it.
func ProtocolName(f *flowpb.Flow) string {
	switch f.L4.GetProtocol().(type) {
	case *flowpb.Layer4_TCP:
		return "tcp"
	case *flowpb.Layer4_UDP:
		return "udp"
	case *flowpb.Layer4_ICMPv4:
		return "icmpv4"
	case *flowpb.Layer4_ICMPv6:
		return "icmpv6"
	}
	return ""
}

// podMatch implements Hubble's "namespace/pod-prefix" pod filter.
func podMatch(patterns []string, ep *flowpb.Endpoint) bool {
	name := ep.GetNamespace() + "/" + ep.GetPodName()
	for _, p := range patterns {
		if !strings.Contains(p, "/") {
			p = "default/" + p
		}
		if ep.GetPodName() != "" && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func labelMatch(want []string, ep *flowpb.Endpoint) bool {
	for _, l := range want {
		if slices.Contains(ep.GetLabels(), l) {
			return true
		}
	}
	return false
}

// Serve serves relay on addr ("127.0.0.1:0" for a new port) until the test ends.
func Serve(tb testing.TB, relay *Relay, addr string, opts ...grpc.ServerOption) (*grpc.Server, string) {
	tb.Helper()
	lis, err := net.Listen("tcp", addr)
	require.NoError(tb, err)
	return ServeOn(tb, relay, lis, opts...)
}

// ServeOn serves relay on lis (a unix socket, as the Hubble server on a node listens) until
// the test ends.
func ServeOn(tb testing.TB, relay *Relay, lis net.Listener, opts ...grpc.ServerOption) (*grpc.Server, string) {
	tb.Helper()
	srv := grpc.NewServer(opts...)
	observerpb.RegisterObserverServer(srv, relay)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	tb.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return srv, lis.Addr().String()
}
