package devcloud

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
)

// rawMessage is written to the wire as is; Inject uses it to send bytes that are not a
// valid (or not a small enough) envelope.
type rawMessage []byte

// codec marshals rawMessage verbatim and everything else with gRPC's proto codec.
type codec struct{ proto encoding.CodecV2 }

func newCodec() codec { return codec{proto: encoding.GetCodecV2(grpcproto.Name)} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if raw, ok := v.(rawMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(raw)}, nil
	}
	return c.proto.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

// Name stays "proto" so the content-subtype matches what clients send.
func (c codec) Name() string { return grpcproto.Name }

// envelopes maps each stream to the message types it receives and sends.
var envelopes = map[cloudconn.Stream]struct {
	recv, send protoreflect.MessageType
}{
	cloudconn.StreamData:    {(&cloudv1.StreamDataRequest{}).ProtoReflect().Type(), (&cloudv1.StreamDataResponse{}).ProtoReflect().Type()},
	cloudconn.StreamControl: {(&cloudv1.StreamControlRequest{}).ProtoReflect().Type(), (&cloudv1.StreamControlResponse{}).ProtoReflect().Type()},
	cloudconn.StreamFlows:   {(&cloudv1.StreamFlowsRequest{}).ProtoReflect().Type(), (&cloudv1.StreamFlowsResponse{}).ProtoReflect().Type()},
	cloudconn.StreamEvents:  {(&cloudv1.StreamEventsRequest{}).ProtoReflect().Type(), (&cloudv1.StreamEventsResponse{}).ProtoReflect().Type()},
	cloudconn.StreamLogs:    {(&cloudv1.StreamLogsRequest{}).ProtoReflect().Type(), (&cloudv1.StreamLogsResponse{}).ProtoReflect().Type()},
}

// oneofFieldFor finds the envelope's oneof member whose type is inner's type. Every
// envelope has exactly one oneof and no two members share a type.
func oneofFieldFor(env protoreflect.MessageDescriptor, inner protoreflect.FullName) protoreflect.FieldDescriptor {
	fields := env.Oneofs().Get(0).Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Message() != nil && fd.Message().FullName() == inner {
			return fd
		}
	}
	return nil
}

// wrap puts inner into the envelope that stream sends to the operator.
func wrap(stream cloudconn.Stream, inner proto.Message) (proto.Message, error) {
	env := envelopes[stream].send.New()
	fd := oneofFieldFor(env.Descriptor(), inner.ProtoReflect().Descriptor().FullName())
	if fd == nil {
		return nil, fmt.Errorf("%s cannot be sent on the %s stream", inner.ProtoReflect().Descriptor().FullName(), stream)
	}
	env.Set(fd, protoreflect.ValueOfMessage(inner.ProtoReflect()))
	return env.Interface(), nil
}

// unwrap returns the payload set in a received envelope, or nil if none is set.
func unwrap(env proto.Message) proto.Message {
	m := env.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().Get(0))
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

func heartbeat(stream cloudconn.Stream) proto.Message {
	env, err := wrap(stream, &cloudv1.Heartbeat{Timestamp: timestamppb.Now()})
	if err != nil {
		panic(err) // every response envelope has a heartbeat member; see envelopes
	}
	return env
}

// requestIDField returns the string field request_id of a tool request or response.
func requestIDField(md protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	fd := md.Fields().ByName("request_id")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.Cardinality() == protoreflect.Repeated {
		return nil
	}
	return fd
}
