package datadog

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// FuzzBuild: any request fields give a Datadog call or a 400, never a panic, and a write's
// call is one the executor accepts.
func FuzzBuild(f *testing.F) {
	f.Add(int32(1), "avg:system.cpu.user{*}", int64(0), int64(0), "", "", int32(0), "")
	f.Add(int32(4), "service:web", int64(100), int64(50), "", "-timestamp", int32(10), "")
	f.Add(int32(6), "", int64(0), int64(0), "", "", int32(0), `{"name":"m"}`)
	f.Add(int32(8), "", int64(0), int64(0), "12", "", int32(0), `[]`)
	f.Add(int32(8), "", int64(0), int64(0), "../../x", "", int32(0), ``)
	c := New(Config{BaseURL: "http://127.0.0.1:1", MaxResponseBytes: 1024}, nil, nil)
	c.now = func() time.Time { return time.Unix(1_800_000_000, 0) }
	f.Fuzz(func(t *testing.T, typ int32, query string, from, to int64, filter, sort string, maxResults int32, body string) {
		req := &cloudv1.DatadogQueryRequest{QueryType: cloudv1.DatadogQueryType(typ), Query: query, FromTs: from, ToTs: to,
			Filter: filter, Sort: sort, MaxResults: maxResults, JsonBody: body}
		cl, err := c.build(req)
		if err != nil {
			assert.Equal(t, http.StatusBadRequest, crd.Code(err))
			return
		}
		if cl.method == http.MethodPost && cl.path != "/api/v2/logs/events/search" {
			assert.Regexp(t, writes, cl.method+" "+cl.path)
			assert.True(t, json.Valid(cl.body))
		}
	})
}

func TestPollerTransitions(t *testing.T) {
	var states []string
	srv := newMonitors(t, &states)
	var sent []*cloudv1.DatadogMonitorAlert
	fail := false
	c := New(Config{BaseURL: srv, MaxResponseBytes: 1 << 20}, func(context.Context) (Keys, error) { return Keys{API: "a", App: "b"}, nil }, nil)
	p := NewPoller(c, time.Hour, func(_ context.Context, m proto.Message) error {
		if fail {
			return assert.AnError
		}
		sent = append(sent, m.(*cloudv1.DatadogMonitorAlert))
		return nil
	}, zap.NewNop())
	ctx := context.Background()
	states = []string{"OK"}
	require.NoError(t, p.Poll(ctx)) // silent
	states = []string{"Alert"}
	require.NoError(t, p.Poll(ctx))
	require.NoError(t, p.Poll(ctx)) // no change
	require.Len(t, sent, 1)
	assert.Equal(t, "OK", sent[0].GetPreviousStatus())
	fail = true
	states = []string{"Skipped"}
	require.Error(t, p.Poll(ctx))
	states = []string{"Warn"}
	require.Error(t, p.Poll(ctx))
	fail = false
	require.NoError(t, p.Poll(ctx)) // the two queued, in order, once
	require.Len(t, sent, 3)
	assert.Equal(t, []string{"Alert", ""}, []string{sent[1].GetPreviousStatus(), sent[1].GetCurrentStatus()})
	assert.Equal(t, []string{"", "Warn"}, []string{sent[2].GetPreviousStatus(), sent[2].GetCurrentStatus()})
}
