package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

var (
	// inboundEnvelopes are the cloud → operator envelopes that carry requests.
	inboundEnvelopes = []*envelope.Envelope{
		envelope.Response(cloudconn.StreamControl),
		envelope.Response(cloudconn.StreamData),
	}
	// sideStreams are the streams opened after InventoryCommit, in opening order after
	// StreamControl, and the ones Send may prefer over StreamData.
	sideStreams = []cloudconn.Stream{cloudconn.StreamFlows, cloudconn.StreamEvents, cloudconn.StreamLogs}
)

// preferredStream returns the side stream whose envelope carries the payload type, or
// StreamData. It fails for types that no envelope carries.
func preferredStream(name protoreflect.FullName) (cloudconn.Stream, error) {
	for _, s := range sideStreams {
		if envelope.Request(s).Has(name) {
			return s, nil
		}
	}
	if envelope.Request(cloudconn.StreamData).Has(name) {
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
		if e.Has(name) {
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
