package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	otellog "go.opentelemetry.io/otel/log"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

// OTLP logs reach the cloud as cloud.v1 messages on the streams the protocol prefers:
// KubernetesEvent on StreamEvents and PodLogs on StreamLogs; against a server without
// side streams, both arrive on StreamData.
func TestLogsReachCloud(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		oldServer              bool
		eventStream, logStream string
	}{
		{name: "current server", eventStream: "events", logStream: "logs"},
		{name: "old server", oldServer: true, eventStream: "data", logStream: "data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dc := cloudtest.Start(t, devcloud.Config{OldServer: tc.oldServer})
			otlp := startCollector(t, dc)
			ctx := testCtx(t, 60*time.Second)

			// Data is sent only once the operator is connected and committed, so that the
			// events are routed by the stream set the server really offers.
			dc.WaitCommitted(t)
			base := waitRouted(t, dc.Server, otlp, tc.eventStream, tc.logStream)

			const events = 50
			ev := newSender(t, otlp)
			for i := range events {
				ev.warningEvent(i)
			}
			ev.flush(t)
			app := newSender(t, otlp, podResource("checkout-7d9f8b6c5-x2x4k")...)
			app.appLine("listening on :8080", otellog.SeverityInfo)
			app.appLine("payment backend unreachable", otellog.SeverityError)
			app.flush(t)

			require.NoError(t, dc.WaitFor(ctx, func(recs []devcloud.Record) bool {
				uids, _ := eventUIDs(recs[base:])
				return len(uids) == events && podLines(recs[base:]) == 2
			}))
			uids, streams := eventUIDs(dc.Records()[base:])
			for uid, n := range uids {
				assert.Equalf(t, 1, n, "event %s delivered %d times", uid, n)
			}
			assert.Equal(t, map[string]int{tc.eventStream: events}, streams)

			var logs []*cloudv1.PodLogs
			for _, r := range dc.Records()[base:] {
				if pl, ok := r.Payload.(*cloudv1.PodLogs); ok {
					assert.Equal(t, tc.logStream, string(r.Stream))
					logs = append(logs, pl)
				}
			}
			require.Len(t, logs, 1, "both lines of one pod travel in one PodLogs")
			assert.Equal(t, "checkout-7d9f8b6c5-x2x4k", logs[0].GetPodName())
			assert.Equal(t, "shop", logs[0].GetNamespace())
			assert.Equal(t, "app", logs[0].GetContainerName())
			require.Len(t, logs[0].GetLogEntries(), 2)
			assert.Equal(t, "INFO", logs[0].GetLogEntries()[0].GetLevel())
			assert.Equal(t, "ERROR", logs[0].GetLogEntries()[1].GetLevel())
			assert.Equal(t, "payment backend unreachable", logs[0].GetLogEntries()[1].GetMessage())

			// The first event in full: every field the record carried is on the wire.
			var e *cloudv1.KubernetesEvent
			for _, r := range dc.Records() {
				if ev, ok := r.Payload.(*cloudv1.KubernetesEvent); ok && ev.GetUid() == "ev-0" {
					e = ev
					break
				}
			}
			require.NotNil(t, e, "event ev-0 reached the cloud")
			assert.Equal(t, "BackOff", e.GetReason())
			assert.Equal(t, "Warning", e.GetEventType())
			assert.Equal(t, "shop", e.GetNamespace())
			assert.Equal(t, "Pod", e.GetInvolvedObject().GetKind())
			assert.Equal(t, "checkout-7d9f8b6c5-x2x4k", e.GetInvolvedObject().GetName())
			assert.Equal(t, int32(3), e.GetCount())
			assert.Equal(t, cloudv1.Action_ACTION_CREATE, e.GetAction())
			assert.Equal(t, int64(1767225900), e.GetLastTimestamp().GetSeconds())
		})
	}
}

