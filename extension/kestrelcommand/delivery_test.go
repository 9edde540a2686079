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

// The outbox's bookkeeping without a server: cumulative acknowledgements, given-up waits,
// and which waits a stream's end settles.
func TestOutboxBookkeeping(t *testing.T) {
	ob := &outbox{}
	st1 := &stream{outbox: ob}
	env := func() *cloudv1.StreamEventsRequest { return &cloudv1.StreamEventsRequest{} }
	var rs []*receipt
	for range 4 {
		e := env()
		rs = append(rs, ob.track(st1, ob.number(e), e))
	}
	assert.EqualValues(t, 3, rs[2].env.(*cloudv1.StreamEventsRequest).GetSequence())

	ob.acknowledge(2)
	require.NoError(t, rs[0].wait(context.Background()))
	require.NoError(t, rs[1].wait(context.Background()))
	assert.Nil(t, ob.track(st1, 1, env()), "an acknowledged number needs no wait")

	// A given-up wait is not written again.
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, rs[3].wait(ended), context.Canceled)
	assert.Equal(t, []*receipt{rs[2]}, ob.pending())

	// Rewritten on a stream that is then refused: it waits for the next stream; a first write
	// on a refused stream counts as sent (its replay buffer re-sends it).
	st2 := &stream{outbox: ob}
	ob.moved(rs[2], st2)
	e := env()
	held := ob.track(st2, ob.number(e), e)
	st2.ended(true)
	require.NoError(t, held.wait(context.Background()))
	assert.Equal(t, []*receipt{rs[2]}, ob.pending())

	// A stream that ended before its server was known to acknowledge fails the wait.
	st3 := &stream{outbox: ob}
	ob.moved(rs[2], st3)
	st3.ended(false)
	require.ErrorIs(t, rs[2].wait(context.Background()), cloudconn.ErrNotConnected)
	assert.Empty(t, ob.pending())

	// An acknowledging stream keeps its waits for the next stream; a late acknowledgement
	// turns a stream judged old back into an acknowledging one.
	st4 := &stream{outbox: ob, mode: ackNo}
	st4.acknowledged(5)
	assert.Equal(t, ackYes, st4.ackMode())
	e = env()
	r := ob.track(st4, ob.number(e), e)
	st4.ended(false)
	assert.Equal(t, []*receipt{r}, ob.pending())
}
