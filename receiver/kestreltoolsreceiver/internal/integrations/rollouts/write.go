package rollouts

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// RevisionAnnotation holds a Rollout's (and its ReplicaSets') revision.
const RevisionAnnotation = "rollout.argoproj.io/revision"

// now is the clock of restartAt (a variable for tests).
var now = time.Now

// Plan turns a Rollouts write into the fields it changes, as the kubectl-argo-rollouts
// plugin patches them: spec on the object, the controller's signals on status.
func (Integration) Plan(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) ([]crd.Change, error) {
	ref, b, err := Target(req)
	if err != nil {
		return nil, err
	}
	u, err := crd.Fetch(ctx, c, Kind, ref)
	if err != nil {
		return nil, err
	}
	spec := func(path string, v any) crd.Set { return crd.Set{Path: []string{"spec", path}, Value: v} }
	status := func(path string, v any) crd.Set { return crd.Set{Path: []string{"status", path}, Value: v} }
	switch req.GetQueryType() {
	case cloudv1.DatadogQueryType_ROLLOUTS_PROMOTE:
		st := []crd.Set{status("pauseConditions", nil)}
		if b.Full {
			st = append(st, status("promoteFull", true))
		}
		return []crd.Change{crd.Patch(u, "", spec("paused", false)), crd.Patch(u, "status", st...)}, nil
	case cloudv1.DatadogQueryType_ROLLOUTS_ABORT:
		return []crd.Change{crd.Patch(u, "status", status("abort", true))}, nil
	case cloudv1.DatadogQueryType_ROLLOUTS_RETRY:
		return []crd.Change{crd.Patch(u, "status", status("abort", false))}, nil
	case cloudv1.DatadogQueryType_ROLLOUTS_PAUSE:
		return []crd.Change{crd.Patch(u, "", spec("paused", true))}, nil
	case cloudv1.DatadogQueryType_ROLLOUTS_RESUME:
		return []crd.Change{crd.Patch(u, "", spec("paused", false))}, nil
	case cloudv1.DatadogQueryType_ROLLOUTS_RESTART:
		return []crd.Change{crd.Patch(u, "", spec("restartAt", now().UTC().Format(time.RFC3339)))}, nil
	case cloudv1.DatadogQueryType_ROLLOUTS_UNDO:
		return undo(ctx, c, u, b.Revision)
	}
	return nil, crd.Errorf(http.StatusBadRequest, "%s is not a Rollouts write", req.GetQueryType())
}

var replicaSets = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}

// undo sets the pod template back to the one of the Rollout's ReplicaSet of revision (0:
// the revision before the current one), replacing the template exactly.
func undo(ctx context.Context, c crd.Clients, u *unstructured.Unstructured, revision int64) ([]crd.Change, error) {
	if revision < 0 {
		return nil, crd.Errorf(http.StatusBadRequest, "revision must not be negative")
	}
	if revision == 0 {
		cur, err := strconv.ParseInt(u.GetAnnotations()[RevisionAnnotation], 10, 64)
		if err != nil || cur < 2 {
			return nil, crd.Errorf(http.StatusBadRequest, "Rollout %s/%s has no previous revision to undo to", u.GetNamespace(), u.GetName())
		}
		revision = cur - 1
	}
	list, err := c.Dynamic.Resource(replicaSets).Namespace(u.GetNamespace()).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, rs := range list.Items {
		owned := false
		for _, o := range rs.GetOwnerReferences() {
			owned = owned || o.UID == u.GetUID()
		}
		if !owned || rs.GetAnnotations()[RevisionAnnotation] != strconv.FormatInt(revision, 10) {
			continue
		}
		target, _, _ := unstructured.NestedMap(rs.Object, "spec", "template")
		// The controller adds the hash label to each ReplicaSet's template; the Rollout's has none.
		unstructured.RemoveNestedField(target, "metadata", "labels", "rollouts-pod-template-hash")
		current, _, _ := unstructured.NestedMap(u.Object, "spec", "template")
		patch, err := templatePatch(current, target)
		if err != nil {
			return nil, err
		}
		return []crd.Change{crd.Patch(u, "", crd.Set{Path: []string{"spec", "template"}, Value: patch})}, nil
	}
	return nil, crd.Errorf(http.StatusNotFound, "Rollout %s/%s has no ReplicaSet of revision %d", u.GetNamespace(), u.GetName(), revision)
}

// templatePatch is the merge patch that turns current into target (fields only in current
// set to null).
func templatePatch(current, target map[string]any) (map[string]any, error) {
	cur, err := json.Marshal(current)
	if err != nil {
		return nil, err
	}
	tgt, err := json.Marshal(target)
	if err != nil {
		return nil, err
	}
	p, err := jsonmergepatch.CreateThreeWayJSONMergePatch(cur, tgt, cur)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(p, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}
