package devcloud

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

func event(reason string, seq uint64) *cloudv1.StreamEventsRequest {
	return &cloudv1.StreamEventsRequest{
		Request:  &cloudv1.StreamEventsRequest_KubernetesEvent{KubernetesEvent: &cloudv1.KubernetesEvent{Reason: reason}},
		Sequence: seq,
	}
}

// openEvents opens StreamEvents in delivery session (none if "").
func openEvents(t *testing.T, c *client, session string) grpc.BidiStreamingClient[cloudv1.StreamEventsRequest, cloudv1.StreamEventsResponse] {
	t.Helper()
	ctx := c.ctx
	if session != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, envelope.SessionHeader, session)
	}
	ev, err := c.stream.StreamEvents(ctx)
	require.NoError(t, err)
	return ev
}

// waitAck reads until an acknowledgement of at least seq arrives.
func waitAck(t *testing.T, ev grpc.BidiStreamingClient[cloudv1.StreamEventsRequest, cloudv1.StreamEventsResponse], seq uint64) {
	t.Helper()
	for {
		resp, err := ev.Recv()
		require.NoError(t, err)
		if resp.GetAcknowledged() >= seq {
			return
		}
	}
}

func eventReasons(recs []Record) []string {
	var out []string
	for _, r := range recs {
		if e, ok := r.Payload.(*cloudv1.KubernetesEvent); ok {
			out = append(out, e.GetReason())
		}
	}
	return out
}

// Numbered messages are acknowledged once recorded; after a reconnect in the same session,
// those at or below the acknowledged sequence are counted as duplicates, not recorded, and
// acknowledged again. A restarted devcloud rebuilds the sequence from its record files.
func TestAcknowledgesAndFiltersDuplicates(t *testing.T) {
	certs := testCerts(t)
	recordDir := filepath.Join(t.TempDir(), "rec")
	s := startServer(t, Config{CertsDir: certs, RecordDir: recordDir})
	c := newClient(t, s)
	ev := openEvents(t, c, "s1")
	for i, r := range []string{"a", "b", "c"} {
		require.NoError(t, ev.Send(event(r, uint64(i+1))))
	}
	waitAck(t, ev, 3)
	assert.EqualValues(t, 3, s.Status().Operators[0].Streams[cloudconn.StreamEvents].Acknowledged)

	// The operator re-sends 2 and 3 on a new stream, then goes on with 4.
	ev2 := openEvents(t, c, "s1")
	for i, r := range []string{"b", "c", "d"} {
		require.NoError(t, ev2.Send(event(r, uint64(i+2))))
	}
	waitAck(t, ev2, 4)
	assert.Equal(t, []string{"a", "b", "c", "d"}, eventReasons(s.Records()))
	st := s.Status()
	assert.EqualValues(t, 2, st.Duplicates)
	assert.EqualValues(t, 2, st.Operators[0].Streams[cloudconn.StreamEvents].Duplicates)

	// Another session (a restarted operator) starts its own sequence.
	ev3 := openEvents(t, c, "s2")
	require.NoError(t, ev3.Send(event("e", 1)))
	waitAck(t, ev3, 1)

	// Without a session nothing is acknowledged or filtered.
	plain := openEvents(t, c, "")
	require.NoError(t, plain.Send(event("f", 1)))
	require.NoError(t, plain.Send(event("f", 1)))
	require.NoError(t, s.WaitFor(testCtx(t), func(r []Record) bool { return len(eventReasons(r)) == 7 }))

	s.Kill()
	// A line cut short by the crash is skipped.
	f, err := os.OpenFile(filepath.Join(recordDir, "events.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"operator":"x","stream":"events","session":"s1","sequ`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	restarted := startServer(t, Config{CertsDir: certs, RecordDir: recordDir})
	c = newClient(t, restarted)
	ev4 := openEvents(t, c, "s1")
	require.NoError(t, ev4.Send(event("d", 4)))
	require.NoError(t, ev4.Send(event("g", 5)))
	waitAck(t, ev4, 5)
	assert.Equal(t, []string{"g"}, eventReasons(restarted.Records()))
	assert.EqualValues(t, 1, restarted.Status().Duplicates)
}

// FuzzLoadDeliveries: whatever a record file holds, loading it neither fails on a line nor
// panics, and only numbered lines of a session count.
func FuzzLoadDeliveries(f *testing.F) {
	f.Add([]byte(`{"operator":"o","stream":"events","session":"s","sequence":3,"message":{}}` + "\n"))
	f.Add([]byte(`{"operator":"o","stream":"data","message":{}}` + "\n" + `{"sequence":18446744073709551615,"session":"x"}`))
	f.Add([]byte(`{"operator":"o","stream":"events","session":"s","sequ`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "events.jsonl"), data, 0o600))
		got, err := loadDeliveries(dir)
		if err != nil {
			return // a line longer than the scanner's limit
		}
		for k, d := range got {
			assert.NotEmpty(t, k.session)
			assert.NotZero(t, d.acked)
		}
	})
}
