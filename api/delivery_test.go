package api

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// The acknowledged-delivery fields are additions of this project
// (docs/protocol.md#acknowledged-delivery): number 100 on every stream envelope, far from
// the oneof members so that upstream additions cannot collide with them.
func TestDeliveryFieldsMatchSpec(t *testing.T) {
	for _, name := range []string{"StreamDataRequest", "StreamControlRequest", "StreamFlowsRequest", "StreamEventsRequest", "StreamLogsRequest"} {
		md := cloudv1.File_cloud_v1_message_proto.Messages().ByName(protoreflect.Name(name))
		require.NotNil(t, md, name)
		assert.Equal(t, field{100, "sequence", "uint64", "singular"}, describe(md.Fields().ByNumber(100)), name)
		assert.Equal(t, 1, countAbove(md, 29), "%s: only the delivery field is numbered above the oneof members", name)
	}
	for _, name := range []string{"StreamDataResponse", "StreamControlResponse", "StreamFlowsResponse", "StreamEventsResponse", "StreamLogsResponse"} {
		md := cloudv1.File_cloud_v1_message_proto.Messages().ByName(protoreflect.Name(name))
		require.NotNil(t, md, name)
		assert.Equal(t, field{100, "acknowledged", "uint64", "singular"}, describe(md.Fields().ByNumber(100)), name)
		assert.Equal(t, 1, countAbove(md, 29), name)
	}
}

func countAbove(md protoreflect.MessageDescriptor, n protoreflect.FieldNumber) int {
	c := 0
	for i := range md.Fields().Len() {
		if md.Fields().Get(i).Number() > n {
			c++
		}
	}
	return c
}

// schemaWithoutDelivery is cloud.v1 as a server (or operator) built before acknowledged
// delivery knows it: the envelopes without field 100.
func schemaWithoutDelivery(t *testing.T) protoreflect.FileDescriptor {
	return schemaWithout(t, func(f *descriptorpb.FieldDescriptorProto) bool { return f.GetNumber() == 100 })
}

// An older server decodes a numbered envelope as the same payload with the number left in
// the unknown fields; an older operator decodes an acknowledgement as an envelope with no
// member set, which it ignores (protocol: compatibility rules), or as the heartbeat it
// travels with.
func TestOlderPeersIgnoreDeliveryFields(t *testing.T) {
	old := schemaWithoutDelivery(t)
	event := &cloudv1.KubernetesEvent{Reason: "BackOff"}
	for name, tc := range map[string]struct {
		env    proto.Message
		oneof  string
		member protoreflect.Name // "" = none
	}{
		"StreamEventsRequest": {&cloudv1.StreamEventsRequest{Request: &cloudv1.StreamEventsRequest_KubernetesEvent{KubernetesEvent: event}, Sequence: 7}, "request", "kubernetes_event"},
		"StreamDataRequest":   {&cloudv1.StreamDataRequest{Request: &cloudv1.StreamDataRequest_KubernetesEvent{KubernetesEvent: event}, Sequence: 1 << 40}, "request", "kubernetes_event"},
		"StreamDataResponse":  {&cloudv1.StreamDataResponse{Acknowledged: 12}, "response", ""},
		"StreamLogsResponse":  {&cloudv1.StreamLogsResponse{Response: &cloudv1.StreamLogsResponse_Heartbeat{Heartbeat: &cloudv1.Heartbeat{}}, Acknowledged: 3}, "response", "heartbeat"},
	} {
		t.Run(name, func(t *testing.T) {
			wire, err := proto.Marshal(tc.env)
			require.NoError(t, err)
			md := old.Messages().ByName(protoreflect.Name(name))
			require.NotNil(t, md)
			got := dynamicpb.NewMessage(md)
			require.NoError(t, proto.Unmarshal(wire, got))
			member := got.WhichOneof(md.Oneofs().ByName(protoreflect.Name(tc.oneof)))
			if tc.member == "" {
				assert.Nil(t, member)
			} else {
				require.NotNil(t, member)
				assert.Equal(t, tc.member, member.Name())
			}
			assert.NotEmpty(t, got.GetUnknown(), "the delivery field is kept as unknown fields")
		})
	}
}
