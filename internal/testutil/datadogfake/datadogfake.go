// Package datadogfake is a fake of the Datadog API for tests: the Datadog API cannot be
// reached from here, so this serves the endpoints otelcol-kestrel calls, as Datadog's public
// API documentation describes them (paths, methods, the DD-API-KEY and DD-APPLICATION-KEY
// headers, 403 {"errors":["Forbidden"]} for wrong keys), with canned bodies. It records
// every request for the test to assert on, and its monitors' states are set by the test.
// It is a fake: it checks nothing a real Datadog checks beyond the keys and the shapes.
package datadogfake // import "github.com/kestrelai/otelcol-kestrel/internal/testutil/datadogfake"

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
)

// Request is one request the fake received.
type Request struct {
	Method, Path string
	Query        map[string]string
	Header       http.Header
	Body         string
}

// Monitor is one monitor as GET /api/v1/monitor lists it.
type Monitor struct {
	ID           int64    `json:"id"`
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	Query        string   `json:"query"`
	Message      string   `json:"message"`
	Tags         []string `json:"tags"`
	OverallState string   `json:"overall_state"`
}

// Fake is a running fake Datadog API.
type Fake struct {
	URL            string
	apiKey, appKey string

	mu       sync.Mutex
	requests []Request
	monitors []Monitor
	nextID   int64
	// Status, when set, answers every request with it (an upstream failure).
	status int
}

var mutePath = regexp.MustCompile(`^/api/v1/monitor/(\d+)/mute$`)

// Start runs a fake that accepts apiKey and appKey; it stops when the test ends.
func Start(tb testing.TB, apiKey, appKey string) *Fake {
	tb.Helper()
	f := &Fake{apiKey: apiKey, appKey: appKey, nextID: 1000}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	tb.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// SetMonitors replaces the monitors (and their states).
func (f *Fake) SetMonitors(ms ...Monitor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.monitors = append([]Monitor(nil), ms...)
}

// FailWith makes every request answer status (0: answer normally again).
func (f *Fake) FailWith(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = status
}

// Requests returns the requests received so far and forgets them.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.requests
	f.requests = nil
	return out
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = v[0]
	}
	f.mu.Lock()
	f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.Path, Query: q, Header: r.Header.Clone(), Body: string(body)})
	status := f.status
	f.mu.Unlock()
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	// Sending events needs only the API key; everything else both.
	eventPost := r.Method == http.MethodPost && r.URL.Path == "/api/v1/events"
	if r.Header.Get("DD-API-KEY") != f.apiKey || (!eventPost && r.Header.Get("DD-APPLICATION-KEY") != f.appKey) {
		reply(http.StatusForbidden, map[string]any{"errors": []string{"Forbidden"}})
		return
	}
	if status != 0 {
		reply(status, map[string]any{"errors": []string{http.StatusText(status)}})
		return
	}
	var in map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			reply(http.StatusBadRequest, map[string]any{"errors": []string{"invalid JSON"}})
			return
		}
	}
	switch m, p := r.Method, r.URL.Path; {
	case m == http.MethodGet && p == "/api/v1/query":
		reply(http.StatusOK, map[string]any{"status": "ok", "query": q["query"], "from_date": q["from"], "to_date": q["to"],
			"series": []any{map[string]any{"metric": "system.cpu.user", "pointlist": [][]float64{{1, 0.5}}}}})
	case m == http.MethodGet && p == "/api/v1/events":
		reply(http.StatusOK, map[string]any{"events": []any{map[string]any{"id": 1, "title": "Deploy", "source_type_name": q["sources"]}}})
	case m == http.MethodGet && p == "/api/v1/hosts":
		reply(http.StatusOK, map[string]any{"host_list": []any{map[string]any{"name": "ip-10-0-1-7"}}, "total_returned": 1})
	case m == http.MethodPost && p == "/api/v2/logs/events/search":
		reply(http.StatusOK, map[string]any{"data": []any{map[string]any{"id": "AAAA", "type": "log"}}, "meta": map[string]any{"status": "done"}})
	case m == http.MethodGet && p == "/api/v1/metrics":
		reply(http.StatusOK, map[string]any{"metrics": []string{"system.cpu.user"}, "from": q["from"]})
	case m == http.MethodGet && p == "/api/v1/monitor":
		page, _ := strconv.Atoi(q["page"])
		per, _ := strconv.Atoi(q["per_page"])
		f.mu.Lock()
		ms := f.monitors
		f.mu.Unlock()
		if per <= 0 {
			per = len(ms)
		}
		lo, hi := min(page*per, len(ms)), min((page+1)*per, len(ms))
		reply(http.StatusOK, ms[lo:hi])
	case m == http.MethodPost && p == "/api/v1/monitor":
		f.mu.Lock()
		f.nextID++
		in["id"] = f.nextID
		f.mu.Unlock()
		reply(http.StatusOK, in)
	case m == http.MethodPost && p == "/api/v1/events":
		reply(http.StatusAccepted, map[string]any{"status": "ok", "event": in})
	case m == http.MethodPost && mutePath.MatchString(p):
		id, _ := strconv.ParseInt(mutePath.FindStringSubmatch(p)[1], 10, 64)
		reply(http.StatusOK, map[string]any{"id": id, "options": map[string]any{"silenced": map[string]any{"*": in["end"]}}})
	default:
		reply(http.StatusNotFound, map[string]any{"errors": []string{"Not found"}})
	}
}
