package karpenter

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// None removes a limit.
const None = "none"

// policies are the consolidation policies each version accepts.
var policies = map[string][]string{
	"v1":      {"WhenEmpty", "WhenEmptyOrUnderutilized"},
	"v1beta1": {"WhenEmpty", "WhenUnderutilized"},
}

// Plan turns a Karpenter write into the change it makes.
func (Integration) Plan(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) ([]crd.Change, error) {
	var b Body
	if err := crd.DecodeBody(req.GetJsonBody(), &b); err != nil {
		return nil, err
	}
	if req.GetQueryType() == cloudv1.DatadogQueryType_KARPENTER_DELETE_NODECLAIM {
		n, err := name(req, Body{Name: b.Name})
		if err != nil {
			return nil, err
		}
		u, _, err := get(ctx, c, NodeClaim, n)
		if err != nil {
			return nil, err
		}
		return []crd.Change{{Object: crd.Ident(u), Action: crd.Delete}}, nil
	}
	n, err := name(req, b)
	if err != nil {
		return nil, err
	}
	if req.GetQueryType() == cloudv1.DatadogQueryType_KARPENTER_APPLY_NODEPOOL {
		if len(b.NodePoolSpec) == 0 {
			return nil, crd.Errorf(http.StatusBadRequest, "json_body nodepool_spec is required: the NodePool's spec")
		}
		gvr, err := crd.Resolve(ctx, c.Discovery, NodePool)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: map[string]any{"spec": b.NodePoolSpec}}
		u.SetAPIVersion(gvr.GroupVersion().String())
		u.SetKind(NodePool.Kind)
		u.SetName(n)
		// Create or update: server-side apply of the spec given, checked by the dry-run.
		return []crd.Change{{Object: u, Action: crd.Apply}}, nil
	}
	u, gvr, err := get(ctx, c, NodePool, n)
	if err != nil {
		return nil, err
	}
	switch req.GetQueryType() {
	case cloudv1.DatadogQueryType_KARPENTER_SCALE_NODEPOOL:
		var sets []crd.Set
		for res, v := range map[string]string{"cpu": b.CPULimit, "memory": b.MemoryLimit} {
			switch {
			case v == "":
				continue
			case strings.EqualFold(v, None):
				sets = append(sets, crd.Set{Path: []string{"spec", "limits", res}})
			default:
				q, err := resource.ParseQuantity(v)
				if err != nil || q.Sign() < 0 {
					return nil, crd.Errorf(http.StatusBadRequest, "%s_limit %q is not a quantity (e.g. 100, 400Gi) or %q", res, v, None)
				}
				sets = append(sets, crd.Set{Path: []string{"spec", "limits", res}, Value: q.String()})
			}
		}
		if len(sets) == 0 {
			return nil, crd.Errorf(http.StatusBadRequest, "json_body sets neither cpu_limit nor memory_limit")
		}
		return []crd.Change{crd.Patch(u, "", sets...)}, nil
	case cloudv1.DatadogQueryType_KARPENTER_SET_DISRUPTION:
		var sets []crd.Set
		if p := b.ConsolidationPolicy; p != "" {
			ok := policies[gvr.Version]
			if !slices.Contains(ok, p) {
				return nil, crd.Errorf(http.StatusBadRequest, "consolidation_policy %q: %s accepts %s", p, gvr.GroupVersion(), strings.Join(ok, ", "))
			}
			sets = append(sets, crd.Set{Path: []string{"spec", "disruption", "consolidationPolicy"}, Value: p})
		}
		if a := b.ConsolidateAfter; a != "" {
			if d, err := time.ParseDuration(a); a != "Never" && (err != nil || d < 0) {
				return nil, crd.Errorf(http.StatusBadRequest, "consolidate_after %q is not a duration (e.g. 30s, 5m) or Never", a)
			}
			sets = append(sets, crd.Set{Path: []string{"spec", "disruption", "consolidateAfter"}, Value: a})
		}
		if len(sets) == 0 {
			return nil, crd.Errorf(http.StatusBadRequest, "json_body sets neither consolidation_policy nor consolidate_after")
		}
		return []crd.Change{crd.Patch(u, "", sets...)}, nil
	}
	return nil, crd.Errorf(http.StatusBadRequest, "%s is not a Karpenter write", req.GetQueryType())
}
