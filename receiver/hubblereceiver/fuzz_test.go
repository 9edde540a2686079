package hubblereceiver

import (
	"context"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/metadata"
)

// wantView is what the generated code decodes from a flow, in the view's terms.
func wantView(f *flowpb.Flow) flowView {
	ep := func(e *flowpb.Endpoint) endpointView {
		v := endpointView{identity: e.GetIdentity(), namespace: e.GetNamespace(), podName: e.GetPodName(), labels: e.GetLabels()}
		if w := e.GetWorkloads(); len(w) > 0 {
			v.workloadName, v.workloadKind = w[0].GetName(), w[0].GetKind()
		}
		return v
	}
	pols := func(ps []*flowpb.Policy) []policyView {
		var out []policyView
		for _, p := range ps {
			out = append(out, policyView{name: p.Name, namespace: p.Namespace, kind: p.Kind, revision: p.Revision, labels: p.Labels})
		}
		return out
	}
	v := flowView{
		time: flowagg.EventTime(f.Time), hasTime: f.Time != nil,
		uuid: f.Uuid, verdict: f.Verdict, dropReason: f.DropReasonDesc,
		srcIP: f.IP.GetSource(), dstIP: f.IP.GetDestination(), ipv6: f.IP.GetIpVersion() == flowpb.IPVersion_IPv6,
		port: destPort(f), direction: f.TrafficDirection,
		isReply: f.IsReply.GetValue(), hasIsReply: f.IsReply != nil,
		src: ep(f.Source), dst: ep(f.Destination),
	}
	if f.Time == nil {
		v.time = 0
	}
	switch f.L4.GetProtocol().(type) {
	case *flowpb.Layer4_TCP:
		v.proto = l4TCP
	case *flowpb.Layer4_UDP:
		v.proto = l4UDP
	case *flowpb.Layer4_SCTP:
		v.proto = l4SCTP
	case *flowpb.Layer4_ICMPv4:
		v.proto = l4ICMPv4
	case *flowpb.Layer4_ICMPv6:
		v.proto = l4ICMPv6
	}
	v.policies = [numPolicyLists][]policyView{
		ingressAllowed: pols(f.IngressAllowedBy), egressAllowed: pols(f.EgressAllowedBy),
		ingressDenied: pols(f.IngressDeniedBy), egressDenied: pols(f.EgressDeniedBy),
	}
	return v
}

// normalized makes empty and nil slices compare equal.
func normalized(v flowView) flowView {
	for _, e := range []*endpointView{&v.src, &v.dst} {
		if len(e.labels) == 0 {
			e.labels = nil
		}
	}
	for i := range v.policies {
		if len(v.policies[i]) == 0 {
			v.policies[i] = nil
		}
		for j := range v.policies[i] {
			if len(v.policies[i][j].labels) == 0 {
				v.policies[i][j].labels = nil
			}
		}
	}
	v.respTime, v.hasResp = 0, false
	v.rawPolicies = [numPolicyLists][]string{}
	return v
}

// checkView decodes data both ways and requires the same result wherever the generated code
// accepts the message.
func checkView(t *testing.T, data []byte) {
	var v flowView
	var resp response
	err := v.parse(data, &resp)
	msg := &observerpb.GetFlowsResponse{}
	if proto.Unmarshal(data, msg) != nil || msg.GetFlow() == nil {
		return
	}
	require.NoError(t, err, "the generated code decodes it")
	require.True(t, resp.isFlow)
	assert.Equal(t, normalized(wantView(msg.GetFlow())), normalized(v))
}

func TestViewMatchesGeneratedCode(t *testing.T) {
	n := 0
	for _, ev := range loadFixture(t) {
		if ev.GetFlow() == nil {
			continue
		}
		data, err := proto.Marshal(ev)
		require.NoError(t, err)
		checkView(t, data)
		n++
	}
	assert.Positive(t, n)
}

// FuzzFlowConversion feeds arbitrary bytes as GetFlowsResponse frames through the receiver's
// decoding, conversion and aggregation and the exporter's mapping: nothing may panic, the
// decoding must agree with the generated code wherever that accepts the input, every record
// must be accounted for, and every cloud.v1 payload must marshal.
func FuzzFlowConversion(f *testing.F) {
	for i, ev := range loadFixture(f) {
		if i%500 == 0 {
			b, err := proto.Marshal(ev)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkView(t, data)
		next := testutil.AccountingConsumer(t)
		r, err := newReceiver(createDefaultConfig().(*Config), receivertest.NewNopSettings(metadata.Type), next)
		require.NoError(t, err)
		ctx := context.Background()
		// Twice: the second one is a duplicate of the first (same UUID).
		r.handle(ctx, data)
		r.handle(ctx, data)
		r.window.Flush(ctx)
	})
}
