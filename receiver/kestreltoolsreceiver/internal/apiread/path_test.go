package apiread

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubeclient"
)

func TestParseForms(t *testing.T) {
	for in, want := range map[string]Request{
		"api":                               {Path: "api", Accept: acceptJSON},
		"/apis":                             {Path: "apis", Accept: acceptJSON},
		"version":                           {Path: "version", Accept: acceptJSON},
		"/openapi/v2":                       {Path: "openapi/v2", Accept: acceptJSON},
		"healthz":                           {Path: "healthz", Accept: acceptJSON},
		"/livez":                            {Path: "livez", Accept: acceptJSON},
		"readyz?verbose":                    {Path: "readyz", Accept: acceptJSON},
		"api/v1/namespaces/shop/pods":       {Path: "api/v1/namespaces/shop/pods", Accept: acceptJSON},
		"/apis/apps/v1/deployments?limit=5": {Path: "apis/apps/v1/deployments", Accept: acceptJSON},
		"api/v1/pods?metadata=true":         {Path: "api/v1/pods", Accept: acceptMetadataList},
		"api/v1/namespaces/x/pods/y?metadata=true":                  {Path: "api/v1/namespaces/x/pods/y", Accept: acceptMetadata},
		"api/v1/secrets?as=Table":                                   {Path: "api/v1/secrets", Accept: acceptTable},
		"api/v1/namespaces/x/pods/y/log?tailLines=10&container=app": {Path: "api/v1/namespaces/x/pods/y/log", Accept: acceptText},
		"api/v1/watch/namespaces/x/secrets":                         {Path: "api/v1/watch/namespaces/x/secrets", Accept: acceptJSON, Watch: true},
		"api/v1/secrets?watch=true":                                 {Path: "api/v1/secrets", Accept: acceptJSON, Watch: true},
	} {
		t.Run(in, func(t *testing.T) {
			got, err := Parse(in)
			require.NoError(t, err)
			assert.Equal(t, want.Path, got.Path)
			assert.Equal(t, want.Accept, got.Accept)
			assert.Equal(t, want.Watch, got.Watch)
			assert.Empty(t, got.Query.Get("metadata"))
			assert.Empty(t, got.Query.Get("as"))
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for in, reason := range map[string]string{
		"../../etc/passwd":                            "not a Kubernetes API path",
		"api/v1/../../etc/passwd":                     `".." segments`,
		"%2e%2e/":                                     "not a Kubernetes API path",
		"api/v1/%2e%2e/secrets":                       "percent-encoded",
		"api/v1/namespaces/x/pods/y%2fexec":           "percent-encoded",
		"api//v1/pods":                                "empty path segment",
		"api/v1/./pods":                               `"." segments`,
		"api/v1/namespaces/x/pods/y/exec?command=sh":  "the exec subresource runs a command",
		"api/v1/namespaces/x/pods/y/attach":           "attach",
		"api/v1/namespaces/x/pods/y/portforward":      "tunnel",
		"api/v1/namespaces/x/pods/y/proxy/metrics":    "proxies",
		"api/v1/namespaces/x/services/s:80/proxy/":    "proxies",
		"api/v1/nodes/n/proxy/stats":                  "proxies",
		"api/v1/proxy/namespaces/x/pods/y":            "proxies",
		"api/v1/namespaces/x/serviceaccounts/d/token": "mints",
		"api/v1/namespaces/x/pods/y/eviction":         "evicts",
		"metrics":                                     "not a Kubernetes API path",
		"logs/kube-apiserver.log":                     "not a Kubernetes API path",
		"api/v1/pods?as=Protobuf":                     "only as=Table",
		"api/v1/namespaces/x/pods/y/log?follow=true":  "follow",
		"api/v1/pods\\..":                             "backslash",
		"api/v1/pods#frag":                            "unexpected",
		"api/v1/po ds":                                "spaces",
		"":                                            "not a Kubernetes API path",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := Parse(in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), reason)
			assert.Contains(t, err.Error(), "refused")
		})
	}
	_, err := Parse("api/v1/" + strings.Repeat("a", 9000))
	require.ErrorContains(t, err, "longer than")
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"api/v1/pods", "/apis/apps/v1/namespaces/x/deployments/y", "api/v1/namespaces/x/pods/y/log?tailLines=1",
		"api/v1/namespaces/x/pods/y/exec", "%2e%2e/", "../../etc/passwd", "api/v1/secrets?metadata=true", "version",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !strings.Contains(err.Error(), "refused") {
				t.Fatalf("error %v is not a refusal", err)
			}
			return
		}
		// What passes stays inside the API: no dot or empty segments, no escapes, and no
		// subresource that is not a plain read.
		for _, seg := range strings.Split(r.Path, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("path %q passed with segment %q", r.Path, seg)
			}
		}
		if strings.ContainsAny(r.Path, "%\\?# ") {
			t.Fatalf("path %q passed", r.Path)
		}
		tgt, err := kubeclient.Classify(r.Path)
		if err != nil {
			t.Fatalf("path %q passed Parse but not Classify: %v", r.Path, err)
		}
		switch tgt.Subresource {
		case "exec", "attach", "portforward", "proxy", "token", "eviction":
			t.Fatalf("path %q passed with subresource %q", r.Path, tgt.Subresource)
		}
	})
}
