package karpenter

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// FuzzBody: any filter and json_body give a valid name or a 400.
func FuzzBody(f *testing.F) {
	f.Add("default", "")
	f.Add("", `{"name":"default","cpu_limit":"100","memory_limit":"none"}`)
	f.Add("", `{"nodepool_spec":{"template":{}},"consolidate_after":"30s"}`)
	f.Add("x", `{"nodepool_spec":[]}`)
	f.Fuzz(func(t *testing.T, filter, body string) {
		var b Body
		if err := crd.DecodeBody(body, &b); err != nil {
			assert.Equal(t, http.StatusBadRequest, crd.Code(err))
			return
		}
		if _, err := name(&cloudv1.DatadogQueryRequest{Filter: filter}, b); err != nil {
			assert.Equal(t, http.StatusBadRequest, crd.Code(err))
		}
	})
}
