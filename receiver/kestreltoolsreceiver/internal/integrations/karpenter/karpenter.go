// Package karpenter reads Karpenter's NodePools and NodeClaims (karpenter.sh/v1, falling
// back to v1beta1) for Kestrel Cloud, as JSON summaries.
package karpenter // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/karpenter"

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// Name is the integration's name in configuration, messages and the audit.
const Name = "karpenter"

// The Karpenter kinds, v1 preferred.
var (
	NodePool  = crd.Kind{Group: "karpenter.sh", Resource: "nodepools", Kind: "NodePool", Versions: []string{"v1", "v1beta1"}}
	NodeClaim = crd.Kind{Group: "karpenter.sh", Resource: "nodeclaims", Kind: "NodeClaim", Versions: []string{"v1", "v1beta1"}}
)

// NodePoolLabel is the label Karpenter puts on a NodeClaim for its NodePool.
const NodePoolLabel = "karpenter.sh/nodepool"

// Body is json_body for the Karpenter types.
type Body struct {
	Name                string         `json:"name"`
	NodePool            string         `json:"nodepool"`
	CPULimit            string         `json:"cpu_limit"`
	MemoryLimit         string         `json:"memory_limit"`
	ConsolidationPolicy string         `json:"consolidation_policy"`
	ConsolidateAfter    string         `json:"consolidate_after"`
	NodePoolSpec        map[string]any `json:"nodepool_spec"`
}

// name is json_body's name (or nodepool), else the filter; checked as an object name.
func name(req *cloudv1.DatadogQueryRequest, b Body) (string, error) {
	n := cmpOr(b.Name, b.NodePool, req.GetFilter())
	if n == "" {
		return "", crd.Errorf(http.StatusBadRequest, "no name given (filter or json_body name)")
	}
	if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
		return "", crd.Errorf(http.StatusBadRequest, "name %q: %s", n, strings.Join(msgs, "; "))
	}
	return n, nil
}

