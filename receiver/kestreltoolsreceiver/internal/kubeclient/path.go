package kubeclient // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubeclient"

import (
	"errors"
	"fmt"
	"strings"
)

// Target is what an apiserver URL path addresses.
type Target struct {
	// NonResource is set for paths outside api/ and apis/ (version, openapi/v2, ...).
	NonResource bool
	// Group is empty for the core group (api/v1).
	Group, Version                         string
	Namespace, Resource, Name, Subresource string
	// Watch is set for the legacy watch/ prefix.
	Watch bool
}

// IsSecrets says whether the path reads Secrets (of one namespace or all, one or a list).
func (t Target) IsSecrets() bool {
	return !t.NonResource && t.Group == "" && t.Resource == "secrets"
}

// ErrRefused marks requests the tools refuse before anything reaches the apiserver.
var ErrRefused = errors.New("refused")

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// deniedSubresources are not plain reads: they open a shell or a tunnel into a pod, a
// service or a node (exec, attach, portforward, proxy), mint credentials (token) or
// evict a pod, whatever the HTTP method.
var deniedSubresources = map[string]string{
	"exec":        "runs a command in a container",
	"attach":      "attaches to a running container",
	"portforward": "opens a tunnel into a pod",
	"proxy":       "proxies requests into a pod, service or node",
	"token":       "mints a ServiceAccount token",
	"eviction":    "evicts a pod",
}

// Classify parses an apiserver URL path (escaped form, with or without a leading "/",
// without the query) and refuses paths that could escape the API or are not plain reads:
// "." and ".." segments, empty segments ("//"), percent-encoding, backslashes, control
// characters and spaces, and the subresources in deniedSubresources.
func Classify(path string) (Target, error) {
	p := strings.TrimPrefix(path, "/")
	if p == "" {
		return Target{}, refused("empty path")
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '%':
			return Target{}, refused("percent-encoded characters are not allowed in a path (%q)", path)
		case c == '\\':
			return Target{}, refused("backslashes are not allowed in a path")
		case c <= ' ' || c == 0x7f:
			return Target{}, refused("spaces and control characters are not allowed in a path")
		case c == '?' || c == '#':
			return Target{}, refused("unexpected %q in a path", c)
		}
	}
	if strings.Contains(p, "//") {
		return Target{}, refused("empty path segment (\"//\") in %q", path)
	}
	segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
	for _, s := range segs {
		switch s {
		case "":
			return Target{}, refused("empty path segment (\"//\") in %q", path)
		case ".", "..":
			return Target{}, refused("%q segments are not allowed in a path", s)
		}
	}
	var t Target
	var rest []string
	switch {
	case segs[0] == "api" && len(segs) >= 2:
		t.Version, rest = segs[1], segs[2:]
	case segs[0] == "apis" && len(segs) >= 3:
		t.Group, t.Version, rest = segs[1], segs[2], segs[3:]
	case segs[0] == "api" || segs[0] == "apis":
		// Discovery: api, apis, apis/<group>.
		t.NonResource = true
		return t, nil
	default:
		t.NonResource = true
		return t, nil
	}
	if len(rest) > 0 && rest[0] == "watch" {
		t.Watch, rest = true, rest[1:]
	}
	if len(rest) > 0 && rest[0] == "proxy" {
		return Target{}, refused("proxy %s", deniedSubresources["proxy"])
	}
	if len(rest) >= 2 && rest[0] == "namespaces" {
		t.Namespace = rest[1]
		if len(rest) == 2 {
			t.Resource, t.Name = "namespaces", rest[1]
			return t, nil
		}
		if len(rest) == 3 && (rest[2] == "status" || rest[2] == "finalize") {
			t.Resource, t.Name, t.Subresource = "namespaces", rest[1], rest[2]
			return t, nil
		}
		rest = rest[2:]
	}
	if len(rest) == 0 {
		return t, nil // group version discovery
	}
	t.Resource = rest[0]
	if len(rest) > 1 {
		t.Name = rest[1]
	}
	if len(rest) > 2 {
		t.Subresource = rest[2]
		if why, ok := deniedSubresources[t.Subresource]; ok {
			return Target{}, refused("the %s subresource %s; only plain reads are allowed", t.Subresource, why)
		}
	}
	if len(rest) > 3 {
		return Target{}, refused("unexpected path segments after %s/%s/%s", t.Resource, t.Name, t.Subresource)
	}
	return t, nil
}
