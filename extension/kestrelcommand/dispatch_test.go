package kestrelcommand

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

type sentReply struct {
	stream cloudconn.Stream
	env    proto.Message
}

// testDispatcher wraps replies exactly as the session does and records them.
func testDispatcher(tb testing.TB) (*dispatcher, func() []sentReply) {
	tb.Helper()
	telemetry, err := metadata.NewTelemetryBuilder(componenttest.NewNopTelemetrySettings())
	require.NoError(tb, err)
	var mu sync.Mutex
	var sent []sentReply
	d := newDispatcher(context.Background(), 2, zap.NewNop(), telemetry, func(_ context.Context, arrival cloudconn.Stream, resp proto.Message) error {
		s := replyStream(arrival, resp)
		env, err := envelope.Request(s).Wrap(resp)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, sentReply{s, env})
		return nil
	})
	return d, func() []sentReply {
		d.wait()
		mu.Lock()
		defer mu.Unlock()
		return sent
	}
}

// inboundRequestTypes lists every message the cloud can send as a request.
func inboundRequestTypes() []protoreflect.MessageType {
	seen := map[protoreflect.FullName]bool{}
	var out []protoreflect.MessageType
	for _, e := range inboundEnvelopes {
		env := e.New().ProtoReflect()
		fields := env.Descriptor().Oneofs().Get(0).Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			if isLiveness(fd.Message().FullName()) || seen[fd.Message().FullName()] {
				continue
			}
			seen[fd.Message().FullName()] = true
			out = append(out, env.NewField(fd).Message().Type())
		}
	}
	return out
}

func TestEveryUnhandledRequestIsAnswered(t *testing.T) {
	types := inboundRequestTypes()
	require.Len(t, types, 9)
	for _, mt := range types {
		name := mt.Descriptor().FullName()
		t.Run(string(name.Name()), func(t *testing.T) {
			req := mt.New()
			if fd := stringField(req.Descriptor().Fields(), "request_id"); fd != nil {
				req.Set(fd, protoreflect.ValueOfString("id-1"))
			}
			for _, arrival := range []cloudconn.Stream{cloudconn.StreamControl, cloudconn.StreamData} {
				d, sent := testDispatcher(t)
				d.dispatch(context.Background(), arrival, req.Interface())
				replies := sent()
				require.Len(t, replies, 1)
				resp := envelope.Unwrap(replies[0].env).ProtoReflect()
				if p, ok := resp.Interface().(*cloudv1.NetworkPoliciesWithErrors); ok {
					assert.Equal(t, cloudconn.StreamData, replies[0].stream)
					require.Len(t, p.GetPolicies(), 1)
					assert.Equal(t, "not supported by this operator: cloud.v1.NetworkPolicyWithError", p.GetPolicies()[0].GetErrorMessage())
					continue
				}
				assert.Equal(t, arrival, replies[0].stream, "answered on the stream the request came in on")
				assert.Equal(t, "id-1", resp.Get(resp.Descriptor().Fields().ByName("request_id")).String())
				errField := stringField(resp.Descriptor().Fields(), "error_message")
				if errField == nil {
					errField = stringField(resp.Descriptor().Fields(), "global_error_message")
				}
				assert.Equal(t, "not supported by this operator: "+string(name), resp.Get(errField).String())
			}
		})
	}
}

func TestHandlerOutcomes(t *testing.T) {
	d, sent := testDispatcher(t)
	mustRegister(t, d.register, &cloudv1.MetricsQueryRequest{}, func(_ context.Context, req proto.Message) proto.Message {
		return &cloudv1.MetricsQueryResponse{RequestId: req.(*cloudv1.MetricsQueryRequest).GetRequestId(), TotalSeriesMatched: 3}
	})
	mustRegister(t, d.register, &cloudv1.ShellCommandRequest{}, func(context.Context, proto.Message) proto.Message {
		panic("boom")
	})
	mustRegister(t, d.register, &cloudv1.NetworkPolicyWithError{}, func(_ context.Context, req proto.Message) proto.Message {
		return &cloudv1.NetworkPoliciesWithErrors{Policies: []*cloudv1.NetworkPolicyWithError{req.(*cloudv1.NetworkPolicyWithError)}}
	})
	mustRegister(t, d.register, &cloudv1.YamlApplyRequest{}, func(context.Context, proto.Message) proto.Message { return nil })
	mustRegister(t, d.register, &cloudv1.YamlDryRunRequest{}, func(context.Context, proto.Message) proto.Message {
		return (*cloudv1.YamlDryRunResponse)(nil)
	})

	d.dispatch(context.Background(), cloudconn.StreamControl, &cloudv1.MetricsQueryRequest{RequestId: "m"})
	d.dispatch(context.Background(), cloudconn.StreamControl, &cloudv1.ShellCommandRequest{RequestId: "s"})
	d.dispatch(context.Background(), cloudconn.StreamControl, &cloudv1.NetworkPolicyWithError{PolicyId: "p"})
	d.dispatch(context.Background(), cloudconn.StreamData, &cloudv1.YamlApplyRequest{RequestId: "y"})
	d.dispatch(context.Background(), cloudconn.StreamData, &cloudv1.YamlDryRunRequest{RequestId: "typed-nil"})
	byType := map[protoreflect.FullName]sentReply{}
	for _, r := range sent() {
		byType[envelope.Unwrap(r.env).ProtoReflect().Descriptor().FullName()] = r
	}
	require.Len(t, byType, 3)
	m := byType["cloud.v1.MetricsQueryResponse"]
	assert.Equal(t, cloudconn.StreamControl, m.stream)
	assert.True(t, proto.Equal(&cloudv1.MetricsQueryResponse{RequestId: "m", TotalSeriesMatched: 3}, envelope.Unwrap(m.env)))
	s := byType["cloud.v1.ShellCommandResponse"]
	assert.Equal(t, "s", envelope.Unwrap(s.env).(*cloudv1.ShellCommandResponse).GetRequestId())
	assert.Contains(t, envelope.Unwrap(s.env).(*cloudv1.ShellCommandResponse).GetGlobalErrorMessage(), "handler panicked: boom")
	// StreamControlRequest has no field for the ack, so it falls back to StreamData.
	assert.Equal(t, cloudconn.StreamData, byType["cloud.v1.NetworkPoliciesWithErrors"].stream)
}

