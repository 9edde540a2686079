package kestrelcommand

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

// sendAll sends n events named prefix-i with SendAcknowledged and returns their waits.
func sendAll(t *testing.T, h *harness, prefix string, n int) []cloudconn.Acknowledgement {
	t.Helper()
	acks := make([]cloudconn.Acknowledgement, n)
	for i := range n {
		ack, err := h.ext.SendAcknowledged(testCtx(t), event(fmt.Sprintf("%s-%d", prefix, i)))
		require.NoError(t, err)
		acks[i] = ack
	}
	return acks
}

// eventCounts counts the recorded events by name, on every stream.
func eventCounts(records []devcloud.Record) map[string]int {
	out := map[string]int{}
	for _, r := range records {
		if e, ok := r.Payload.(*cloudv1.KubernetesEvent); ok {
			out[e.GetName()]++
		}
	}
	return out
}

// requireEachOnce checks that events prefix-0 … prefix-(n-1) were each recorded exactly once.
func requireEachOnce(t *testing.T, counts map[string]int, prefix string, n int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		require.Equal(t, 1, counts[name], "%s recorded %d times", name, counts[name])
	}
}

func TestAcknowledgedSendWaitsForTheAcknowledgement(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	waitSideStreamsUsable(t, h, cloud)

	for _, ack := range sendAll(t, h, "acked", 20) {
		require.NoError(t, ack(testCtx(t)))
	}
	requireEachOnce(t, eventCounts(cloud.Records()), "acked", 20)
	ev := cloud.Status().Operators[0].Streams[cloudconn.StreamEvents]
	assert.EqualValues(t, 20, ev.Acknowledged)
	assert.Equal(t, h.ext.deliverySession, ev.Session)

	// A server that records but does not answer keeps the sender waiting until it gives up.
	cloud.WithholdAcks(true)
	acks := sendAll(t, h, "withheld", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, acks[0](ctx), context.DeadlineExceeded)
	assert.Empty(t, h.ext.outboxes[cloudconn.StreamEvents].pending(), "a given-up message is not re-sent")
}

// Messages the server recorded but did not acknowledge before the stream broke are written
// again on the next stream with their numbers; the server filters and counts the copies, and
// the senders' waits complete. Each event is recorded once.
func TestUnacknowledgedMessagesAreResentAndDeduplicated(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	waitSideStreamsUsable(t, h, cloud)
	for _, ack := range sendAll(t, h, "first", 1) {
		require.NoError(t, ack(testCtx(t)))
	}

	cloud.WithholdAcks(true)
	acks := sendAll(t, h, "ev", 50)
	require.NoError(t, cloud.WaitFor(testCtx(t), func(r []devcloud.Record) bool { return len(eventCounts(r)) == 51 }))
	cloud.WithholdAcks(false)
	cloud.BreakStream("", cloudconn.StreamEvents)
	for _, ack := range acks {
		require.NoError(t, ack(testCtx(t)))
	}
	// The first copy's acknowledgement releases every wait; the other copies are still arriving.
	require.NoError(t, cloud.WaitStatus(testCtx(t), func(st devcloud.Status) bool { return st.Duplicates == 50 }),
		"every re-sent message is a duplicate")
	requireEachOnce(t, eventCounts(cloud.Records()), "ev", 50)
}

// A cloud killed after recording, before acknowledging, and restarted on its record files
// keeps the acknowledged sequences: the operator's re-sent messages are filtered there too,
// and nothing the senders waited for is lost.
func TestCloudKilledBeforeAcknowledgingLosesNothing(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs, RecordDir: filepath.Join(t.TempDir(), "records")})
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	waitSideStreamsUsable(t, h, cloud)
	for _, ack := range sendAll(t, h, "first", 1) {
		require.NoError(t, ack(testCtx(t)))
	}

	cloud.WithholdAcks(true)
	acks := sendAll(t, h, "ev", 30)
	require.NoError(t, cloud.WaitFor(testCtx(t), func(r []devcloud.Record) bool { return len(eventCounts(r)) == 31 }))
	before := eventCounts(cloud.Records())
	cloud.Kill()
	cloud.Restart(t)
	for _, ack := range acks {
		require.NoError(t, ack(testCtx(t)))
	}
	require.NoError(t, cloud.WaitStatus(testCtx(t), func(st devcloud.Status) bool { return st.Duplicates == 30 }),
		"the restarted cloud filters every re-sent message")
	for name, n := range eventCounts(cloud.Records()) {
		before[name] += n
	}
	requireEachOnce(t, before, "ev", 30)
}

// With a server that never acknowledges, a sender's wait ends after the quiet period, as
// Send would have returned: behaviour as before acknowledgements existed.
func TestServerThatNeverAcknowledges(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	cloud.WithholdAcks(true)
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	waitSideStreamsUsable(t, h, cloud)

	start := time.Now()
	for _, ack := range sendAll(t, h, "ev", 5) {
		require.NoError(t, ack(testCtx(t)))
	}
	assert.Less(t, time.Since(start), 3*ackQuiet)
	assert.Equal(t, ackNo, h.ext.session.Load().open[cloudconn.StreamEvents].Load().ackMode())
	// Later sends on that stream do not wait at all.
	start = time.Now()
	for _, ack := range sendAll(t, h, "later", 5) {
		require.NoError(t, ack(testCtx(t)))
	}
	assert.Less(t, time.Since(start), ackQuiet/2)
	assert.False(t, h.ext.sawAcks.Load())
}
