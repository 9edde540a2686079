package k8sinventoryreceiver

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver/internal/metadata"
)

// testMain is called by the generated TestMain (see metadata.yaml): the package's tests
// share one kube-apiserver, stopped after them.
func testMain(m *testing.M) { kubeenv.Main(m) }

const (
	waitFor = 30 * time.Second
	tick    = 20 * time.Millisecond
)

// requestCounter counts the requests that read a whole collection: LISTs and the
// WatchList requests (watch with sendInitialEvents) that replace them.
type requestCounter struct {
	lists atomic.Int64
	all   atomic.Int64
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		c.all.Add(1)
		q := req.URL.Query()
		watchList := q.Get("watch") == "true" && q.Get("sendInitialEvents") == "true"
		list := req.Method == http.MethodGet && q.Get("watch") != "true" && (q.Has("limit") || q.Has("resourceVersion"))
		if watchList || list {
			c.lists.Add(1)
		}
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// isolatedConfig returns the admin config with its own user agent (so it gets informers
// of its own in k8scache) and a request counter.
func isolatedConfig(t *testing.T, env *kubeenv.Env) (*rest.Config, *requestCounter) {
	cfg := env.RestConfig()
	cfg.UserAgent = "k8sinventory-test/" + t.Name()
	counter := &requestCounter{}
	cfg.Wrap(counter.wrap)
	return cfg, counter
}

func adminClient(t *testing.T, env *kubeenv.Env) *kubernetes.Clientset {
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	return cs
}

// testReceiver creates the receiver with cfg against rc; it is shut down when the test ends.
func testReceiver(tb testing.TB, cfg *Config, rc *rest.Config, next consumer.Logs) *inventoryReceiver {
	tb.Helper()
	return testReceiverWith(tb, cfg, rc, next, receivertest.NewNopSettings(metadata.Type))
}

// testReceiverWith is testReceiver with given settings (e.g. to observe telemetry).
func testReceiverWith(tb testing.TB, cfg *Config, rc *rest.Config, next consumer.Logs, set receiver.Settings) *inventoryReceiver {
	tb.Helper()
	require.NoError(tb, cfg.Validate())
	set.Logger = zaptest.NewLogger(tb).Named(tb.Name())
	r, err := newReceiver(cfg, set, next)
	require.NoError(tb, err)
	r.restConfig = func() (*rest.Config, error) { return rc, nil }
	tb.Cleanup(func() { require.NoError(tb, r.Shutdown(context.Background())) })
	return r
}

// rec is a flattened log record for assertions.
type rec struct {
	event  string
	action string
	attrs  map[string]any
	body   any
	sev    plog.SeverityNumber
}

func (r rec) str(k string) string {
	s, _ := r.attrs[k].(string)
	return s
}

func (r rec) String() string {
	return fmt.Sprintf("%s %s %v", r.event, r.action, r.attrs)
}

func records(sink *consumertest.LogsSink) []rec {
	var out []rec
	for lr := range testutil.LogRecords(sink.AllLogs()...) {
		attrs := lr.Attributes().AsRaw()
		action, _ := attrs[schema.AttrAction].(string)
		var body any
		if lr.Body().Type() != pcommon.ValueTypeEmpty {
			body = lr.Body().AsRaw()
		}
		out = append(out, rec{event: lr.EventName(), action: action, attrs: attrs, body: body, sev: lr.SeverityNumber()})
	}
	return out
}

// find returns the records matching pred.
func find(recs []rec, pred func(rec) bool) []rec {
	var out []rec
	for _, r := range recs {
		if pred(r) {
			out = append(out, r)
		}
	}
	return out
}

// waitRecord waits for a record matching pred and returns it.
func waitRecord(t *testing.T, sink *consumertest.LogsSink, what string, pred func(rec) bool) rec {
	t.Helper()
	var got []rec
	require.Eventually(t, func() bool {
		got = find(records(sink), pred)
		return len(got) > 0
	}, waitFor, tick, "no record: %s\nrecords:\n%s", what, describe(records(sink)))
	return got[0]
}

func describe(recs []rec) string {
	lines := make([]string, 0, len(recs))
	for _, r := range recs {
		lines = append(lines, "  "+r.String())
	}
	sort.Strings(lines)
	if len(lines) > 60 {
		lines = append(lines[:60], fmt.Sprintf("  ... %d more", len(lines)-60))
	}
	return strings.Join(lines, "\n")
}

func is(event, action string, more ...func(rec) bool) func(rec) bool {
	return func(r rec) bool {
		if r.event != event || (action != "" && r.action != action) {
			return false
		}
		for _, m := range more {
			if !m(r) {
				return false
			}
		}
		return true
	}
}

func attr(k, v string) func(rec) bool {
	return func(r rec) bool { return r.str(k) == v }
}
