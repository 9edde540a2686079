// Package datadog is the Datadog integration: it calls the Datadog API for Kestrel Cloud
// with the customer's keys (read from a Secret at each call, so rotation and removal take
// effect at once), and polls the monitors for state changes. The keys travel only in the
// DD-API-KEY and DD-APPLICATION-KEY headers; they are never logged or answered.
package datadog // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/datadog"

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// Name is the integration's name in configuration, messages and the audit.
const Name = "datadog"

// Keys are the customer's Datadog keys.
type Keys struct {
	API string
	App string
}

// KeySource reads the keys; an error says what is missing (never the keys).
type KeySource func(ctx context.Context) (Keys, error)

// Config configures the client.
type Config struct {
	// BaseURL is the API's URL, https://api.<site> (another one for a proxy).
	BaseURL string
	// MaxResponseBytes caps an answer read from Datadog; a larger one is a 413.
	MaxResponseBytes int
}

// Client calls the Datadog API.
type Client struct {
	cfg  Config
	keys KeySource
	http *http.Client
	now  func() time.Time
}

// New returns a client. rt may be nil (the default transport).
func New(cfg Config, keys KeySource, rt http.RoundTripper) *Client {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &Client{cfg: cfg, keys: keys, now: time.Now,
		http: &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
			// A redirect would carry the keys to wherever it points.
			return http.ErrUseLastResponse
		}}}
}

func (*Client) Name() string { return Name }

// Available checks that the keys can be read.
func (c *Client) Available(ctx context.Context, _ crd.Clients) error {
	_, err := c.keys(ctx)
	return err
}

// Kind is the kind of the pseudo-object that describes a Datadog write in a
// ChangeRequest.
const Kind = "DatadogRequest"

// Plan describes a Datadog write (create monitor, send event, mute) as the request it will
// send once approved.
func (c *Client) Plan(_ context.Context, _ crd.Clients, req *cloudv1.DatadogQueryRequest) ([]crd.Change, error) {
	cl, err := c.build(req)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: map[string]any{"method": cl.method, "path": cl.path, "body": string(cl.body), "apiKeyOnly": cl.apiKeyOnly}}
	u.SetAPIVersion("kestrel.ai/v1alpha1")
	u.SetKind(Kind)
	u.SetName(strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(req.GetQueryType().String(), "DATADOG_"), "_", "-")))
	return []crd.Change{{Object: u, Action: Kind}}, nil
}

// writes are the requests an approved ChangeRequest may send: a ChangeRequest names one of
// these or nothing is sent.
var writes = regexp.MustCompile(`^POST /api/v1/(monitor|events|monitor/\d+/mute)$`)

// Execute sends an approved write and returns Datadog's status and answer.
func (c *Client) Execute(ctx context.Context, obj *unstructured.Unstructured) (int, []byte, error) {
	method, path, body := crd.Str(obj.Object, "method"), crd.Str(obj.Object, "path"), crd.Str(obj.Object, "body")
	if obj.GetKind() != Kind || !writes.MatchString(method+" "+path) {
		return 0, nil, crd.Errorf(http.StatusBadRequest, "%s %s is not a Datadog write this collector sends", method, path)
	}
	return c.do(ctx, call{method: method, path: path, body: []byte(body), apiKeyOnly: crd.Bool(obj.Object, "apiKeyOnly")})
}

// call is one request to Datadog.
type call struct {
	method, path string
	query        url.Values
	body         []byte
	// apiKeyOnly: the endpoint takes only the API key (sending events).
	apiKeyOnly bool
	// agent is the User-Agent, which tells the cloud's calls from the poller's.
	agent string
}

// User agents of the cloud's calls and of the monitor poller.
const (
	UserAgent       = "otelcol-kestrel/kestrel_tools"
	PollerUserAgent = "otelcol-kestrel/kestrel_tools monitor-poller"
)