// waitRouted sends probe events and pod log lines until one of each has arrived on the
// stream expected for it, and then until every probe has arrived; it returns the number of
// records received by then. The operator opens its side streams just after the commit and
// sends on StreamData until they are open, so data sent right after the commit may still
// take StreamData.
func waitRouted(t *testing.T, dc *devcloud.Server, otlp, eventStream, logStream string) (base int) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	ev := newSender(t, otlp)
	app := newSender(t, otlp, podResource("probe-0")...)
	routed := func(recs []devcloud.Record) (events, lines int, ok bool) {
		var evOK, logOK bool
		for _, r := range recs {
			switch p := r.Payload.(type) {
			case *cloudv1.KubernetesEvent:
				events++
				evOK = evOK || string(r.Stream) == eventStream
			case *cloudv1.PodLogs:
				lines += len(p.GetLogEntries())
				logOK = logOK || string(r.Stream) == logStream
			}
		}
		return events, lines, evOK && logOK
	}
	for probe := 1000; ; probe++ {
		ev.warningEvent(probe)
		ev.flush(t)
		app.appLine("probe", otellog.SeverityInfo)
		app.flush(t)
		sent := probe - 999
		err := dc.WaitFor(testCtx(t, 200*time.Millisecond), func(recs []devcloud.Record) bool {
			_, _, ok := routed(recs)
			return ok
		})
		if err == nil {
			require.NoError(t, dc.WaitFor(ctx, func(recs []devcloud.Record) bool {
				events, lines, _ := routed(recs)
				return events == sent && lines == sent
			}), "every probe arrives")
			return len(dc.Records())
		}
		require.NoError(t, ctx.Err(), "the side streams never carried a probe")
	}
}

func podLines(recs []devcloud.Record) int {
	n := 0
	for _, r := range recs {
		if pl, ok := r.Payload.(*cloudv1.PodLogs); ok {
			n += len(pl.GetLogEntries())
		}
	}
	return n
}

// The cloud restarts (gracefully, as a rolling deploy does) while events stream in:
// the operator reconnects, and every record the collector accepted arrives exactly once.
func TestCloudRestartLosesNothing(t *testing.T) {
	cloud := cloudtest.Start(t, devcloud.Config{})
	first := cloud.Server
	otlp := startCollector(t, cloud)
	ctx := testCtx(t, 60*time.Second)
	cloud.WaitCommitted(t)

	const total = 3000
	s := newSender(t, otlp)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range total {
			s.warningEvent(i)
			if i%20 == 0 {
				time.Sleep(time.Millisecond) // a steady stream rather than one burst
			}
		}
	}()
	// Stop while events are flowing; the sender keeps going into the outage.
	require.Eventually(t, func() bool { uids, _ := eventUIDs(first.Records()); return len(uids) >= total/10 },
		30*time.Second, time.Millisecond)
	first.Stop()
	beforeRestart, _ := eventUIDs(first.Records())
	time.Sleep(300 * time.Millisecond) // an outage the retries have to bridge
	<-sent
	s.flush(t)

	cloud.Restart(t)
	second := cloud.Server
	require.NoError(t, second.WaitFor(ctx, func(recs []devcloud.Record) bool {
		uids, _ := eventUIDs(recs)
		return len(uids)+len(beforeRestart) >= total
	}))

	afterRestart, _ := eventUIDs(second.Records())
	require.NotEmpty(t, beforeRestart, "the restart did not happen mid-stream")
	require.NotEmpty(t, afterRestart, "nothing was sent after the restart")
	all := map[string]int{}
	for _, m := range []map[string]int{beforeRestart, afterRestart} {
		for uid, n := range m {
			all[uid] += n
		}
	}
	assert.Len(t, all, total, "every event accepted by the collector arrives")
	for uid, n := range all {
		assert.Equalf(t, 1, n, "event %s delivered %d times", uid, n)
	}
	t.Logf("%d events before the restart, %d after", len(beforeRestart), len(afterRestart))
}

// A broken configuration stops the collector before it starts, with a message that says
// what to fix, instead of running without a cloud connection.
func TestMalformedConfigRefusesToStart(t *testing.T) {
	for _, tc := range []struct{ name, extension, want string }{
		{"no endpoint", "kestrel_command:\n    tls: {cert_file: /x, key_file: /y}", "endpoint"},
		{"plaintext", "kestrel_command:\n    endpoint: 127.0.0.1:1\n    tls: {insecure: true, cert_file: /x, key_file: /y}", "insecure"},
		{"unknown key", "kestrel_command:\n    endpoint: 127.0.0.1:1\n    tls: {cert_file: /x, key_file: /y}\n    reconect: {}", "reconect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := "extensions:\n  " + tc.extension + `
receivers:
  otlp:
    protocols: {grpc: {endpoint: 127.0.0.1:0}}
exporters:
  kestrel: {}
service:
  extensions: [kestrel_command]
  pipelines: {logs: {receivers: [otlp], exporters: [kestrel]}}
  telemetry: {metrics: {level: none}}
`
			err := runCollector(t, cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
