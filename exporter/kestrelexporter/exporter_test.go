package kestrelexporter

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter/internal/metadatatest"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/logmap"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

var clock = time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)

// recordingConn is a test double of our own cloudconn.Connection interface: it records the
// payloads handed to Send, and fails a Send when fail returns an error for it, or the wait
// for its acknowledgement when unacked does.
type recordingConn struct {
	mu      sync.Mutex
	calls   int
	sent    []proto.Message
	fail    func(call int, payload proto.Message) error
	unacked func(call int) error
}

func (c *recordingConn) SendAcknowledged(ctx context.Context, payload proto.Message) (cloudconn.Acknowledgement, error) {
	c.mu.Lock()
	call := c.calls
	c.mu.Unlock()
	if err := c.Send(ctx, payload); err != nil {
		return nil, err
	}
	return func(context.Context) error {
		if c.unacked != nil {
			return c.unacked(call)
		}
		return nil
	}, nil
}

func (c *recordingConn) Send(_ context.Context, payload proto.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	call := c.calls
	c.calls++
	if c.fail != nil {
		if err := c.fail(call, payload); err != nil {
			return err
		}
	}
	c.sent = append(c.sent, payload)
	return nil
}

func (c *recordingConn) Handle(proto.Message, cloudconn.Handler) (func(), error) {
	return nil, errors.New("recordingConn serves no requests")
}

func (c *recordingConn) MaxMessageBytes() int { return 10 << 20 }

func (c *recordingConn) RegisterSnapshot(cloudconn.SnapshotFunc) func() { return func() {} }

func (c *recordingConn) State() cloudconn.State { return cloudconn.Ready }

func (c *recordingConn) Subscribe(fn func(cloudconn.State)) func() {
	fn(cloudconn.Ready)
	return func() {}
}

func (c *recordingConn) payloads() []proto.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]proto.Message(nil), c.sent...)
}

// connExtension stands in for the kestrel_command extension.
type connExtension struct {
	component.StartFunc
	component.ShutdownFunc
	conn cloudconn.Connection
}

func (e *connExtension) Connection() cloudconn.Connection { return e.conn }

type extensionHost struct {
	component.Host
	extensions map[component.ID]component.Component
}

func (h extensionHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

func hostWith(conn cloudconn.Connection) component.Host {
	return extensionHost{
		Host:       componenttest.NewNopHost(),
		extensions: map[component.ID]component.Component{defaultConnection: &connExtension{conn: conn}},
	}
}

// testLogs holds a Kubernetes event, three log lines of two pods and an unknown event.
func testLogs() plog.Logs {
	ld := plog.NewLogs()

	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(schema.AttrK8sNodeName, "node-a")
	res.PutStr(schema.AttrK8sObjectKind, "Pod")
	res.PutStr(schema.AttrK8sObjectName, "web-0")
	res.PutStr(schema.AttrK8sObjectUID, "web-0-uid")
	ev := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	ev.SetEventName(schema.EventK8sEvent)
	ev.SetTimestamp(pcommon.NewTimestampFromTime(clock.Add(-time.Minute)))
	ev.Body().SetStr("Back-off restarting failed container")
	ev.Attributes().PutStr(schema.AttrK8sNamespaceName, "prod")
	ev.Attributes().PutStr(schema.AttrK8sEventName, "web-0.1")
	ev.Attributes().PutStr(schema.AttrK8sEventUID, "ev-1")
	ev.Attributes().PutStr(schema.AttrK8sEventReason, "BackOff")
	ev.Attributes().PutInt(schema.AttrK8sEventCount, 2)
	ev.Attributes().PutStr(schema.AttrK8sEventStartTime, "2026-01-01T00:00:00Z")
	ev.Attributes().PutStr(schema.AttrK8sEventType, "Warning")
	ev.Attributes().PutStr(schema.AttrK8sEventSourceComponent, "kubelet")

	pod := func(name, container string, lines ...string) plog.LogRecordSlice {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(schema.AttrK8sNamespaceName, "prod")
		rl.Resource().Attributes().PutStr(schema.AttrK8sPodName, name)
		rl.Resource().Attributes().PutStr(schema.AttrK8sContainerName, container)
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for i, line := range lines {
			lr := lrs.AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(clock.Add(time.Duration(i) * time.Second)))
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.Body().SetStr(line)
		}
		return lrs
	}
	web := pod("web-0", "web", "a", "b")
	web.At(1).SetSeverityNumber(plog.SeverityNumberError)
	web.At(1).Attributes().PutStr(schema.AttrExceptionType, "IOError")
	api := pod("api-0", "api", "c")
	unknown := api.AppendEmpty()
	unknown.SetEventName("acme.custom")
	return ld
}

