package envelope_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

func TestDeliveryFields(t *testing.T) {
	for _, kind := range []cloudconn.Stream{cloudconn.StreamData, cloudconn.StreamControl, cloudconn.StreamFlows, cloudconn.StreamEvents, cloudconn.StreamLogs} {
		req := envelope.Request(kind).New()
		envelope.SetSequence(req, 42)
		assert.EqualValues(t, 42, envelope.Sequence(req), kind)
		ack := envelope.Ack(kind, 9)
		assert.EqualValues(t, 9, envelope.Acknowledged(ack), kind)
		assert.Nil(t, envelope.Unwrap(ack), "an acknowledgement carries no member")
		assert.Zero(t, envelope.Sequence(ack), "responses have no sequence")
	}
	hb := &cloudv1.Heartbeat{}
	envelope.SetSequence(hb, 1) // not an envelope: ignored
	assert.Zero(t, envelope.Sequence(hb))
	assert.Nil(t, envelope.Ack("nope", 1))
}
