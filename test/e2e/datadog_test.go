package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/datadogfake"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/toolstest"
)

const (
	// pollerAgent is the User-Agent of the monitor poller's requests.
	pollerAgent = "otelcol-kestrel/kestrel_tools monitor-poller"
	ddAPIKey    = "fake-api-key-0123456789abcdef"
	ddAppKey    = "fake-app-key-fedcba9876543210"
)

// alerts are the DatadogMonitorAlerts the cloud received.
func alerts(records []devcloud.Record) []*cloudv1.DatadogMonitorAlert {
	var out []*cloudv1.DatadogMonitorAlert
	for _, r := range records {
		if a, ok := r.Payload.(*cloudv1.DatadogMonitorAlert); ok {
			out = append(out, a)
		}
	}
	return out
}

// cloudCalls leaves out the monitor poller's requests.
func cloudCalls(reqs []datadogfake.Request) []datadogfake.Request {
	var out []datadogfake.Request
	for _, r := range reqs {
		if r.Header.Get("User-Agent") != pollerAgent {
			out = append(out, r)
		}
	}
	return out
}

// Datadog through `ctl integration` against a fake of the Datadog API: the keys come from
// a Secret (and only once it exists), every type 1-9 makes the request Datadog documents
// with the right headers, upstream statuses come back as they are, the keys appear in no
// answer; the monitor poller alerts once per transition and keeps its state across a
// reconnect.
func TestDatadogFromCloud(t *testing.T) {
	fake := datadogfake.Start(t, ddAPIKey, ddAppKey)
	fake.SetMonitors(
		datadogfake.Monitor{ID: 11, Name: "api latency", Type: "metric alert", Query: "avg(last_5m):avg:trace.http.request{*} > 1", Message: "slow", Tags: []string{"team:web"}, OverallState: "OK"},
		datadogfake.Monitor{ID: 12, Name: "disk", Type: "metric alert", Query: "max(last_5m):system.disk.in_use{*} > 0.9", OverallState: "Warn"},
	)
	logFile := filepath.Join(t.TempDir(), "collector.log")
	x := startToolsWithOptions(t, toolsOptions{logFile: logFile, extra: func(string) string {
		return fmt.Sprintf("    integrations:\n      datadog:\n        enabled: true\n        endpoint: %s\n        monitor_poll_interval: 1s\n"+
			"    changes:\n      apply:\n        enabled: true\n", fake.URL)
	}})
	ns := x.ns
	toolstest.SetupChanges(t, x.env, ns)

	// No Secret yet: Datadog is absent, and says where it looked.
	refused(t, x.integration(t, cloudv1.DatadogQueryType_DATADOG_LIST_MONITORS), 503, "reading its keys from Secret "+ns+"/datadog")
	_, err := x.cs.CoreV1().Secrets(ns).Create(x.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "datadog"},
		Data: map[string][]byte{"api-key": []byte(ddAPIKey), "app-key": []byte(ddAppKey)}}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The collector may read that one Secret, by name.
	toolstest.Apply(t, x.env.RestConfig(), []byte(fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: kestrel-datadog-keys, namespace: %[1]s}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get], resourceNames: [datadog]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: kestrel-datadog-keys, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: kestrel-datadog-keys}
