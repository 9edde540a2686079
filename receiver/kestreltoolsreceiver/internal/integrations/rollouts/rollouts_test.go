package rollouts

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// FuzzTarget: any filter and json_body name a Rollout or give a 400.
func FuzzTarget(f *testing.F) {
	f.Add("shop/web", "")
	f.Add("web", `{"namespace":"shop"}`)
	f.Add("", `{"namespace":"shop","name":"web","full":true,"revision":3}`)
	f.Add("", `{"revision":"three"}`)
	f.Fuzz(func(t *testing.T, filter, body string) {
		ref, _, err := Target(&cloudv1.DatadogQueryRequest{Filter: filter, JsonBody: body})
		if err != nil {
			assert.Equal(t, http.StatusBadRequest, crd.Code(err))
			return
		}
		assert.NoError(t, ref.Check())
	})
}
