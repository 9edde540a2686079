package logmap

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

var clock = time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)

func fixedNow() time.Time { return clock }

// rec describes one log record and its resource for building test input.
type rec struct {
	eventName string
	resource  map[string]any
	attrs     map[string]any
	body      any
	ts        time.Time
	observed  time.Time
	sevNum    plog.SeverityNumber
	sevText   string
}

// logsOf puts each record in its own ResourceLogs.
func logsOf(tb testing.TB, recs ...rec) plog.Logs {
	tb.Helper()
	ld := plog.NewLogs()
	for _, r := range recs {
		rl := ld.ResourceLogs().AppendEmpty()
		require.NoError(tb, rl.Resource().Attributes().FromRaw(r.resource))
		appendRecord(tb, rl.ScopeLogs().AppendEmpty(), r)
	}
	return ld
}

func appendRecord(tb testing.TB, sl plog.ScopeLogs, r rec) {
	tb.Helper()
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(r.eventName)
	require.NoError(tb, lr.Attributes().FromRaw(r.attrs))
	if r.body != nil {
		require.NoError(tb, lr.Body().FromRaw(r.body))
	}
	if !r.ts.IsZero() {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(r.ts))
	}
	if !r.observed.IsZero() {
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(r.observed))
	}
	lr.SetSeverityNumber(r.sevNum)
	lr.SetSeverityText(r.sevText)
}

func ts(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

func assertProtoEqual(t *testing.T, want, got proto.Message) {
	t.Helper()
	if !proto.Equal(want, got) {
		t.Errorf("payload mismatch\nwant: %s\ngot:  %s", prototext.Format(want), prototext.Format(got))
	}
}

func assertPayloadsEqual(t *testing.T, want, got []proto.Message) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		assertProtoEqual(t, want[i], got[i])
	}
}

func payloads(items []Item) []proto.Message {
	out := make([]proto.Message, len(items))
	for i, it := range items {
		out[i] = it.Payload
	}
	return out
}

// eventRecord is a complete kestrelai.k8s.event record as our receivers emit it.
func eventRecord() rec {
	return rec{
		eventName: schema.EventK8sEvent,
		resource: map[string]any{
			schema.AttrK8sNodeName:              "node-a",
			schema.AttrK8sObjectKind:            "Pod",
			schema.AttrK8sObjectName:            "web-0",
			schema.AttrK8sObjectUID:             "pod-uid",
			schema.AttrK8sObjectAPIVersion:      "v1",
			schema.AttrK8sObjectResourceVersion: "42",
			schema.AttrK8sObjectFieldPath:       "spec.containers{web}",
		},
		attrs: map[string]any{
			schema.AttrK8sNamespaceName:        "prod",
			schema.AttrK8sEventName:            "web-0.abc",
			schema.AttrK8sEventUID:             "ev-uid",
			schema.AttrK8sEventReason:          "BackOff",
			schema.AttrK8sEventCount:           int64(3),
			schema.AttrK8sEventStartTime:       "2026-01-01T00:00:00Z",
			schema.AttrK8sEventType:            "Warning",
			schema.AttrK8sEventLastTime:        "2026-01-01T00:02:00.5Z",
			schema.AttrK8sEventSourceComponent: "kubelet",
			schema.AttrAction:                  schema.ActionUpdate,
		},
		body: "Back-off restarting failed container",
		ts:   time.Date(2026, 1, 1, 0, 3, 0, 0, time.UTC),
	}
}

func eventPayload() *cloudv1.KubernetesEvent {
	return &cloudv1.KubernetesEvent{
		Name:      "web-0.abc",
		Namespace: "prod",
		Uid:       "ev-uid",
		EventType: "Warning",
		Reason:    "BackOff",
		Message:   "Back-off restarting failed container",
		InvolvedObject: &cloudv1.ObjectReference{
			Kind: "Pod", Namespace: "prod", Name: "web-0", Uid: "pod-uid",
			ApiVersion: "v1", ResourceVersion: "42", FieldPath: "spec.containers{web}",
		},
		Source:         &cloudv1.EventSource{Component: "kubelet", Host: "node-a"},
		FirstTimestamp: ts("2026-01-01T00:00:00Z"),
		LastTimestamp:  ts("2026-01-01T00:02:00.5Z"),
		Count:          3,
		Action:         cloudv1.Action_ACTION_UPDATE,
	}
}