func wantPayloads() []proto.Message {
	entry := func(msg string, sec int, level string) *cloudv1.LogEntry {
		return &cloudv1.LogEntry{Timestamp: timestamppb.New(clock.Add(time.Duration(sec) * time.Second)), Message: msg, Level: level}
	}
	failed := entry("b", 1, "ERROR")
	failed.ErrorInfo = &cloudv1.LogErrorInfo{ErrorType: "IOError"}
	return []proto.Message{
		&cloudv1.KubernetesEvent{
			Name:      "web-0.1",
			Namespace: "prod",
			Uid:       "ev-1",
			EventType: "Warning",
			Reason:    "BackOff",
			Message:   "Back-off restarting failed container",
			InvolvedObject: &cloudv1.ObjectReference{
				Kind: "Pod", Namespace: "prod", Name: "web-0", Uid: "web-0-uid",
			},
			Source:         &cloudv1.EventSource{Component: "kubelet", Host: "node-a"},
			FirstTimestamp: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
			LastTimestamp:  timestamppb.New(clock.Add(-time.Minute)),
			Count:          2,
			Action:         cloudv1.Action_ACTION_CREATE,
		},
		&cloudv1.PodLogs{
			PodName: "web-0", Namespace: "prod", ContainerName: "web",
			LogEntries:          []*cloudv1.LogEntry{entry("a", 0, "INFO"), failed},
			CollectionTimestamp: timestamppb.New(clock),
			TotalLines:          2,
		},
		&cloudv1.PodLogs{
			PodName: "api-0", Namespace: "prod", ContainerName: "api",
			LogEntries:          []*cloudv1.LogEntry{entry("c", 0, "INFO")},
			CollectionTimestamp: timestamppb.New(clock),
			TotalLines:          1,
		},
	}
}

func assertPayloads(t *testing.T, want, got []proto.Message) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		if !proto.Equal(want[i], got[i]) {
			t.Errorf("payload %d\nwant: %s\ngot:  %s", i, prototext.Format(want[i]), prototext.Format(got[i]))
		}
	}
}

// startedExporter returns an exporter started against conn, with a fixed clock.
func startedExporter(t *testing.T, tt *componenttest.Telemetry, conn cloudconn.Connection) *kestrelExporter {
	exp, err := newExporter(createDefaultConfig().(*Config), metadatatest.NewSettings(tt))
	require.NoError(t, err)
	exp.mapper = logmap.NewMapper(func() time.Time { return clock })
	require.NoError(t, exp.start(context.Background(), hostWith(conn)))
	t.Cleanup(func() { require.NoError(t, exp.shutdown(context.Background())) })
	return exp
}

func droppedPoint(eventName, reason string, n int64) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{
		Attributes: attribute.NewSet(attribute.String("event_name", eventName), attribute.String("reason", reason)),
		Value:      n,
	}
}

func TestPushSendsPayloadsInOrder(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	conn := &recordingConn{}
	exp := startedExporter(t, tt, conn)

	require.NoError(t, exp.pushLogs(context.Background(), testLogs()))
	assertPayloads(t, wantPayloads(), conn.payloads())
}

