package argocd

import (
	"context"
	"net/http"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// InitiatedBy is the user an operation names as its initiator.
const InitiatedBy = "kestrel-ai"

// SyncBody is json_body of ARGOCD_SYNC_APP: the fields of argocd-server's sync request
// that become the Application's sync operation.
type SyncBody struct {
	Revision    string   `json:"revision"`
	Prune       bool     `json:"prune"`
	DryRun      bool     `json:"dryRun"`
	SyncOptions []string `json:"syncOptions"`
	Strategy    any      `json:"strategy"`
	Resources   []any    `json:"resources"`
}

// RollbackBody is json_body of ARGOCD_ROLLBACK_APP (default {"prune": true}): id is the
// history entry to go back to (0: the one before the current).
type RollbackBody struct {
	ID     int64 `json:"id"`
	Prune  *bool `json:"prune"`
	DryRun bool  `json:"dryRun"`
}

// Plan sets the Application's operation field, as argocd-server does for a sync or a
// rollback; the application controller runs the operation.
func (i Integration) Plan(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) ([]crd.Change, error) {
	ref, err := i.Target(req)
	if err != nil {
		return nil, err
	}
	u, err := crd.Fetch(ctx, c, Kind, ref)
	if err != nil {
		return nil, err
	}
	if _, running, _ := unstructured.NestedMap(u.Object, "operation"); running {
		return nil, crd.Errorf(http.StatusConflict, "another operation is already in progress on Application %s/%s", u.GetNamespace(), u.GetName())
	}
	var sync map[string]any
	switch req.GetQueryType() {
	case cloudv1.DatadogQueryType_ARGOCD_SYNC_APP:
		var b SyncBody
		if err := crd.DecodeBody(req.GetJsonBody(), &b); err != nil {
			return nil, err
		}
		sync = map[string]any{"prune": b.Prune, "dryRun": b.DryRun}
		if b.Revision != "" {
			sync["revision"] = b.Revision
		}
		if len(b.SyncOptions) > 0 {
			opts := make([]any, len(b.SyncOptions))
			for i, o := range b.SyncOptions {
				opts[i] = o
			}
			sync["syncOptions"] = opts
		}
		if b.Strategy != nil {
			sync["syncStrategy"] = jsonValue(b.Strategy)
		}
		if len(b.Resources) > 0 {
			sync["resources"] = jsonValue(b.Resources)
		}
	case cloudv1.DatadogQueryType_ARGOCD_ROLLBACK_APP:
		b := RollbackBody{}
		if err := crd.DecodeBody(req.GetJsonBody(), &b); err != nil {
			return nil, err
		}
		prune := b.Prune == nil || *b.Prune
		if _, auto, _ := unstructured.NestedMap(u.Object, "spec", "syncPolicy", "automated"); auto {
			return nil, crd.Errorf(http.StatusBadRequest, "rollback cannot be initiated when auto-sync is enabled on Application %s/%s", u.GetNamespace(), u.GetName())
		}
		h, err := historyEntry(u, b.ID)
		if err != nil {
			return nil, err
		}
		sync = map[string]any{"prune": prune, "dryRun": b.DryRun}
		for _, f := range []string{"revision", "source", "revisions", "sources"} {
			if v, ok := h[f]; ok {
				sync[f] = v
			}
		}
	default:
		return nil, crd.Errorf(http.StatusBadRequest, "%s is not an Argo CD write", req.GetQueryType())
	}
	op := map[string]any{"initiatedBy": map[string]any{"username": InitiatedBy}, "sync": sync}
	return []crd.Change{crd.Patch(u, "", crd.Set{Path: []string{"operation"}, Value: op})}, nil
}

// historyEntry finds the deployment history entry id (0: the one before the last).
func historyEntry(u *unstructured.Unstructured, id int64) (map[string]any, error) {
	hist, _, _ := unstructured.NestedSlice(u.Object, "status", "history")
	if id == 0 {
		if len(hist) < 2 {
			return nil, crd.Errorf(http.StatusBadRequest, "Application %s/%s has no earlier deployment to roll back to", u.GetNamespace(), u.GetName())
		}
		h, _ := hist[len(hist)-2].(map[string]any)
		return h, nil
	}
	for _, e := range hist {
		if h, ok := e.(map[string]any); ok && crd.Int(h, "id") == id {
			return h, nil
		}
	}
	return nil, crd.Errorf(http.StatusNotFound, "Application %s/%s has no history entry %d", u.GetNamespace(), u.GetName(), id)
}

// jsonValue turns decoded JSON (json.Number from DecodeBody) into values an unstructured
// object holds.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case interface{ Int64() (int64, error) }:
		if n, err := x.Int64(); err == nil {
			return n
		}
		return x.(interface{ String() string }).String()
	}
	return v
}
