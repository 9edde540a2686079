// Package kubeclient is how the cloud's tools reach the Kubernetes API: as the cloud's own
// identity (by default an impersonated ServiceAccount, so RBAC in the cluster decides what
// the AI may read), through one guarded transport that every read of every tool goes
// through, kubectl's included. The guard lets only reads out (GET, plus the two
// self-review POSTs `kubectl auth can-i` needs), refuses paths that escape the API or open
// shells and tunnels, asks for JSON only, binds each HTTP request to the tool request's
// deadline, bounds what it reads, and passes every JSON response through internal/scrub, so
// no Secret value, managedFields or last-applied annotation leaves the cluster.
package kubeclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"k8s.io/client-go/rest"

	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/scrub"
)

// Client holds the transport to the apiserver, authenticated as the cloud's identity. It
// is shared by all requests; each request gets its own Config bound to its context.
type Client struct {
	host     string
	base     http.RoundTripper
	identity string
	maxRead  int64
}

// New builds the shared transport from the collector's client configuration. With
// impersonate set (a user name such as system:serviceaccount:kestrel:kestrel-ai-reader)
// every request carries Impersonate-User, so the apiserver authorizes it as that identity.
// maxRead bounds each apiserver response the guard reads.
func New(cfg *rest.Config, impersonate string, maxRead int64) (*Client, error) {
	c := rest.CopyConfig(cfg)
	identity := impersonate
	if impersonate != "" {
		c.Impersonate = rest.ImpersonationConfig{UserName: impersonate}
	} else {
		identity = "(the collector's own identity)"
	}
	rt, err := rest.TransportFor(c)
	if err != nil {
		return nil, fmt.Errorf("building the Kubernetes transport: %w", err)
	}
	return &Client{host: c.Host, base: rt, identity: identity, maxRead: maxRead}, nil
}

// Host is the apiserver's URL.
func (c *Client) Host() string { return c.host }

// Identity is who the requests run as, for the audit.
func (c *Client) Identity() string { return c.identity }

// Config returns a client configuration for one tool request: its transport is the shared
// one behind the guard, and every HTTP request made with it ends when ctx does. Warnings
// of the apiserver go to warnings (nil drops them).
func (c *Client) Config(ctx context.Context, warnings io.Writer) *rest.Config {
	cfg := &rest.Config{
		Host:      c.host,
		Transport: &guard{base: c.base, ctx: ctx, maxRead: c.maxRead},
		// Each request has its own limiter; the apiserver's priority and fairness protect it.
		QPS:   50,
		Burst: 100,
	}
	if warnings != nil {
		cfg.WarningHandler = rest.NewWarningWriter(warnings, rest.WarningWriterOptions{Deduplicate: true})
	} else {
		cfg.WarningHandler = rest.NoWarnings{}
	}
	return cfg
}

// selfReviews are the only writes allowed: they ask the apiserver what the caller may do
// and change nothing.
var selfReviews = map[string]bool{
	"/apis/authorization.k8s.io/v1/selfsubjectaccessreviews": true,
	"/apis/authorization.k8s.io/v1/selfsubjectrulesreviews":  true,
}

type guard struct {
	base    http.RoundTripper
	ctx     context.Context
	maxRead int64
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer func() {
			if req.Body != nil {
				_ = req.Body.Close()
			}
		}()
	}
	if err := context.Cause(g.ctx); err != nil {
		return nil, err
	}
	path := req.URL.EscapedPath()
	switch {
	case req.Method == http.MethodGet:
	case req.Method == http.MethodPost && selfReviews[path]:
	default:
		return nil, refused("%s %s: the cloud's tools only read", req.Method, path)
	}
	if req.Header.Get("Upgrade") != "" {
		return nil, refused("protocol upgrades (streams into containers) are not allowed")
	}
	target, err := Classify(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	stop := context.AfterFunc(g.ctx, func() { cancel(context.Cause(g.ctx)) })
	end := func() { stop(); cancel(nil) }
	out := req.Clone(ctx)
	out.Header.Set("Accept", jsonOnly(req.Header.Get("Accept")))
	out.Header.Del("Accept-Encoding") // the transport negotiates gzip itself and decodes it
	resp, err := g.base.RoundTrip(out)
	req.Body = nil // the base transport closed it
	if err != nil {
		end()
		return nil, err
	}
	orig := resp.Body
	body := &limitReader{r: orig, n: g.maxRead}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		pr, pw := io.Pipe()
		opts := scrub.Options{SecretScope: target.IsSecrets()}
		go func() {
			err := scrub.Copy(pw, body, opts)
			_ = orig.Close()
			_ = pw.CloseWithError(err)
		}()
		resp.Body = &closer{Reader: pr, close: func() { _ = pr.Close(); end() }}
	case mt == "text/plain" || (mt == "" && resp.StatusCode == http.StatusNoContent):
		resp.Body = &closer{Reader: body, close: func() { _ = orig.Close(); end() }}
	default:
		_ = orig.Close()
		end()
		return nil, refused("the apiserver answered %s with content type %q; only JSON and plain text are read", path, mt)
	}
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return resp, nil
}

// jsonOnly keeps the JSON media types of an Accept header (with their parameters, e.g.
// as=Table) and drops protobuf, CBOR and YAML, which the scrubber cannot read.
func jsonOnly(accept string) string {
	var keep []string
	for part := range strings.SplitSeq(accept, ",") {
		part = strings.TrimSpace(part)
		mt, _, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		if mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/plain" || mt == "*/*" {
			keep = append(keep, part)
		}
	}
	if len(keep) == 0 {
		return "application/json"
	}
	return strings.Join(keep, ", ")
}

// ErrTooLarge is returned by a response body that exceeded the read limit.
var ErrTooLarge = errors.New("the apiserver's response exceeds the tools' read limit")

type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

type closer struct {
	io.Reader
	close func()
}

func (c *closer) Close() error {
	c.close()
	return nil
}