func TestKubernetesEvent(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(r *rec)
		want   func(ev *cloudv1.KubernetesEvent)
		reason Reason
		detail string
	}{
		{name: "complete"},
		{
			name: "contrib k8s_events receiver output",
			edit: func(r *rec) {
				r.eventName = ""
				for _, k := range []string{schema.AttrK8sEventType, schema.AttrK8sEventLastTime, schema.AttrK8sEventSourceComponent, schema.AttrAction} {
					delete(r.attrs, k)
				}
				r.attrs[schema.AttrK8sEventStartTime] = "2026-01-01 00:00:00 +0000 UTC"
				r.sevText = "Warning"
				r.sevNum = plog.SeverityNumberWarn
			},
			want: func(ev *cloudv1.KubernetesEvent) {
				ev.Source.Component = ""
				ev.LastTimestamp = ts("2026-01-01T00:03:00Z")
				ev.Action = cloudv1.Action_ACTION_CREATE
			},
		},
		{
			name: "record attributes win over resource attributes",
			edit: func(r *rec) { r.attrs[schema.AttrK8sObjectName] = "web-1" },
			want: func(ev *cloudv1.KubernetesEvent) { ev.InvolvedObject.Name = "web-1" },
		},
		{
			name: "zero and absent times stay unset",
			edit: func(r *rec) {
				r.attrs[schema.AttrK8sEventStartTime] = "0001-01-01 00:00:00 +0000 UTC"
				delete(r.attrs, schema.AttrK8sEventLastTime)
				r.ts = time.Time{}
			},
			want: func(ev *cloudv1.KubernetesEvent) { ev.FirstTimestamp, ev.LastTimestamp = nil, nil },
		},
		{
			name: "count saturates at int32",
			edit: func(r *rec) { r.attrs[schema.AttrK8sEventCount] = int64(1) << 40 },
			want: func(ev *cloudv1.KubernetesEvent) { ev.Count = 1<<31 - 1 },
		},
		{
			name: "delete action",
			edit: func(r *rec) { r.attrs[schema.AttrAction] = schema.ActionDelete },
			want: func(ev *cloudv1.KubernetesEvent) { ev.Action = cloudv1.Action_ACTION_DELETE },
		},
		{
			name: "invalid UTF-8 is replaced",
			edit: func(r *rec) { r.body = "bad \xff byte" },
			want: func(ev *cloudv1.KubernetesEvent) { ev.Message = "bad \uFFFD byte" },
		},
		{
			name:   "missing uid",
			edit:   func(r *rec) { delete(r.attrs, schema.AttrK8sEventUID) },
			reason: ReasonMissingAttribute, detail: schema.AttrK8sEventUID,
		},
		{
			name:   "empty involved object kind",
			edit:   func(r *rec) { r.resource[schema.AttrK8sObjectKind] = "" },
			reason: ReasonMissingAttribute, detail: schema.AttrK8sObjectKind,
		},
		{
			name:   "non-string reason",
			edit:   func(r *rec) { r.attrs[schema.AttrK8sEventReason] = int64(1) },
			reason: ReasonInvalidAttribute, detail: schema.AttrK8sEventReason,
		},
		{
			name:   "unknown action",
			edit:   func(r *rec) { r.attrs[schema.AttrAction] = "upsert" },
			reason: ReasonInvalidAttribute, detail: schema.AttrAction,
		},
		{
			name:   "negative count",
			edit:   func(r *rec) { r.attrs[schema.AttrK8sEventCount] = int64(-1) },
			reason: ReasonInvalidAttribute, detail: schema.AttrK8sEventCount,
		},
		{
			name:   "string count",
			edit:   func(r *rec) { r.attrs[schema.AttrK8sEventCount] = "3" },
			reason: ReasonInvalidAttribute, detail: schema.AttrK8sEventCount,
		},
		{
			name:   "unparseable time",
			edit:   func(r *rec) { r.attrs[schema.AttrK8sEventLastTime] = "yesterday" },
			reason: ReasonInvalidAttribute, detail: schema.AttrK8sEventLastTime,
		},
		{
			name:   "time outside the Timestamp range",
			edit:   func(r *rec) { r.attrs[schema.AttrK8sEventStartTime] = "0000-06-01T00:00:00Z" },
			reason: ReasonInvalidAttribute, detail: schema.AttrK8sEventStartTime,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := eventRecord()
			if tt.edit != nil {
				tt.edit(&r)
			}
			res := NewMapper(fixedNow).Map(logsOf(t, r))
			if tt.reason != "" {
				assert.Empty(t, res.Items)
				assert.Equal(t, []Drop{{EventName: schema.EventK8sEvent, Reason: tt.reason, Count: 1, Detail: tt.detail}}, res.Drops)
				return
			}
			require.Empty(t, res.Drops)
			require.Len(t, res.Items, 1)
			want := eventPayload()
			if tt.want != nil {
				tt.want(want)
			}
			assert.Equal(t, schema.EventK8sEvent, res.Items[0].EventName)
			assert.Equal(t, 1, res.Items[0].Records)
			assertProtoEqual(t, want, res.Items[0].Payload)
		})
	}
}

