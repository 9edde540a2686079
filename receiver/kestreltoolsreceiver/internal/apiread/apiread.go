// Package apiread answers KubernetesAPIRequest: GETs of Kubernetes API paths as the
// cloud's identity, through internal/kubeclient's guarded transport, with the apiserver's
// real status and message, one deadline per request and bounded output.
package apiread // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/apiread"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubeclient"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/outbuf"
)

// Name is the tool's name in the audit trail and the self-metrics.
const Name = "kubernetes_api"

// Config is the tool's part of the receiver's configuration.
type Config struct {
	// DefaultTimeout applies when the request has no timeout_seconds.
	DefaultTimeout time.Duration
	// MaxTimeout caps timeout_seconds.
	MaxTimeout time.Duration
	// MaxResultBytes caps one path's response_data.
	MaxResultBytes int
	// MaxResponseBytes caps all response_data of one request together.
	MaxResponseBytes int
}

// Tool serves KubernetesAPIRequests.
type Tool struct {
	cfg    Config
	client *kubeclient.Client
	trail  *audit.Trail
}

// New returns the tool.
func New(cfg Config, client *kubeclient.Client, trail *audit.Trail) *Tool {
	return &Tool{cfg: cfg, client: client, trail: trail}
}

// Serve answers one request. budget is the most response_data the answer may carry (the
// configured cap, lowered to fit the connection's message limit).
func (t *Tool) Serve(ctx context.Context, req *cloudv1.KubernetesAPIRequest, budget int) *cloudv1.KubernetesAPIResponse {
	resp := &cloudv1.KubernetesAPIResponse{RequestId: req.GetRequestId()}
	if len(req.GetApiPaths()) == 0 {
		resp.GlobalErrorMessage = "no api_paths in the request"
		t.trail.Add(ctx, audit.Record{RequestID: req.GetRequestId(), Tool: Name, Identity: t.client.Identity(),
			Outcome: audit.Refused, Reason: resp.GlobalErrorMessage, StatusCode: http.StatusBadRequest})
		return resp
	}
	timeout := t.cfg.DefaultTimeout
	if s := req.GetTimeoutSeconds(); s > 0 {
		timeout = min(time.Duration(s)*time.Second, t.cfg.MaxTimeout)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w: the request's deadline of %v passed", context.DeadlineExceeded, timeout))
	defer cancel()
	httpClient, err := rest.HTTPClientFor(t.client.Config(ctx, nil))
	if err != nil {
		resp.GlobalErrorMessage = "building the Kubernetes client: " + err.Error()
		return resp
	}
	remaining := min(budget, t.cfg.MaxResponseBytes)
	paths := req.GetApiPaths()
	for i, p := range paths {
		// A fair share of what is left, so that early paths cannot starve later ones.
		limit := min(t.cfg.MaxResultBytes, remaining/(len(paths)-i))
		start := time.Now()
		res, rec := t.get(ctx, httpClient, p, limit)
		remaining -= len(res.GetResponseData())
		rec.RequestID, rec.Tool, rec.Input, rec.Identity = req.GetRequestId(), Name, p, t.client.Identity()
		rec.Duration, rec.Bytes, rec.StatusCode = time.Since(start), len(res.GetResponseData()), int(res.GetStatusCode())
		t.trail.Add(ctx, rec)
		resp.Results = append(resp.Results, res)
	}
	return resp
}

// get reads one path.
func (t *Tool) get(ctx context.Context, client *http.Client, raw string, limit int) (*cloudv1.KubernetesAPIResult, audit.Record) {
	res := &cloudv1.KubernetesAPIResult{ApiPath: raw}
	fail := func(code int, outcome, msg string) (*cloudv1.KubernetesAPIResult, audit.Record) {
		res.StatusCode, res.ErrorMessage = int32(code), msg //nolint:gosec // G115: an HTTP status code
		return res, audit.Record{Outcome: outcome, Reason: msg}
	}
	p, err := Parse(raw)
	if err != nil {
		return fail(http.StatusBadRequest, audit.Refused, err.Error())
	}
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
		return fail(http.StatusGatewayTimeout, audit.Timeout, err.Error())
	}
	if p.Watch {
		// The apiserver ends the watch itself a little before the deadline, so the events
		// received so far come back as a complete answer.
		if dl, ok := ctx.Deadline(); ok {
			secs := max(int64(time.Until(dl).Seconds())-1, 1)
			if cur, err := strconv.ParseInt(p.Query.Get("timeoutSeconds"), 10, 64); err != nil || cur <= 0 || cur > secs {
				p.Query.Set("timeoutSeconds", strconv.FormatInt(secs, 10))
			}
		}
	}
	u := strings.TrimSuffix(t.client.Host(), "/") + "/" + p.Path
	if len(p.Query) > 0 {
		u += "?" + p.Query.Encode()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, http.NoBody)
	if err != nil {
		return fail(http.StatusBadRequest, audit.Refused, err.Error())
	}
	hreq.Header.Set("Accept", p.Accept)
	hresp, err := client.Do(hreq)
	if err != nil {
		switch {
		case errors.Is(err, kubeclient.ErrRefused):
			return fail(http.StatusBadRequest, audit.Refused, unwrapURL(err))
		case ctx.Err() != nil:
			return fail(http.StatusGatewayTimeout, audit.Timeout, "timed out: "+context.Cause(ctx).Error())
		default:
			return fail(http.StatusBadGateway, audit.Error, "API call failed: "+unwrapURL(err))
		}
	}
	defer hresp.Body.Close()
	res.StatusCode = int32(hresp.StatusCode) //nolint:gosec // G115: an HTTP status code (three digits)
	note := func(total int64) string {
		return fmt.Sprintf("\n[kestrel: response truncated at %d of at least %d bytes; narrow it with labelSelector, fieldSelector or limit]", limit, total)
	}
	buf := outbuf.New(max(limit-len(note(1<<40)), 0), nil)
	_, err = copyUntilFull(buf, hresp.Body)
	rec := audit.Record{Outcome: audit.OK}
	if buf.Truncated() {
		buf.Note(note(buf.Total()))
		rec.Outcome = audit.Truncated
	}
	body := buf.String()
	res.ResponseData = body
	switch {
	case err != nil && ctx.Err() != nil:
		res.ErrorMessage = "timed out while reading the response: " + context.Cause(ctx).Error()
		rec.Outcome, rec.Reason = audit.Timeout, res.ErrorMessage
		if hresp.StatusCode < 300 {
			res.StatusCode = http.StatusGatewayTimeout
		}
	case err != nil:
		res.ErrorMessage = "reading the response: " + unwrapURL(err)
		rec.Outcome, rec.Reason = audit.Error, res.ErrorMessage
		if errors.Is(err, kubeclient.ErrTooLarge) {
			res.StatusCode = http.StatusRequestEntityTooLarge
		} else if hresp.StatusCode < 300 {
			res.StatusCode = http.StatusBadGateway
		}
	case hresp.StatusCode >= 300:
		res.ErrorMessage = statusMessage(body, hresp.StatusCode)
		rec.Outcome, rec.Reason = audit.Error, res.ErrorMessage
	}
	res.Success = res.ErrorMessage == "" && res.StatusCode < 300
	return res, rec
}

// copyUntilFull copies until src ends or dst has more than it keeps.
func copyUntilFull(dst *outbuf.Buffer, src io.Reader) (int64, error) {
	var n int64
	chunk := make([]byte, 32<<10)
	for !dst.Truncated() {
		m, err := src.Read(chunk)
		if m > 0 {
			_, _ = dst.Write(chunk[:m])
			n += int64(m)
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// statusMessage is the message of the apiserver's Status in body, else the HTTP status.
func statusMessage(body string, code int) string {
	var st struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(body), &st) == nil && st.Message != "" {
		return st.Message
	}
	if s := strings.TrimSpace(body); s != "" && len(s) < 1024 {
		return fmt.Sprintf("%d %s: %s", code, http.StatusText(code), s)
	}
	return fmt.Sprintf("%d %s", code, http.StatusText(code))
}

// unwrapURL drops net/http's "Get \"https://...\": " prefix: the cloud knows the path.
func unwrapURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
