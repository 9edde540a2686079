package flux

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

func TestTarget(t *testing.T) {
	for _, c := range []struct {
		filter, body, kind string
		ref                crd.Ref
	}{
		{filter: "apps", kind: "Kustomization", ref: crd.Ref{Name: "apps"}},
		{filter: "hr/podinfo", kind: "HelmRelease", ref: crd.Ref{Name: "podinfo"}},
		{filter: "GitRepositories/flux-system/main", kind: "GitRepository", ref: crd.Ref{Namespace: "flux-system", Name: "main"}},
		{filter: "ignored", body: `{"kind":"ocirepo","namespace":"ns","name":"x"}`, kind: "OCIRepository", ref: crd.Ref{Namespace: "ns", Name: "x"}},
		{filter: "Bucket/b", kind: "Bucket", ref: crd.Ref{Name: "b"}},
	} {
		k, ref, _, err := Target(&cloudv1.DatadogQueryRequest{Filter: c.filter, JsonBody: c.body})
		require.NoError(t, err, c.filter)
		assert.Equal(t, c.kind, k.Kind)
		assert.Equal(t, c.ref, ref)
	}
	for _, f := range []string{"", "a/b/c/d", "widget/x", "ks/Bad_NS/x"} {
		_, _, _, err := Target(&cloudv1.DatadogQueryRequest{Filter: f})
		assert.Equal(t, http.StatusBadRequest, crd.Code(err), f)
	}
}

// FuzzTarget: any filter and json_body name an object or give a 400.
func FuzzTarget(f *testing.F) {
	f.Add("ks/flux-system/apps", "")
	f.Add("hr/x", `{"with_source":true}`)
	f.Add("", `{"kind":"hc","name":"c","timeout_seconds":"x"}`)
	f.Fuzz(func(t *testing.T, filter, body string) {
		k, ref, _, err := Target(&cloudv1.DatadogQueryRequest{Filter: filter, JsonBody: body})
		if err != nil {
			assert.Equal(t, http.StatusBadRequest, crd.Code(err))
			return
		}
		assert.NotEmpty(t, k.Versions)
		assert.NoError(t, ref.Check())
	})
}