func cmpOr(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// Integration serves the Karpenter reads.
type Integration struct{}

func (Integration) Name() string { return Name }

// Available checks that the NodePool CRD is served.
func (Integration) Available(ctx context.Context, c crd.Clients) error {
	_, err := crd.Resolve(ctx, c.Discovery, NodePool)
	return err
}

// Serve answers a read: 200 and its JSON.
func (Integration) Serve(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) (int, []byte, error) {
	b, err := Integration{}.read(ctx, c, req)
	return http.StatusOK, b, err
}

// read answers KARPENTER_LIST_NODEPOOLS, KARPENTER_GET_NODEPOOL_STATUS and
// KARPENTER_LIST_NODECLAIMS.
func (Integration) read(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) ([]byte, error) {
	var b Body
	if err := crd.DecodeBody(req.GetJsonBody(), &b); err != nil {
		return nil, err
	}
	limit := int(req.GetMaxResults())
	switch req.GetQueryType() {
	case cloudv1.DatadogQueryType_KARPENTER_LIST_NODEPOOLS:
		gvr, err := crd.Resolve(ctx, c.Discovery, NodePool)
		if err != nil {
			return nil, err
		}
		items, err := crd.List(ctx, c.Dynamic, gvr, "", limit)
		if err != nil {
			return nil, err
		}
		out := NodePools{NodePools: []NodePoolSummary{}}
		for i := range items {
			out.NodePools = append(out.NodePools, SummarizeNodePool(&items[i]))
		}
		out.Count = len(out.NodePools)
		return json.Marshal(out)
	case cloudv1.DatadogQueryType_KARPENTER_GET_NODEPOOL_STATUS:
		n, err := name(req, b)
		if err != nil {
			return nil, err
		}
		u, _, err := get(ctx, c, NodePool, n)
		if err != nil {
			return nil, err
		}
		s := SummarizeNodePool(u)
		claims, err := nodeClaims(ctx, c, n, 0)
		if crd.Code(err) == http.StatusServiceUnavailable {
			err = nil
		}
		if err != nil {
			return nil, err
		}
		s.NodeClaims = &claims
		return json.Marshal(s)
	case cloudv1.DatadogQueryType_KARPENTER_LIST_NODECLAIMS:
		pool := cmpOr(b.NodePool, req.GetFilter())
		if pool != "" && len(validation.IsValidLabelValue(pool)) > 0 {
			return nil, crd.Errorf(http.StatusBadRequest, "nodepool %q: %s", pool, strings.Join(validation.IsValidLabelValue(pool), "; "))
		}
		claims, err := nodeClaims(ctx, c, pool, limit)
		if err != nil {
			return nil, err
		}
		return json.Marshal(claims)
	}
	return nil, crd.Errorf(http.StatusBadRequest, "%s is not a Karpenter read", req.GetQueryType())
}

// NodePools is the answer to KARPENTER_LIST_NODEPOOLS.
type NodePools struct {
	NodePools []NodePoolSummary `json:"nodepools"`
	Count     int               `json:"count"`
}

// NodeClaims is the answer to KARPENTER_LIST_NODECLAIMS.
type NodeClaims struct {
	NodeClaims []NodeClaimSummary `json:"nodeclaims"`
	Count      int                `json:"count"`
}

// nodeClaims lists the NodeClaims, of one NodePool when pool is set.
// get reads the cluster-scoped object of kind k named n (NodePools and NodeClaims have no
// namespace, so crd.Fetch's search across namespaces does not apply), and the resource it
// was read at.
func get(ctx context.Context, c crd.Clients, k crd.Kind, n string) (*unstructured.Unstructured, schema.GroupVersionResource, error) {
	gvr, err := crd.Resolve(ctx, c.Discovery, k)
	if err != nil {
		return nil, gvr, err
	}
	u, err := c.Dynamic.Resource(gvr).Get(ctx, n, metav1.GetOptions{})
	return u, gvr, err
}

func nodeClaims(ctx context.Context, c crd.Clients, pool string, limit int) (NodeClaims, error) {
	out := NodeClaims{NodeClaims: []NodeClaimSummary{}}
	gvr, err := crd.Resolve(ctx, c.Discovery, NodeClaim)
	if err != nil {
		return out, err
	}
	opts := metav1.ListOptions{Limit: int64(limit)}
	if pool != "" {
		opts.LabelSelector = NodePoolLabel + "=" + pool
	}
	list, err := c.Dynamic.Resource(gvr).List(ctx, opts)
	if err != nil {
		return out, err
	}
	for i := range list.Items {
		out.NodeClaims = append(out.NodeClaims, SummarizeNodeClaim(&list.Items[i]))
	}
	out.Count = len(out.NodeClaims)
	return out, nil
}

// NodeClassRef names a NodePool's cloud-provider node class.
type NodeClassRef struct {
	Group string `json:"group,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Name  string `json:"name"`
}

// NodePoolSummary is one NodePool as the cloud reads it.
type NodePoolSummary struct {
	Name                string            `json:"name"`
	APIVersion          string            `json:"api_version"`
	Ready               string            `json:"ready"`
	Reason              string            `json:"reason,omitempty"`
	Message             string            `json:"message,omitempty"`
	Weight              int64             `json:"weight,omitempty"`
	Limits              map[string]string `json:"limits"`
	Resources           map[string]string `json:"resources"`
	NodeClassRef        *NodeClassRef     `json:"node_class_ref,omitempty"`
	ConsolidationPolicy string            `json:"consolidation_policy,omitempty"`
	ConsolidateAfter    string            `json:"consolidate_after,omitempty"`
	ExpireAfter         string            `json:"expire_after,omitempty"`
	Conditions          []crd.Condition   `json:"conditions,omitempty"`
	NodeClaims          *NodeClaims       `json:"nodeclaims,omitempty"`
	CreatedAt           string            `json:"created_at"`
}

// SummarizeNodePool builds the summary of one NodePool (v1 or v1beta1).
func SummarizeNodePool(u *unstructured.Unstructured) NodePoolSummary {
	o := u.Object
	conds := crd.Conditions(u)
	ready, reason, msg := crd.Ready(conds)
	s := NodePoolSummary{Name: u.GetName(), APIVersion: u.GetAPIVersion(), Ready: ready, Reason: reason, Message: msg,
		Weight: crd.Int(o, "spec", "weight"), Limits: quantities(crd.Map(o, "spec", "limits")), Resources: quantities(crd.Map(o, "status", "resources")),
		ConsolidationPolicy: crd.Str(o, "spec", "disruption", "consolidationPolicy"), ConsolidateAfter: crd.Str(o, "spec", "disruption", "consolidateAfter"),
		// v1 moved expireAfter from the disruption block to the node template.
		ExpireAfter: cmpOr(crd.Str(o, "spec", "template", "spec", "expireAfter"), crd.Str(o, "spec", "disruption", "expireAfter")),
		Conditions:  conds, CreatedAt: u.GetCreationTimestamp().UTC().Format("2006-01-02T15:04:05Z")}
	if ref := crd.Map(o, "spec", "template", "spec", "nodeClassRef"); ref != nil {
		s.NodeClassRef = &NodeClassRef{Group: cmpOr(crd.Str(ref, "group"), crd.Str(ref, "apiVersion")), Kind: crd.Str(ref, "kind"), Name: crd.Str(ref, "name")}
	}
	return s
}

// quantities renders a resource list (values are strings or numbers in the object).
func quantities(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// NodeClaimSummary is one NodeClaim as the cloud reads it.
type NodeClaimSummary struct {
	Name         string            `json:"name"`
	APIVersion   string            `json:"api_version"`
	NodePool     string            `json:"nodepool"`
	NodeName     string            `json:"node_name,omitempty"`
	ProviderID   string            `json:"provider_id,omitempty"`
	InstanceType string            `json:"instance_type,omitempty"`
	CapacityType string            `json:"capacity_type,omitempty"`
	Zone         string            `json:"zone,omitempty"`
	Ready        string            `json:"ready"`
	Launched     string            `json:"launched"`
	Registered   string            `json:"registered"`
	Initialized  string            `json:"initialized"`
	Capacity     map[string]string `json:"capacity"`
	Conditions   []crd.Condition   `json:"conditions,omitempty"`
	CreatedAt    string            `json:"created_at"`
}

// SummarizeNodeClaim builds the summary of one NodeClaim.
func SummarizeNodeClaim(u *unstructured.Unstructured) NodeClaimSummary {
	o := u.Object
	conds := crd.Conditions(u)
	status := func(t string) string {
		for _, c := range conds {
			if c.Type == t {
				return c.Status
			}
		}
		return "Unknown"
	}
	l := u.GetLabels()
	return NodeClaimSummary{Name: u.GetName(), APIVersion: u.GetAPIVersion(), NodePool: l[NodePoolLabel],
		NodeName: crd.Str(o, "status", "nodeName"), ProviderID: crd.Str(o, "status", "providerID"),
		InstanceType: l["node.kubernetes.io/instance-type"], CapacityType: l["karpenter.sh/capacity-type"], Zone: l["topology.kubernetes.io/zone"],
		Ready: status("Ready"), Launched: status("Launched"), Registered: status("Registered"), Initialized: status("Initialized"),
		Capacity: quantities(crd.Map(o, "status", "capacity")), Conditions: conds, CreatedAt: u.GetCreationTimestamp().UTC().Format("2006-01-02T15:04:05Z")}
}
