package flux

import (
	"context"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// RequestedAt is the annotation that asks a Flux controller to reconcile now (what `flux
// reconcile` sets).
const RequestedAt = "reconcile.fluxcd.io/requestedAt"

// now is the clock of the reconcile request (a variable for tests).
var now = time.Now

// Plan turns a Flux write into the fields it changes, as the flux CLI patches them.
func (Integration) Plan(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) ([]crd.Change, error) {
	k, ref, b, err := Target(req)
	if err != nil {
		return nil, err
	}
	u, err := crd.Fetch(ctx, c, k, ref)
	if err != nil {
		return nil, err
	}
	requested := crd.Set{Path: []string{"metadata", "annotations", RequestedAt}, Value: now().UTC().Format(time.RFC3339Nano)}
	switch req.GetQueryType() {
	case cloudv1.DatadogQueryType_FLUX_RECONCILE:
		var out []crd.Change
		if b.WithSource {
			src, err := source(ctx, c, u)
			if err != nil {
				return nil, err
			}
			out = append(out, crd.Patch(src, "", requested))
		}
		return append(out, crd.Patch(u, "", requested)), nil
	case cloudv1.DatadogQueryType_FLUX_SUSPEND:
		return []crd.Change{crd.Patch(u, "", crd.Set{Path: []string{"spec", "suspend"}, Value: true})}, nil
	case cloudv1.DatadogQueryType_FLUX_RESUME:
		// Resuming also asks for a reconcile, as `flux resume` does.
		return []crd.Change{crd.Patch(u, "", crd.Set{Path: []string{"spec", "suspend"}, Value: false}, requested)}, nil
	}
	return nil, crd.Errorf(http.StatusBadRequest, "%s is not a Flux write", req.GetQueryType())
}

// source reads the object u deploys from (spec.sourceRef, or a HelmRelease's chart source).
func source(ctx context.Context, c crd.Clients, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	s := Summarize(u).SourceRef
	if s == nil {
		return nil, crd.Errorf(http.StatusBadRequest, "%s %s/%s has no source to reconcile (with_source)", u.GetKind(), u.GetNamespace(), u.GetName())
	}
	k, err := KindOf(s.Kind)
	if err != nil {
		return nil, err
	}
	ns := s.Namespace
	if ns == "" {
		ns = u.GetNamespace()
	}
	return crd.Fetch(ctx, c, k, crd.Ref{Namespace: ns, Name: s.Name})
}