func podRecord(pod, container, body string, sec int) rec {
	return rec{
		resource: map[string]any{
			schema.AttrK8sNamespaceName: "prod",
			schema.AttrK8sPodName:       pod,
			schema.AttrK8sPodUID:        pod + "-uid",
			schema.AttrK8sContainerName: container,
			schema.AttrK8sNodeName:      "node-a",
		},
		attrs:  map[string]any{},
		body:   body,
		ts:     clock.Add(time.Duration(sec) * time.Second),
		sevNum: plog.SeverityNumberInfo,
	}
}

func TestPodLogsGrouping(t *testing.T) {
	a1 := podRecord("web-0", "web", "a1", 1)
	b1 := podRecord("web-0", "sidecar", "b1", 2)
	a2 := podRecord("web-0", "web", "a2", 3)
	// Identity on the record instead of the resource still groups with a1/a2.
	a3 := rec{attrs: a1.resource, body: "a3", ts: clock.Add(4 * time.Second), sevNum: plog.SeverityNumberInfo}
	ld := logsOf(t, a1, b1, a2, a3)

	res := NewMapper(fixedNow).Map(ld)
	require.Empty(t, res.Drops)
	require.Len(t, res.Items, 2)
	entry := func(msg string, sec int) *cloudv1.LogEntry {
		return &cloudv1.LogEntry{Timestamp: timestamppb.New(clock.Add(time.Duration(sec) * time.Second)), Message: msg, Level: "INFO"}
	}
	want := []proto.Message{
		&cloudv1.PodLogs{
			PodName: "web-0", Namespace: "prod", PodUid: "web-0-uid", ContainerName: "web", NodeName: "node-a",
			LogEntries:          []*cloudv1.LogEntry{entry("a1", 1), entry("a2", 3), entry("a3", 4)},
			CollectionTimestamp: timestamppb.New(clock),
			TotalLines:          3,
		},
		&cloudv1.PodLogs{
			PodName: "web-0", Namespace: "prod", PodUid: "web-0-uid", ContainerName: "sidecar", NodeName: "node-a",
			LogEntries:          []*cloudv1.LogEntry{entry("b1", 2)},
			CollectionTimestamp: timestamppb.New(clock),
			TotalLines:          1,
		},
	}
	assertPayloadsEqual(t, want, payloads(res.Items))
	assert.Equal(t, 3, res.Items[0].Records)
	assert.Equal(t, 1, res.Items[1].Records)
}

