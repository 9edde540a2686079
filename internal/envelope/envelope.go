// Package envelope is the one table of the cloud.v1 stream envelopes: which message each of
// the five streams carries from the operator to the cloud (its request) and back (its
// response), and how a payload goes into and comes out of them. The kestrel_command
// extension and devcloud, the two ends of the protocol, both use it.
//
// The protocol's routing table (docs/protocol.md#routing-table) is exactly "which envelope
// has a oneof field of this type", so it is derived from the descriptors instead of being
// written out by hand.
package envelope // import "github.com/kestrelai/otelcol-kestrel/internal/envelope"

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
)

// streams is the table: each stream's request and response envelope.
var streams = map[cloudconn.Stream]struct{ request, response *Envelope }{
	cloudconn.StreamData:    {of(&cloudv1.StreamDataRequest{}), of(&cloudv1.StreamDataResponse{})},
	cloudconn.StreamControl: {of(&cloudv1.StreamControlRequest{}), of(&cloudv1.StreamControlResponse{})},
	cloudconn.StreamFlows:   {of(&cloudv1.StreamFlowsRequest{}), of(&cloudv1.StreamFlowsResponse{})},
	cloudconn.StreamEvents:  {of(&cloudv1.StreamEventsRequest{}), of(&cloudv1.StreamEventsResponse{})},
	cloudconn.StreamLogs:    {of(&cloudv1.StreamLogsRequest{}), of(&cloudv1.StreamLogsResponse{})},
}

// Request returns the envelope the operator sends on stream; nil for an unknown stream.
func Request(stream cloudconn.Stream) *Envelope { return streams[stream].request }

// Response returns the envelope the cloud sends on stream; nil for an unknown stream.
func Response(stream cloudconn.Stream) *Envelope { return streams[stream].response }

// Envelope describes one envelope message: the oneof fields it carries, keyed by the full
// name of each field's message type.
type Envelope struct {
	mt     protoreflect.MessageType
	fields map[protoreflect.FullName]protoreflect.FieldDescriptor
}

func of(m proto.Message) *Envelope {
	mt := m.ProtoReflect().Type()
	e := &Envelope{mt: mt, fields: map[protoreflect.FullName]protoreflect.FieldDescriptor{}}
	oneofs := mt.Descriptor().Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		fields := oneofs.Get(i).Fields()
		for j := 0; j < fields.Len(); j++ {
			fd := fields.Get(j)
			if fd.Message() != nil {
				e.fields[fd.Message().FullName()] = fd
			}
		}
	}
	return e
}

// New returns an empty envelope, e.g. to receive into.
func (e *Envelope) New() proto.Message { return e.mt.New().Interface() }

// Has reports whether the envelope carries messages of the given type.
func (e *Envelope) Has(name protoreflect.FullName) bool {
	_, ok := e.fields[name]
	return ok
}

// Wrap puts payload into a new envelope. It refuses, with codes.InvalidArgument, payloads of
// a type the envelope does not carry, typed nil payloads, and payloads whose Go type differs
// from the generated type of the field (e.g. a dynamicpb message of the same name), on
// which protoreflect would panic.
func (e *Envelope) Wrap(payload proto.Message) (proto.Message, error) {
	pr := payload.ProtoReflect()
	if !pr.IsValid() {
		return nil, status.Errorf(codes.InvalidArgument, "nil %s", pr.Descriptor().FullName())
	}
	fd, ok := e.fields[pr.Descriptor().FullName()]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "%s has no field for %s", e.mt.Descriptor().FullName(), pr.Descriptor().FullName())
	}
	env := e.mt.New()
	if env.NewField(fd).Message().Type() != pr.Type() {
		return nil, status.Errorf(codes.InvalidArgument, "payload %T is not the generated cloud.v1 type for %s", payload, pr.Descriptor().FullName())
	}
	env.Set(fd, protoreflect.ValueOfMessage(pr))
	return env.Interface(), nil
}

// Unwrap returns the message set in an envelope's oneof, or nil if none is set.
func Unwrap(env proto.Message) proto.Message {
	m := env.ProtoReflect()
	oneofs := m.Descriptor().Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		if fd := m.WhichOneof(oneofs.Get(i)); fd != nil && fd.Message() != nil {
			return m.Get(fd).Message().Interface()
		}
	}
	return nil
}

// SessionHeader is the request metadata key of a stream that names the operator's delivery
// session (docs/protocol.md#acknowledged-delivery): numbered messages are acknowledged and
// deduplicated per operator, stream kind and session.
const SessionHeader = "kestrelai-delivery-session"

// Sequence returns the sequence of a request envelope, 0 when it has none.
func Sequence(env proto.Message) uint64 { return uintField(env, "sequence") }

// SetSequence numbers a request envelope; it does nothing to other messages.
func SetSequence(env proto.Message, seq uint64) { setUintField(env, "sequence", seq) }

// Acknowledged returns the acknowledged sequence of a response envelope, 0 when it has none.
func Acknowledged(env proto.Message) uint64 { return uintField(env, "acknowledged") }

// Ack returns a response envelope of stream with no member set, acknowledging up to seq; nil
// for an unknown stream.
func Ack(stream cloudconn.Stream, seq uint64) proto.Message {
	e := Response(stream)
	if e == nil {
		return nil
	}
	env := e.New()
	setUintField(env, "acknowledged", seq)
	return env
}

func uintField(m proto.Message, name protoreflect.Name) uint64 {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.Uint64Kind || fd.Cardinality() == protoreflect.Repeated {
		return 0
	}
	return r.Get(fd).Uint()
}

func setUintField(m proto.Message, name protoreflect.Name, v uint64) {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.Uint64Kind || fd.Cardinality() == protoreflect.Repeated {
		return
	}
	r.Set(fd, protoreflect.ValueOfUint64(v))
}
