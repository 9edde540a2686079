package envoyalsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver"

import (
	"slices"
	"strings"

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// redacted replaces the value of a redacted header.
const redacted = "REDACTED"

// header is one header attribute: key is the full attribute name.
type header struct {
	key, value string
}

// headerFilter applies HeadersConfig.
type headerFilter struct {
	request, response map[string]bool
	redact            map[string]bool
	redactContaining  []string
	maxLen            int
}

func lowerSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = true
	}
	return m
}

func newHeaderFilter(cfg HeadersConfig) *headerFilter {
	containing := make([]string, len(cfg.RedactContaining))
	for i, s := range cfg.RedactContaining {
		containing[i] = strings.ToLower(s)
	}
	return &headerFilter{
		request:          lowerSet(cfg.Request),
		response:         lowerSet(cfg.Response),
		redact:           lowerSet(cfg.Redact),
		redactContaining: containing,
		maxLen:           cfg.MaxValueLength,
	}
}

// filter returns the allowed headers of one map as attributes under prefix, sorted by name
// (Go maps have no order, and records should not change from run to run). Only allowlisted
// names are looked at further, so thousands of headers cost one map lookup each.
func (f *headerFilter) filter(out []header, headers map[string]string, allow map[string]bool, prefix string) []header {
	if len(allow) == 0 {
		return out
	}
	start := len(out)
	for name, value := range headers {
		lower := name
		if strings.ContainsFunc(name, func(r rune) bool { return r >= 'A' && r <= 'Z' }) {
			lower = strings.ToLower(name)
		}
		if !allow[lower] {
			continue
		}
		if f.redacts(lower) {
			value = redacted
		}
		out = append(out, header{key: prefix + lower, value: truncate(value, f.maxLen)})
	}
	slices.SortFunc(out[start:], func(a, b header) int { return strings.Compare(a.key, b.key) })
	return out
}

func (f *headerFilter) redacts(lower string) bool {
	if f.redact[lower] {
		return true
	}
	for _, s := range f.redactContaining {
		if strings.Contains(lower, s) {
			return true
		}
	}
	return false
}

// apply filters the request and response headers of an HTTP entry. Envoy logs the Referer in
// a field of its own; it is treated as the request header it is.
func (f *headerFilter) apply(request, response map[string]string, referer string) []header {
	out := f.filter(nil, request, f.request, schema.AttrHTTPRequestHeaderPrefix)
	if referer != "" && f.request["referer"] {
		if _, logged := request["referer"]; !logged {
			out = f.filter(out, map[string]string{"referer": referer}, f.request, schema.AttrHTTPRequestHeaderPrefix)
		}
	}
	return f.filter(out, response, f.response, schema.AttrHTTPResponseHeaderPrefix)
}