subjects: [{kind: ServiceAccount, name: %[2]s, namespace: %[1]s}]
`, ns, toolstest.Collector)), nil)
	require.Eventually(t, func() bool {
		return x.integration(t, cloudv1.DatadogQueryType_DATADOG_LIST_MONITORS).GetSuccess()
	}, 20*time.Second, 100*time.Millisecond)
	fake.Requests()

	from, to := time.Now().Add(-30*time.Minute).Unix(), time.Now().Unix()
	span := []string{"--from", strconv.FormatInt(from, 10), "--to", strconv.FormatInt(to, 10)}
	for _, c := range []struct {
		typ          cloudv1.DatadogQueryType
		args         []string
		method, path string
		query        map[string]string
		body         map[string]any
		status       int32
		apiKeyOnly   bool
	}{
		{cloudv1.DatadogQueryType_DATADOG_QUERY_METRICS, append([]string{"--query", "avg:system.cpu.user{*}"}, span...), "GET", "/api/v1/query",
			map[string]string{"query": "avg:system.cpu.user{*}", "from": strconv.FormatInt(from, 10), "to": strconv.FormatInt(to, 10)}, nil, 200, false},
		{cloudv1.DatadogQueryType_DATADOG_QUERY_EVENTS, append([]string{"--filter", "kubernetes", "--max-results", "5"}, span...), "GET", "/api/v1/events",
			map[string]string{"start": strconv.FormatInt(from, 10), "end": strconv.FormatInt(to, 10), "sources": "kubernetes", "count": "5"}, nil, 200, false},
		{cloudv1.DatadogQueryType_DATADOG_QUERY_HOSTS, []string{"--filter", "env:prod", "--sort", "cpu", "--max-results", "10"}, "GET", "/api/v1/hosts",
			map[string]string{"filter": "env:prod", "sort_field": "cpu", "count": "10"}, nil, 200, false},
		{cloudv1.DatadogQueryType_DATADOG_QUERY_LOGS, append([]string{"--query", "service:web status:error", "--sort", "-timestamp", "--max-results", "20"}, span...),
			"POST", "/api/v2/logs/events/search", map[string]string{}, map[string]any{
				"filter": map[string]any{"from": time.Unix(from, 0).UTC().Format(time.RFC3339), "to": time.Unix(to, 0).UTC().Format(time.RFC3339), "query": "service:web status:error"},
				"sort":   "-timestamp", "page": map[string]any{"limit": 20.0}}, 200, false},
		{cloudv1.DatadogQueryType_DATADOG_QUERY_LIST_METRICS, []string{"--filter", "ip-10-0-1-7", "--from", strconv.FormatInt(from, 10)}, "GET", "/api/v1/metrics",
			map[string]string{"from": strconv.FormatInt(from, 10), "host": "ip-10-0-1-7"}, nil, 200, false},
		{cloudv1.DatadogQueryType_DATADOG_LIST_MONITORS, nil, "GET", "/api/v1/monitor", map[string]string{"page": "0", "per_page": "200"}, nil, 200, false},
	} {
		resp := x.integration(t, c.typ, c.args...)
		require.True(t, resp.GetSuccess(), "%s: %d %s", c.typ, resp.GetStatusCode(), resp.GetErrorMessage())
		assert.Equal(t, c.status, resp.GetStatusCode(), c.typ.String())
		assert.True(t, json.Valid([]byte(resp.GetResponseData())), c.typ.String())
		reqs := cloudCalls(fake.Requests())
		require.Len(t, reqs, 1, c.typ.String())
		r := reqs[0]
		assert.Equal(t, c.method, r.Method, c.typ.String())
		assert.Equal(t, c.path, r.Path, c.typ.String())
		assert.Equal(t, c.query, r.Query, c.typ.String())
		assert.Equal(t, ddAPIKey, r.Header.Get("DD-API-KEY"), c.typ.String())
		assert.Equal(t, "otelcol-kestrel/kestrel_tools", r.Header.Get("User-Agent"))
		if c.apiKeyOnly {
			assert.Empty(t, r.Header.Get("DD-APPLICATION-KEY"), c.typ.String())
		} else {
			assert.Equal(t, ddAppKey, r.Header.Get("DD-APPLICATION-KEY"), c.typ.String())
		}
		if c.body != nil {
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.Body), &got))
			assert.Equal(t, c.body, got, c.typ.String())
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		}
		raw, _ := json.Marshal(resp)
		assert.NotContains(t, string(raw), ddAPIKey)
		assert.NotContains(t, string(raw), ddAppKey)
	}

	// Writes wait for a person's approval in the cluster; only then is Datadog called.
	for _, c := range []struct {
		typ        cloudv1.DatadogQueryType
		args       []string
		path, body string
		apiKeyOnly bool
		answer     string
	}{
		{cloudv1.DatadogQueryType_DATADOG_CREATE_MONITOR, []string{"--json", `{"name":"5xx rate","type":"metric alert","query":"sum(last_5m):sum:http.5xx{*} > 10"}`},
			"/api/v1/monitor", `{"name":"5xx rate","type":"metric alert","query":"sum(last_5m):sum:http.5xx{*} > 10"}`, false, `"id":1001`},
		{cloudv1.DatadogQueryType_DATADOG_SEND_EVENT, []string{"--json", `{"title":"Kestrel AI","text":"rolled back web"}`},
			"/api/v1/events", `{"title":"Kestrel AI","text":"rolled back web"}`, true, `"status":"ok"`},
		{cloudv1.DatadogQueryType_DATADOG_MUTE_MONITOR, []string{"--filter", "11"}, "/api/v1/monitor/11/mute", `{}`, false, `"id":11`},
	} {
		lines, done := x.background(t, append([]string{"integration", "--raw", "--type", c.typ.String()}, c.args...)...)
		var pending, final cloudv1.DatadogQueryResponse
		require.NoError(t, protojson.Unmarshal([]byte(nextLine(t, lines)), &pending))
		require.True(t, pending.GetPending(), "%s: %s", c.typ, pending.GetErrorMessage())
		name := strings.TrimPrefix(pending.GetChangeRequest(), ns+"/")
		time.Sleep(300 * time.Millisecond)
		assert.Empty(t, cloudCalls(fake.Requests()), "%s: nothing is sent before the decision", c.typ)
		assert.Contains(t, x.changeRequest(t, name).Spec.Manifests[0].Diff, c.path)
		require.NoError(t, x.decide(t, toolstest.ApproverUser, name, v1alpha1.Approved, toolstest.ApproverUser))
		require.NoError(t, protojson.Unmarshal([]byte(nextLine(t, lines)), &final))
		require.NoError(t, <-done)
		require.True(t, final.GetSuccess(), "%s: %d %s", c.typ, final.GetStatusCode(), final.GetErrorMessage())
		assert.Contains(t, final.GetResponseData(), c.answer)
		reqs := cloudCalls(fake.Requests())
		require.Len(t, reqs, 1, c.typ.String())
		assert.Equal(t, "POST", reqs[0].Method)
		assert.Equal(t, c.path, reqs[0].Path)
		assert.JSONEq(t, c.body, reqs[0].Body)
		assert.Equal(t, ddAPIKey, reqs[0].Header.Get("DD-API-KEY"))
		if c.apiKeyOnly {
			assert.Empty(t, reqs[0].Header.Get("DD-APPLICATION-KEY"), c.typ.String())
		} else {
			assert.Equal(t, ddAppKey, reqs[0].Header.Get("DD-APPLICATION-KEY"), c.typ.String())
		}
		for _, m := range []proto.Message{&pending, &final} {
			raw, _ := protojson.Marshal(m)
			assert.NotContains(t, string(raw), ddAPIKey)
			assert.NotContains(t, string(raw), ddAppKey)
		}
		cr, _ := json.Marshal(x.changeRequest(t, name))
		assert.NotContains(t, string(cr), ddAPIKey, "the keys are not in the ChangeRequest")
	}
	refused(t, x.integration(t, cloudv1.DatadogQueryType_DATADOG_MUTE_MONITOR, "--filter", "eleven"), 400, "numeric id")
	refused(t, x.integration(t, cloudv1.DatadogQueryType_DATADOG_CREATE_MONITOR), 400, "json_body is required")

	// Bad requests never reach Datadog.
	refused(t, x.integration(t, cloudv1.DatadogQueryType_DATADOG_QUERY_METRICS), 400, "query is required")
	refused(t, x.integration(t, cloudv1.DatadogQueryType_DATADOG_QUERY_METRICS, "--query", "q", "--from", "20", "--to", "10"), 400, "from_ts <= to_ts")
	assert.Empty(t, cloudCalls(fake.Requests()))

	// Datadog's own failures come back with its status and body.
	fake.FailWith(503)
	resp := x.integration(t, cloudv1.DatadogQueryType_DATADOG_QUERY_HOSTS)
	assert.False(t, resp.GetSuccess())
	assert.EqualValues(t, 503, resp.GetStatusCode())
	assert.Contains(t, resp.GetErrorMessage(), "Datadog answered 503")
	assert.JSONEq(t, `{"errors":["Service Unavailable"]}`, resp.GetResponseData())
	fake.FailWith(0)

	// Monitor states: the first poll was silent; each transition is one alert.
	fake.SetMonitors(
		datadogfake.Monitor{ID: 11, Name: "api latency", Type: "metric alert", Query: "avg(last_5m):avg:trace.http.request{*} > 1", Message: "slow", Tags: []string{"team:web"}, OverallState: "Alert"},
		datadogfake.Monitor{ID: 12, Name: "disk", Type: "metric alert", Query: "max(last_5m):system.disk.in_use{*} > 0.9", OverallState: "Warn"},
	)
	got := x.dc.WaitPayloads(t, cloudconn.StreamEvents, &cloudv1.DatadogMonitorAlert{}, func(ms []proto.Message) bool { return len(ms) >= 1 })
	require.Len(t, got, 1)
	a := got[0].(*cloudv1.DatadogMonitorAlert)
	assert.Equal(t, "11", a.GetMonitorId())
	assert.Equal(t, "api latency", a.GetMonitorName())
	assert.Equal(t, "Alert", a.GetCurrentStatus())
	assert.Equal(t, "OK", a.GetPreviousStatus())
	assert.Equal(t, []string{"team:web"}, a.GetTags())
	assert.InDelta(t, time.Now().Unix(), a.GetTimestamp(), 30)
	time.Sleep(2500 * time.Millisecond) // more polls, no change: no more alerts
	assert.Len(t, alerts(x.dc.Records()), 1)

	// The cloud goes away; a monitor changes meanwhile; after the reconnect that one change
	// arrives once, and nothing is alerted again.
	x.dc.Kill()
	fake.SetMonitors(
		datadogfake.Monitor{ID: 11, Name: "api latency", Type: "metric alert", OverallState: "Alert"},
		datadogfake.Monitor{ID: 12, Name: "disk", Type: "metric alert", OverallState: "Ignored"},
	)
	time.Sleep(2500 * time.Millisecond)
	x.dc.Restart(t)
	x.dc.WaitCommitted(t)
	got = x.dc.WaitPayloads(t, cloudconn.StreamEvents, &cloudv1.DatadogMonitorAlert{}, func(ms []proto.Message) bool { return len(ms) >= 1 })
	time.Sleep(2500 * time.Millisecond)
	all := alerts(x.dc.Records())
	require.Len(t, all, 1, "%v", all)
	assert.Equal(t, "12", all[0].GetMonitorId())
	assert.Equal(t, "Warn", all[0].GetPreviousStatus())
	assert.Empty(t, all[0].GetCurrentStatus(), "Ignored counts as unset")
	_ = got

	// The keys reached Datadog only: no answer carried them (checked above), nor the audit.
	for _, r := range x.dc.Records() {
		if r.Payload != nil {
			b, _ := json.Marshal(r.Payload)
			assert.False(t, strings.Contains(string(b), ddAPIKey) || strings.Contains(string(b), ddAppKey))
		}
	}
	// Nor the collector's log, at debug level.
	logged, err := os.ReadFile(logFile)
	require.NoError(t, err)
	require.NotEmpty(t, logged, "the collector logged at debug level")
	assert.NotContains(t, string(logged), ddAPIKey)
	assert.NotContains(t, string(logged), ddAppKey)
}