func TestDispatchWaitsForAFreeSlot(t *testing.T) {
	d, sent := testDispatcher(t)
	release := make(chan struct{})
	started := make(chan struct{}, 3)
	mustRegister(t, d.register, &cloudv1.MetricsQueryRequest{}, func(context.Context, proto.Message) proto.Message {
		started <- struct{}{}
		<-release
		return &cloudv1.MetricsQueryResponse{}
	})
	for range 2 {
		d.dispatch(context.Background(), cloudconn.StreamControl, &cloudv1.MetricsQueryRequest{})
	}
	<-started
	<-started
	// Both slots are busy: a third dispatch gives up when its stream's context ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.dispatch(ctx, cloudconn.StreamControl, &cloudv1.MetricsQueryRequest{})
	close(release)
	assert.Len(t, sent(), 2)
	assert.Empty(t, started)
}

func TestRouting(t *testing.T) {
	for payload, want := range map[proto.Message]cloudconn.Stream{
		&cloudv1.Flow{}:                  cloudconn.StreamFlows,
		&cloudv1.L7AccessLog{}:           cloudconn.StreamFlows,
		&cloudv1.KubernetesEvent{}:       cloudconn.StreamEvents,
		&cloudv1.PodStatusChange{}:       cloudconn.StreamEvents,
		&cloudv1.NodeConditionChange{}:   cloudconn.StreamEvents,
		&cloudv1.WorkloadRolloutStatus{}: cloudconn.StreamEvents,
		&cloudv1.DatadogMonitorAlert{}:   cloudconn.StreamEvents,
		&cloudv1.PodLogs{}:               cloudconn.StreamLogs,
		&cloudv1.Workload{}:              cloudconn.StreamData,
		&cloudv1.InventoryCommit{}:       cloudconn.StreamData,
		&cloudv1.MetricsQueryResponse{}:  cloudconn.StreamData,
		&cloudv1.OperatorStats{}:         cloudconn.StreamData,
	} {
		got, err := preferredStream(payload.ProtoReflect().Descriptor().FullName())
		require.NoError(t, err)
		assert.Equal(t, want, got, "%T", payload)
		// Everything that has a side stream can also fall back to StreamData.
		_, err = envelope.Request(cloudconn.StreamData).Wrap(payload)
		require.NoError(t, err)
	}
}

// FuzzDispatch feeds arbitrary bytes as inbound envelopes of both request-carrying
// streams: decoding, dispatch (with and without handlers) and reply wrapping must never
// panic, and every handled or answerable request gets exactly one reply.
func FuzzDispatch(f *testing.F) {
	for _, m := range []proto.Message{
		&cloudv1.StreamControlResponse{Response: &cloudv1.StreamControlResponse_MetricsQueryRequest{MetricsQueryRequest: &cloudv1.MetricsQueryRequest{RequestId: "a"}}},
		&cloudv1.StreamControlResponse{Response: &cloudv1.StreamControlResponse_NetworkPolicy{NetworkPolicy: &cloudv1.NetworkPolicyWithError{PolicyId: "p"}}},
		&cloudv1.StreamDataResponse{Response: &cloudv1.StreamDataResponse_ShellCommandRequest{ShellCommandRequest: &cloudv1.ShellCommandRequest{RequestId: "b", Commands: []string{"ls"}}}},
		&cloudv1.StreamDataResponse{Response: &cloudv1.StreamDataResponse_Heartbeat{Heartbeat: &cloudv1.Heartbeat{}}},
		&cloudv1.StreamDataResponse{Response: &cloudv1.StreamDataResponse_Ack{Ack: &cloudv1.Ack{}}},
	} {
		b, err := proto.Marshal(m)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{0x1a, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, sent := testDispatcher(t)
		mustRegister(t, d.register, &cloudv1.MetricsQueryRequest{}, func(_ context.Context, req proto.Message) proto.Message {
			return &cloudv1.MetricsQueryResponse{RequestId: req.(*cloudv1.MetricsQueryRequest).GetRequestId()}
		})
		mustRegister(t, d.register, &cloudv1.YamlDryRunRequest{}, func(context.Context, proto.Message) proto.Message { return nil })
		want := 0
		for arrival, env := range map[cloudconn.Stream]proto.Message{
			cloudconn.StreamControl: &cloudv1.StreamControlResponse{},
			cloudconn.StreamData:    &cloudv1.StreamDataResponse{},
		} {
			if proto.Unmarshal(raw, env) != nil {
				continue
			}
			req := envelope.Unwrap(env)
			if req == nil || isLiveness(req.ProtoReflect().Descriptor().FullName()) {
				continue
			}
			if _, ok := req.(*cloudv1.YamlDryRunRequest); !ok {
				want++
			}
			d.dispatch(context.Background(), arrival, req)
		}
		assert.Len(t, sent(), want)
	})
}
