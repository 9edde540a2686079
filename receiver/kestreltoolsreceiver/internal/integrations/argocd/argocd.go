// Package argocd reads Argo CD Applications (argoproj.io/v1alpha1) through the Kubernetes
// API, as the cloud's identity: no login to argocd-server, no admin password, no TLS
// verification to switch off. The answers keep the shape argocd-server gives
// (an ApplicationList with items, or one Application).
package argocd // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/argocd"

import (
	"context"
	"encoding/json"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// Name is the integration's name in configuration, messages and the audit.
const Name = "argocd"

// Kind is the Application resource.
var Kind = crd.Kind{Group: "argoproj.io", Resource: "applications", Kind: "Application", Versions: []string{"v1alpha1"}}

// Integration serves the Argo CD reads.
type Integration struct {
	// Namespace is where Applications are looked up by name alone ("" for all namespaces).
	Namespace string
}

func (Integration) Name() string { return Name }

// Available checks that the Application CRD is served.
func (Integration) Available(ctx context.Context, c crd.Clients) error {
	_, err := crd.Resolve(ctx, c.Discovery, Kind)
	return err
}

// Target is the Application a request names: the filter "name" or "namespace/name".
func (i Integration) Target(req *cloudv1.DatadogQueryRequest) (crd.Ref, error) {
	r, err := crd.ParseRef(req.GetFilter())
	if err == nil && r.Namespace == "" {
		r.Namespace = i.Namespace
	}
	return r, err
}

// Serve answers a read: 200 and its JSON.
func (i Integration) Serve(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) (int, []byte, error) {
	b, err := i.read(ctx, c, req)
	return http.StatusOK, b, err
}

// read answers ARGOCD_LIST_APPS and ARGOCD_GET_APP_STATUS.
func (i Integration) read(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) ([]byte, error) {
	gvr, err := crd.Resolve(ctx, c.Discovery, Kind)
	if err != nil {
		return nil, err
	}
	switch req.GetQueryType() {
	case cloudv1.DatadogQueryType_ARGOCD_LIST_APPS:
		opts := metav1.ListOptions{Limit: int64(req.GetMaxResults())}
		r := c.Dynamic.Resource(gvr)
		if i.Namespace != "" {
			list, err := r.Namespace(i.Namespace).List(ctx, opts)
			if err != nil {
				return nil, err
			}
			return list.MarshalJSON()
		}
		list, err := r.List(ctx, opts)
		if err != nil {
			return nil, err
		}
		return list.MarshalJSON()
	case cloudv1.DatadogQueryType_ARGOCD_GET_APP_STATUS:
		ref, err := i.Target(req)
		if err != nil {
			return nil, err
		}
		u, err := crd.Get(ctx, c.Dynamic, gvr, Kind.Kind, ref)
		if err != nil {
			return nil, err
		}
		return json.Marshal(u.Object)
	}
	return nil, crd.Errorf(http.StatusBadRequest, "%s is not an Argo CD read", req.GetQueryType())
}