func TestPushCountsDrops(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	conn := &recordingConn{}
	exp := startedExporter(t, tt, conn)

	ld := testLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	lrs.AppendEmpty().Body().SetStr("a line without pod identity")
	lrs.AppendEmpty().SetEventName("acme.other")

	require.NoError(t, exp.pushLogs(context.Background(), ld))
	assertPayloads(t, wantPayloads(), conn.payloads())
	metadatatest.AssertEqualKestrelExporterRecordsDropped(t, tt, []metricdata.DataPoint[int64]{
		droppedPoint("_other", "unknown_event_name", 2),
		droppedPoint("", "missing_attribute", 1),
	}, metricdatatest.IgnoreTimestamp())
}

func TestPushFailureReturnsOnlyUnsentRecords(t *testing.T) {
	tests := []struct {
		name    string
		failAt  int
		err     error
		bodies  []string
		payload int // index in wantPayloads of the first payload not sent
	}{
		{name: "not connected halfway", failAt: 1, err: cloudconn.ErrNotConnected, bodies: []string{"a", "b", "c"}, payload: 1},
		{name: "transport error first", failAt: 0, err: status.Error(codes.Unavailable, "stream reset"), bodies: []string{"Back-off restarting failed container", "a", "b", "c"}, payload: 0},
		{name: "deadline on the last", failAt: 2, err: context.DeadlineExceeded, bodies: []string{"c"}, payload: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tt := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
			failing := true
			conn := &recordingConn{fail: func(call int, _ proto.Message) error {
				if failing && call == tc.failAt {
					return tc.err
				}
				return nil
			}}
			exp := startedExporter(t, tt, conn)

			err := exp.pushLogs(context.Background(), testLogs())
			require.ErrorIs(t, err, tc.err)
			assert.False(t, consumererror.IsPermanent(err), "send failures are retryable")
			var logsErr consumererror.Logs
			require.ErrorAs(t, err, &logsErr)
			unsent := logsErr.Data()
			var bodies []string
			for i := 0; i < unsent.ResourceLogs().Len(); i++ {
				lrs := unsent.ResourceLogs().At(i).ScopeLogs().At(0).LogRecords()
				for j := 0; j < lrs.Len(); j++ {
					bodies = append(bodies, lrs.At(j).Body().Str())
				}
			}
			assert.Equal(t, tc.bodies, bodies)

			// Retrying with the remainder completes the stream of payloads exactly once.
			failing = false
			require.NoError(t, exp.pushLogs(context.Background(), unsent))
			assertPayloads(t, wantPayloads(), conn.payloads())
		})
	}
}

func TestPushDropsRejectedPayloadsAndSendsTheRest(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	conn := &recordingConn{fail: func(_ int, payload proto.Message) error {
		if _, ok := payload.(*cloudv1.KubernetesEvent); ok {
			return status.Error(codes.InvalidArgument, "cloud.v1.KubernetesEvent cannot be sent")
		}
		return nil
	}}
	exp := startedExporter(t, tt, conn)

	require.NoError(t, exp.pushLogs(context.Background(), testLogs()))
	assertPayloads(t, wantPayloads()[1:], conn.payloads())
	metadatatest.AssertEqualKestrelExporterRecordsDropped(t, tt, []metricdata.DataPoint[int64]{
		droppedPoint("_other", "unknown_event_name", 1),
		droppedPoint(schema.EventK8sEvent, "rejected", 1),
	}, metricdatatest.IgnoreTimestamp())
}

