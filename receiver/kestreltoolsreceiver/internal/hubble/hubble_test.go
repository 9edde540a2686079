package hubble

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/shell"
)

// fakeRelay stands in for Hubble Relay, which cannot run here: it records the request and
// answers with canned flows, like the hubble receiver's test Relay.
type fakeRelay struct {
	observerpb.UnimplementedObserverServer
	got   chan *observerpb.GetFlowsRequest
	flows []*flowpb.Flow
}

func (f *fakeRelay) GetFlows(req *observerpb.GetFlowsRequest, st grpc.ServerStreamingServer[observerpb.GetFlowsResponse]) error {
	f.got <- req
	for _, fl := range f.flows {
		if err := st.Send(&observerpb.GetFlowsResponse{ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: fl}}); err != nil {
			return err
		}
	}
	return nil
}

func serve(t *testing.T, relay *fakeRelay) *grpc.ClientConn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	observerpb.RegisterObserverServer(srv, relay)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

var flow = &flowpb.Flow{
	Time:           timestamppb.New(time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)),
	Verdict:        flowpb.Verdict_DROPPED,
	DropReasonDesc: flowpb.DropReason_POLICY_DENIED,
	IP:             &flowpb.IP{Source: "10.0.0.1", Destination: "10.0.0.2"},
	L4:             &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: 40000, DestinationPort: 5432, Flags: &flowpb.TCPFlags{SYN: true}}}},
	Source:         &flowpb.Endpoint{Namespace: "shop", PodName: "checkout-1", Identity: 1234},
	Destination:    &flowpb.Endpoint{Namespace: "db", PodName: "orders-0", Identity: 5678},
	IsReply:        wrapperspb.Bool(false),
	Type:           flowpb.FlowType_L3_L4,
}

func run(t *testing.T, r *Runner, command string) (string, string, int) {
	t.Helper()
	cmd, err := shell.Parse(command, 4096, shell.Verbs())
	require.NoError(t, err)
	var out, errOut bytes.Buffer
	code := r.Run(context.Background(), cmd, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestObserve(t *testing.T) {
	relay := &fakeRelay{got: make(chan *observerpb.GetFlowsRequest, 10), flows: []*flowpb.Flow{flow}}
	r := New(serve(t, relay))
	r.now = func() time.Time { return time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC) }

	out, errOut, code := run(t, r, "hubble observe --namespace shop --verdict DROPPED --protocol tcp --last 50")
	require.Zero(t, code, errOut)
	assert.Contains(t, out, "shop/checkout-1:40000 (ID:1234) -> db/orders-0:5432 (ID:5678) l3_l4 DROPPED (POLICY_DENIED) (TCP Flags: SYN)")
	req := <-relay.got
	assert.False(t, req.GetFollow())
	assert.EqualValues(t, 50, req.GetNumber())
	want := []*flowpb.FlowFilter{
		{SourcePod: []string{"shop/"}, Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}, Protocol: []string{"tcp"}},
		{DestinationPod: []string{"shop/"}, Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}, Protocol: []string{"tcp"}},
	}
	require.Len(t, req.GetWhitelist(), 2)
	for i := range want {
		assert.True(t, proto.Equal(want[i], req.GetWhitelist()[i]), "%v", req.GetWhitelist()[i])
	}

	out, _, code = run(t, r, "hubble observe --from-pod shop/checkout-1 --to-port 5432 --since 10m -o json")
	require.Zero(t, code)
	assert.Contains(t, out, `"flow":{`)
	req = <-relay.got
	assert.Equal(t, time.Date(2026, 12, 6, 7, 50, 0, 0, time.UTC), req.GetSince().AsTime())
	assert.Zero(t, req.GetNumber())
	require.Len(t, req.GetWhitelist(), 1)
	assert.Equal(t, []string{"shop/checkout-1"}, req.GetWhitelist()[0].GetSourcePod())
	assert.Equal(t, []string{"5432"}, req.GetWhitelist()[0].GetDestinationPort())

	_, errOut, code = run(t, r, "hubble observe --verdict MAYBE")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unknown verdict "MAYBE"`)
}

func TestObserveWithoutRelay(t *testing.T) {
	_, errOut, code := run(t, New(nil), "hubble observe")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no Hubble Relay is configured")
}