// build turns a request into the Datadog call it makes, or a 400.
func (c *Client) build(req *cloudv1.DatadogQueryRequest) (call, error) {
	now := c.now()
	from, to := req.GetFromTs(), req.GetToTs()
	if from == 0 {
		from = now.Add(-time.Hour).Unix()
	}
	if to == 0 {
		to = now.Unix()
	}
	if from < 0 || to < 0 || from > to {
		return call{}, crd.Errorf(http.StatusBadRequest, "from_ts (%d) and to_ts (%d) must be unix seconds with from_ts <= to_ts", from, to)
	}
	ts := func(s int64) string { return strconv.FormatInt(s, 10) }
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	count := ""
	if n := req.GetMaxResults(); n > 0 {
		count = strconv.Itoa(int(n))
	}
	body := func() ([]byte, error) {
		b := strings.TrimSpace(req.GetJsonBody())
		if b == "" {
			return nil, crd.Errorf(http.StatusBadRequest, "json_body is required for %s", req.GetQueryType())
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(b), &obj); err != nil {
			return nil, crd.Errorf(http.StatusBadRequest, "json_body must be one JSON object: %v", err)
		}
		return []byte(b), nil
	}
	switch req.GetQueryType() {
	case cloudv1.DatadogQueryType_DATADOG_QUERY_METRICS:
		if req.GetQuery() == "" {
			return call{}, crd.Errorf(http.StatusBadRequest, "query is required for DATADOG_QUERY_METRICS")
		}
		q.Set("query", req.GetQuery())
		q.Set("from", ts(from))
		q.Set("to", ts(to))
		return call{method: http.MethodGet, path: "/api/v1/query", query: q}, nil
	case cloudv1.DatadogQueryType_DATADOG_QUERY_EVENTS:
		q.Set("start", ts(from))
		q.Set("end", ts(to))
		set("sources", req.GetFilter())
		set("count", count)
		return call{method: http.MethodGet, path: "/api/v1/events", query: q}, nil
	case cloudv1.DatadogQueryType_DATADOG_QUERY_HOSTS:
		set("filter", req.GetFilter())
		set("sort_field", req.GetSort())
		set("count", count)
		return call{method: http.MethodGet, path: "/api/v1/hosts", query: q}, nil
	case cloudv1.DatadogQueryType_DATADOG_QUERY_LOGS:
		search := map[string]any{"filter": map[string]any{
			"from":  time.Unix(from, 0).UTC().Format(time.RFC3339),
			"to":    time.Unix(to, 0).UTC().Format(time.RFC3339),
			"query": cmpOr(req.GetQuery(), "*"),
		}}
		if s := req.GetSort(); s != "" {
			search["sort"] = s
		}
		if n := req.GetMaxResults(); n > 0 {
			search["page"] = map[string]any{"limit": n}
		}
		b, err := json.Marshal(search)
		return call{method: http.MethodPost, path: "/api/v2/logs/events/search", body: b}, err
	case cloudv1.DatadogQueryType_DATADOG_QUERY_LIST_METRICS:
		q.Set("from", ts(from))
		set("host", req.GetFilter())
		return call{method: http.MethodGet, path: "/api/v1/metrics", query: q}, nil
	case cloudv1.DatadogQueryType_DATADOG_LIST_MONITORS:
		q.Set("page", "0")
		q.Set("per_page", "200")
		return call{method: http.MethodGet, path: "/api/v1/monitor", query: q}, nil
	case cloudv1.DatadogQueryType_DATADOG_CREATE_MONITOR:
		b, err := body()
		return call{method: http.MethodPost, path: "/api/v1/monitor", body: b}, err
	case cloudv1.DatadogQueryType_DATADOG_SEND_EVENT:
		b, err := body()
		return call{method: http.MethodPost, path: "/api/v1/events", body: b, apiKeyOnly: true}, err
	case cloudv1.DatadogQueryType_DATADOG_MUTE_MONITOR:
		id := req.GetFilter()
		if _, err := strconv.ParseUint(id, 10, 63); err != nil {
			return call{}, crd.Errorf(http.StatusBadRequest, "filter must be the monitor's numeric id, got %q", id)
		}
		b := []byte("{}")
		if strings.TrimSpace(req.GetJsonBody()) != "" {
			var err error
			if b, err = body(); err != nil {
				return call{}, err
			}
		}
		return call{method: http.MethodPost, path: "/api/v1/monitor/" + id + "/mute", body: b}, nil
	}
	return call{}, crd.Errorf(http.StatusBadRequest, "%s is not a Datadog type", req.GetQueryType())
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Serve calls Datadog and returns its status and body.
func (c *Client) Serve(ctx context.Context, _ crd.Clients, req *cloudv1.DatadogQueryRequest) (int, []byte, error) {
	cl, err := c.build(req)
	if err != nil {
		return 0, nil, err
	}
	return c.do(ctx, cl)
}

// do sends one call: the upstream status and body, or an error with the local status.
func (c *Client) do(ctx context.Context, cl call) (int, []byte, error) {
	keys, err := c.keys(ctx)
	if err != nil {
		return 0, nil, err
	}
	u := strings.TrimSuffix(c.cfg.BaseURL, "/") + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	hr, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return 0, nil, crd.Errorf(http.StatusBadRequest, "building the Datadog request: %v", err)
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", cmpOr(cl.agent, UserAgent))
	if cl.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("DD-API-KEY", keys.API)
	if !cl.apiKeyOnly {
		hr.Header.Set("DD-APPLICATION-KEY", keys.App)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, nil, crd.Errorf(http.StatusGatewayTimeout, "Datadog did not answer %s %s in time", cl.method, cl.path)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is known; the error says what went wrong
		}
		return 0, nil, crd.Errorf(http.StatusBadGateway, "calling Datadog %s %s: %v", cl.method, cl.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.cfg.MaxResponseBytes)+1))
	if err != nil {
		return 0, nil, crd.Errorf(http.StatusBadGateway, "reading Datadog's answer to %s %s: %v", cl.method, cl.path, err)
	}
	if len(data) > c.cfg.MaxResponseBytes {
		return 0, nil, crd.Errorf(http.StatusRequestEntityTooLarge, "Datadog's answer to %s %s is over %d bytes (narrow it with filter, the time range or max_results)", cl.method, cl.path, c.cfg.MaxResponseBytes)
	}
	return resp.StatusCode, data, nil
}

// Describe is nil for a 2xx status, else an error with the upstream status and body.
func Describe(status int, data []byte) error {
	if status >= 200 && status < 300 {
		return nil
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 4096 {
		msg = msg[:4096] + "…"
	}
	return crd.Errorf(status, "Datadog answered %d %s: %s", status, http.StatusText(status), msg)
}