func TestStart(t *testing.T) {
	named := component.MustNewIDWithName("kestrel_command", "eu")
	tests := []struct {
		name       string
		connection component.ID
		extensions map[component.ID]component.Component
		wantErr    string
	}{
		{
			name:       "missing extension",
			connection: defaultConnection,
			wantErr:    `extension "kestrel_command" not found`,
		},
		{
			name:       "extension without a connection",
			connection: named,
			extensions: map[component.ID]component.Component{named: &struct {
				component.StartFunc
				component.ShutdownFunc
			}{}},
			wantErr: `extension "kestrel_command/eu" (*struct { component.StartFunc; component.ShutdownFunc }) does not provide a Kestrel Cloud connection`,
		},
		{
			name:       "named extension",
			connection: named,
			extensions: map[component.ID]component.Component{named: &connExtension{conn: &recordingConn{}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Connection = tc.connection
			tt := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
			exp, err := newExporter(cfg, metadatatest.NewSettings(tt))
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, exp.shutdown(context.Background())) })
			err = exp.start(context.Background(), extensionHost{Host: componenttest.NewNopHost(), extensions: tc.extensions})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			want := tc.extensions[named].(*connExtension).conn
			assert.Same(t, want, exp.conn)
		})
	}
}

// TestFactoryExporter runs the exporter the way the collector does, without a queue so that
// ConsumeLogs reports the push result.
func TestFactoryExporter(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.Enabled = false
	exp, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg)
	require.NoError(t, err)

	connected := true
	conn := &recordingConn{fail: func(int, proto.Message) error {
		if !connected {
			return cloudconn.ErrNotConnected
		}
		return nil
	}}
	require.NoError(t, exp.Start(context.Background(), hostWith(conn)))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })

	require.NoError(t, exp.ConsumeLogs(context.Background(), testLogs()))
	got := conn.payloads()
	require.Len(t, got, 3)
	assert.IsType(t, &cloudv1.KubernetesEvent{}, got[0])
	assert.IsType(t, &cloudv1.PodLogs{}, got[1])
	assert.IsType(t, &cloudv1.PodLogs{}, got[2])

	connected = false
	require.ErrorIs(t, exp.ConsumeLogs(context.Background(), testLogs()), cloudconn.ErrNotConnected)
}

func TestFactoryExporterWithoutExtensionFailsToStart(t *testing.T) {
	exp, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), createDefaultConfig())
	require.NoError(t, err)
	require.ErrorContains(t, exp.Start(context.Background(), componenttest.NewNopHost()), `extension "kestrel_command" not found`)
	require.NoError(t, exp.Shutdown(context.Background()))
}

// A batch counts as delivered only once acknowledged: when the acknowledgement of a payload
// fails (the connection broke before it came), the records of that payload and all later ones
// are returned for the retry, and the waits behind it are given up.
func TestPushReturnsRecordsNotAcknowledged(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	var givenUp []int
	failing := true
	conn := &recordingConn{}
	conn.unacked = func(call int) error {
		switch {
		case !failing:
			return nil
		case call == 1:
			return cloudconn.ErrNotConnected
		case call > 1:
			givenUp = append(givenUp, call)
		}
		return nil
	}
	exp := startedExporter(t, tt, conn)

	err := exp.pushLogs(context.Background(), testLogs())
	require.ErrorIs(t, err, cloudconn.ErrNotConnected)
	assert.False(t, consumererror.IsPermanent(err))
	assert.Len(t, conn.payloads(), 3, "every payload was written before the waits")
	assert.Equal(t, []int{2}, givenUp)
	var logsErr consumererror.Logs
	require.ErrorAs(t, err, &logsErr)
	var bodies []string
	for i := 0; i < logsErr.Data().ResourceLogs().Len(); i++ {
		lrs := logsErr.Data().ResourceLogs().At(i).ScopeLogs().At(0).LogRecords()
		for j := 0; j < lrs.Len(); j++ {
			bodies = append(bodies, lrs.At(j).Body().Str())
		}
	}
	assert.Equal(t, []string{"a", "b", "c"}, bodies)

	failing = false
	require.NoError(t, exp.pushLogs(context.Background(), logsErr.Data()))
	assertPayloads(t, append(wantPayloads(), wantPayloads()[1:]...), conn.payloads())
}
