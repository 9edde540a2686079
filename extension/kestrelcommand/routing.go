package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
)

// envelope describes one stream envelope message: the oneof fields it carries, keyed by
// the full name of each field's message type. The protocol's routing table
// (docs/protocol.md#routing-table) is exactly "which envelope has a field of this type",
// so it is derived from the descriptors instead of being written out by hand.
type envelope struct {
	mt     protoreflect.MessageType
	fields map[protoreflect.FullName]protoreflect.FieldDescriptor
}

func newEnvelope(m proto.Message) *envelope {
	mt := m.ProtoReflect().Type()
	e := &envelope{mt: mt, fields: map[protoreflect.FullName]protoreflect.FieldDescriptor{}}
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

// has reports whether the envelope carries messages of the given type.
func (e *envelope) has(name protoreflect.FullName) bool {
	_, ok := e.fields[name]
	return ok
}

// wrap puts payload into a new envelope. It refuses typed nil payloads and payloads
// whose Go type differs from the generated type of the field (e.g. a dynamicpb message
// of the same name), because protoreflect panics on such a Set.
func (e *envelope) wrap(payload proto.Message) (proto.Message, error) {
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

// unwrap returns the message set in the envelope's oneof, or nil if none is set.
func unwrap(env proto.Message) proto.Message {
	m := env.ProtoReflect()
	oneofs := m.Descriptor().Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		if fd := m.WhichOneof(oneofs.Get(i)); fd != nil && fd.Message() != nil {
			return m.Get(fd).Message().Interface()
		}
	}
	return nil
}

var (
	// requestEnvelopes are the operator → cloud envelopes of each stream.
	requestEnvelopes = map[cloudconn.Stream]*envelope{
		cloudconn.StreamData:    newEnvelope(&cloudv1.StreamDataRequest{}),
		cloudconn.StreamControl: newEnvelope(&cloudv1.StreamControlRequest{}),
		cloudconn.StreamFlows:   newEnvelope(&cloudv1.StreamFlowsRequest{}),
		cloudconn.StreamEvents:  newEnvelope(&cloudv1.StreamEventsRequest{}),
		cloudconn.StreamLogs:    newEnvelope(&cloudv1.StreamLogsRequest{}),
	}
	// inboundEnvelopes are the cloud → operator envelopes that carry requests.
	inboundEnvelopes = []*envelope{
		newEnvelope(&cloudv1.StreamControlResponse{}),
		newEnvelope(&cloudv1.StreamDataResponse{}),
	}
	// sideStreams are the streams opened after InventoryCommit, in opening order after
	// StreamControl, and the ones Send may prefer over StreamData.
	sideStreams = []cloudconn.Stream{cloudconn.StreamFlows, cloudconn.StreamEvents, cloudconn.StreamLogs}
)

// preferredStream returns the side stream whose envelope carries the payload type, or
// StreamData. It fails for types that no envelope carries.
func preferredStream(name protoreflect.FullName) (cloudconn.Stream, error) {
	for _, s := range sideStreams {
		if requestEnvelopes[s].has(name) {
			return s, nil
		}
	}
	if requestEnvelopes[cloudconn.StreamData].has(name) {
		return cloudconn.StreamData, nil
	}
	return "", status.Errorf(codes.InvalidArgument, "%s cannot be sent to Kestrel Cloud: no stream envelope carries it", name)
}

// isRequestType reports whether the cloud can send messages of this type as requests.
func isRequestType(name protoreflect.FullName) bool {
	if isLiveness(name) {
		return false
	}
	for _, e := range inboundEnvelopes {
		if e.has(name) {
			return true
		}
	}
	return false
}

var (
	heartbeatName = (&cloudv1.Heartbeat{}).ProtoReflect().Descriptor().FullName()
	ackName       = (&cloudv1.Ack{}).ProtoReflect().Descriptor().FullName()
)

// isLiveness reports whether the message only signals that the stream is alive.
func isLiveness(name protoreflect.FullName) bool {
	return name == heartbeatName || name == ackName
}
