package datadog

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// newMonitors serves GET /api/v1/monitor with one monitor per state in *states.
func newMonitors(t *testing.T, states *[]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var out []monitor
		for i, s := range *states {
			out = append(out, monitor{ID: int64(i + 1), Name: "m", OverallState: s})
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
