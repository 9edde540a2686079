package devcloud

import (
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
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

func heartbeat(stream cloudconn.Stream) proto.Message {
	env, err := envelope.Response(stream).Wrap(&cloudv1.Heartbeat{Timestamp: timestamppb.Now()})
	if err != nil {
		panic(err) // every response envelope has a heartbeat member
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