func TestLogEntry(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(r *rec)
		want   func(e *cloudv1.LogEntry)
		reason Reason
		detail string
	}{
		{name: "plain"},
		{
			name: "observed time when the record has none",
			edit: func(r *rec) { r.ts, r.observed = time.Time{}, clock.Add(time.Minute) },
			want: func(e *cloudv1.LogEntry) { e.Timestamp = timestamppb.New(clock.Add(time.Minute)) },
		},
		{
			name: "collection time when the record has no time at all",
			edit: func(r *rec) { r.ts = time.Time{} },
			want: func(e *cloudv1.LogEntry) { e.Timestamp = timestamppb.New(clock) },
		},
		{
			name: "line number and error info",
			edit: func(r *rec) {
				r.sevNum = plog.SeverityNumberError2
				r.attrs[schema.AttrLogFileRecordNumber] = int64(12)
				r.attrs[schema.AttrExceptionType] = "IOError"
				r.attrs[schema.AttrExceptionMessage] = "disk full"
				r.attrs[schema.AttrExceptionStacktrace] = "at main()"
			},
			want: func(e *cloudv1.LogEntry) {
				e.Level = "ERROR"
				e.LineNumber = 12
				e.ErrorInfo = &cloudv1.LogErrorInfo{ErrorType: "IOError", ErrorMessage: "disk full", StackTrace: "at main()"}
			},
		},
		{
			name: "map body becomes JSON",
			edit: func(r *rec) { r.body = map[string]any{"msg": "hi"} },
			want: func(e *cloudv1.LogEntry) { e.Message = `{"msg":"hi"}` },
		},
		{
			name: "severity text when there is no severity number",
			edit: func(r *rec) { r.sevNum, r.sevText = plog.SeverityNumberUnspecified, "Warning" },
			want: func(e *cloudv1.LogEntry) { e.Level = "WARN" },
		},
		{
			name: "unknown severity leaves the level empty",
			edit: func(r *rec) { r.sevNum, r.sevText = plog.SeverityNumberUnspecified, "chatty" },
			want: func(e *cloudv1.LogEntry) { e.Level = "" },
		},
		{
			name:   "missing pod name",
			edit:   func(r *rec) { delete(r.resource, schema.AttrK8sPodName) },
			reason: ReasonMissingAttribute, detail: schema.AttrK8sPodName,
		},
		{
			name:   "missing namespace",
			edit:   func(r *rec) { delete(r.resource, schema.AttrK8sNamespaceName) },
			reason: ReasonMissingAttribute, detail: schema.AttrK8sNamespaceName,
		},
		{
			name:   "line number of the wrong type",
			edit:   func(r *rec) { r.attrs[schema.AttrLogFileRecordNumber] = "12" },
			reason: ReasonInvalidAttribute, detail: schema.AttrLogFileRecordNumber,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := podRecord("web-0", "web", "hello", 1)
			if tt.edit != nil {
				tt.edit(&r)
			}
			res := NewMapper(fixedNow).Map(logsOf(t, r))
			if tt.reason != "" {
				assert.Empty(t, res.Items)
				assert.Equal(t, []Drop{{Reason: tt.reason, Count: 1, Detail: tt.detail}}, res.Drops)
				return
			}
			require.Empty(t, res.Drops)
			require.Len(t, res.Items, 1)
			want := &cloudv1.LogEntry{Timestamp: timestamppb.New(clock.Add(time.Second)), Message: "hello", Level: "INFO"}
			if tt.want != nil {
				tt.want(want)
			}
			pl := res.Items[0].Payload.(*cloudv1.PodLogs)
			require.Len(t, pl.LogEntries, 1)
			assertProtoEqual(t, want, pl.LogEntries[0])
		})
	}
}

func TestLevels(t *testing.T) {
	for n, want := range map[plog.SeverityNumber]string{
		plog.SeverityNumberTrace: "DEBUG", plog.SeverityNumberDebug4: "DEBUG",
		plog.SeverityNumberInfo: "INFO", plog.SeverityNumberInfo4: "INFO",
		plog.SeverityNumberWarn: "WARN", plog.SeverityNumberWarn4: "WARN",
		plog.SeverityNumberError: "ERROR", plog.SeverityNumberError4: "ERROR",
		plog.SeverityNumberFatal: "FATAL", plog.SeverityNumberFatal4: "FATAL",
		plog.SeverityNumber(99): "",
	} {
		lr := plog.NewLogRecord()
		lr.SetSeverityNumber(n)
		assert.Equal(t, want, level(lr), "severity number %d", n)
	}
}

func TestPodLogsAreCapped(t *testing.T) {
	t.Run("entries", func(t *testing.T) {
		ld := plog.NewLogs()
		r := podRecord("web-0", "web", "line", 1)
		rl := ld.ResourceLogs().AppendEmpty()
		require.NoError(t, rl.Resource().Attributes().FromRaw(r.resource))
		sl := rl.ScopeLogs().AppendEmpty()
		for i := range maxPodLogEntries + 1 {
			r.body, r.ts = strconv.Itoa(i), clock.Add(time.Duration(i)*time.Second)
			appendRecord(t, sl, r)
		}
		res := NewMapper(fixedNow).Map(ld)
		require.Len(t, res.Items, 2)
		assert.Equal(t, maxPodLogEntries, res.Items[0].Records)
		assert.EqualValues(t, maxPodLogEntries, res.Items[0].Payload.(*cloudv1.PodLogs).TotalLines)
		assert.Equal(t, 1, res.Items[1].Records)
		assert.EqualValues(t, 1, res.Items[1].Payload.(*cloudv1.PodLogs).TotalLines)
		// The entries span many slabs; each keeps its own line.
		entries := slices.Concat(res.Items[0].Payload.(*cloudv1.PodLogs).LogEntries, res.Items[1].Payload.(*cloudv1.PodLogs).LogEntries)
		for i, e := range entries {
			require.Equal(t, strconv.Itoa(i), e.Message)
			require.Equal(t, clock.Add(time.Duration(i)*time.Second), e.Timestamp.AsTime())
		}
	})
	t.Run("bytes", func(t *testing.T) {
		big := strings.Repeat("x", maxPodLogBytes/2+1)
		r := podRecord("web-0", "web", big, 1)
		res := NewMapper(fixedNow).Map(logsOf(t, r, r, r))
		require.Len(t, res.Items, 3)
		for _, it := range res.Items {
			assert.Equal(t, 1, it.Records)
		}
	})
}

func TestDropsAreCountedPerEventAndReason(t *testing.T) {
	unknown := rec{eventName: "acme.thing", attrs: map[string]any{}}
	noPod := podRecord("web-0", "web", "x", 1)
	delete(noPod.resource, schema.AttrK8sPodName)
	res := NewMapper(fixedNow).Map(logsOf(t, unknown, noPod, unknown, podRecord("web-0", "web", "ok", 1), noPod))
	require.Len(t, res.Items, 1)
	assert.Equal(t, []Drop{
		{EventName: "acme.thing", Reason: ReasonUnknownEvent, Count: 2},
		{Reason: ReasonMissingAttribute, Count: 2, Detail: schema.AttrK8sPodName},
	}, res.Drops)
	assert.True(t, Known(schema.EventK8sEvent))
	assert.True(t, Known(""))
	assert.False(t, Known("acme.thing"))
}

func TestUnsent(t *testing.T) {
	a1 := podRecord("web-0", "web", "a1", 1)
	b1 := podRecord("api-0", "api", "b1", 2)
	a2 := podRecord("web-0", "web", "a2", 3)
	dropped := rec{eventName: "acme.thing", attrs: map[string]any{}, body: "dropped"}
	ev := eventRecord()

	// Two scopes in one resource, to check that scopes are kept apart.
	ld := logsOf(t, a1, dropped, b1)
	sl := ld.ResourceLogs().At(0).ScopeLogs().AppendEmpty()
	sl.Scope().SetName("second")
	appendRecord(t, sl, a2)
	logsOf(t, ev).ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())

	res := NewMapper(fixedNow).Map(ld)
	require.Len(t, res.Items, 3) // web-0 (a1, a2), api-0 (b1), event

	bodies := func(ld plog.Logs) []string {
		var out []string
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				for k := 0; k < sls.At(j).LogRecords().Len(); k++ {
					out = append(out, sls.At(j).Scope().Name()+"/"+sls.At(j).LogRecords().At(k).Body().AsString())
				}
			}
		}
		return out
	}
	assert.Equal(t, []string{"/a1", "second/a2", "/b1", "/Back-off restarting failed container"}, bodies(res.Unsent(ld, 0)))
	assert.Equal(t, []string{"/b1", "/Back-off restarting failed container"}, bodies(res.Unsent(ld, 1)))
	assert.Equal(t, []string{"/Back-off restarting failed container"}, bodies(res.Unsent(ld, 2)))
	assert.Equal(t, 0, res.Unsent(ld, 3).LogRecordCount())

	// Resource and its attributes are carried along; mapping the remainder gives the
	// same payloads as the unsent items.
	rest := res.Unsent(ld, 1)
	again := NewMapper(fixedNow).Map(rest)
	require.Empty(t, again.Drops)
	assertPayloadsEqual(t, payloads(res.Items[1:]), payloads(again.Items))
}

func TestFilter(t *testing.T) {
	ld := logsOf(t, podRecord("web-0", "web", "a", 1), podRecord("web-0", "web", "b", 2), podRecord("web-0", "web", "c", 3))
	//nolint:testifylint // identity, not equality: assert.Equal would pass for a copy too
	assert.True(t, Filter(ld, func(int, plog.LogRecord) bool { return true }) == ld, "keeping every record copies nothing")
	assert.Equal(t, 0, Filter(ld, func(int, plog.LogRecord) bool { return false }).LogRecordCount())

	even := Filter(ld, func(i int, _ plog.LogRecord) bool { return i%2 == 0 })
	require.Equal(t, 2, even.ResourceLogs().Len())
	for i, want := range []string{"a", "c"} {
		rl := even.ResourceLogs().At(i)
		assert.Equal(t, "web-0", rl.Resource().Attributes().AsRaw()[schema.AttrK8sPodName])
		assert.Equal(t, want, rl.ScopeLogs().At(0).LogRecords().At(0).Body().Str())
	}
}
