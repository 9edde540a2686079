// Package flux reads Flux objects (Kustomization, HelmRelease and the source kinds) for
// Kestrel Cloud: the status of one object, lists and an object's events, as JSON summaries.
package flux // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/flux"

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// Name is the integration's name in configuration, messages and the audit.
const Name = "flux"

// Kinds are the Flux kinds, each with its versions, preferred first (the one table the
// aliases, lists and detection read).
var Kinds = []crd.Kind{
	{Group: "kustomize.toolkit.fluxcd.io", Resource: "kustomizations", Kind: "Kustomization", Versions: []string{"v1", "v1beta2"}},
	{Group: "helm.toolkit.fluxcd.io", Resource: "helmreleases", Kind: "HelmRelease", Versions: []string{"v2", "v2beta2", "v2beta1"}},
	{Group: "source.toolkit.fluxcd.io", Resource: "gitrepositories", Kind: "GitRepository", Versions: []string{"v1", "v1beta2"}},
	{Group: "source.toolkit.fluxcd.io", Resource: "helmrepositories", Kind: "HelmRepository", Versions: []string{"v1", "v1beta2"}},
	{Group: "source.toolkit.fluxcd.io", Resource: "ocirepositories", Kind: "OCIRepository", Versions: []string{"v1", "v1beta2"}},
	{Group: "source.toolkit.fluxcd.io", Resource: "helmcharts", Kind: "HelmChart", Versions: []string{"v1", "v1beta2"}},
	{Group: "source.toolkit.fluxcd.io", Resource: "buckets", Kind: "Bucket", Versions: []string{"v1", "v1beta2"}},
}

// aliases are the short names accepted besides the kind and its plural (any case).
var aliases = map[string]string{
	"ks": "Kustomization", "hr": "HelmRelease", "gitrepo": "GitRepository", "helmrepo": "HelmRepository",
	"ocirepo": "OCIRepository", "hc": "HelmChart",
}

// KindOf resolves a kind name, plural or alias, in any case.
func KindOf(s string) (crd.Kind, error) {
	l := strings.ToLower(s)
	if k, ok := aliases[l]; ok {
		l = k
	}
	for _, k := range Kinds {
		if strings.EqualFold(l, k.Kind) || l == k.Resource {
			return k, nil
		}
	}
	var names []string
	for _, k := range Kinds {
		names = append(names, k.Kind)
	}
	return crd.Kind{}, crd.Errorf(http.StatusBadRequest, "unknown Flux kind %q (one of %s, their plurals, or ks, hr, gitrepo, helmrepo, ocirepo, hc)", s, strings.Join(names, ", "))
}

// Body is json_body for the Flux types.
type Body struct {
	Kind           string `json:"kind"`
	Namespace      string `json:"namespace"`
	Name           string `json:"name"`
	WithSource     bool   `json:"with_source"`
	TimeoutSeconds int64  `json:"timeout_seconds"`
}

// Target is the object a request names: json_body's fields win over the filter
// ("kind/ns/name", "kind/name" or "name"); the kind defaults to Kustomization.
func Target(req *cloudv1.DatadogQueryRequest) (crd.Kind, crd.Ref, Body, error) {
	var b Body
	if err := crd.DecodeBody(req.GetJsonBody(), &b); err != nil {
		return crd.Kind{}, crd.Ref{}, b, err
	}
	kind, ref := b.Kind, crd.Ref{Namespace: b.Namespace, Name: b.Name}
	if ref.Name == "" {
		parts := strings.Split(req.GetFilter(), "/")
		switch len(parts) {
		case 1:
			ref.Name = parts[0]
		case 2:
			kind, ref.Name = parts[0], parts[1]
		case 3:
			kind, ref.Namespace, ref.Name = parts[0], parts[1], parts[2]
		default:
			return crd.Kind{}, ref, b, crd.Errorf(http.StatusBadRequest, "filter %q: want kind/namespace/name, kind/name or name", req.GetFilter())
		}
	}
	if kind == "" {
		kind = "Kustomization"
	}
	k, err := KindOf(kind)
	if err != nil {
		return k, ref, b, err
	}
	return k, ref, b, ref.Check()
}

// Integration serves the Flux reads.
type Integration struct{}

func (Integration) Name() string { return Name }

// Available checks that at least one Flux kind is served.
func (Integration) Available(ctx context.Context, c crd.Clients) error {
	ok, err := crd.Installed(ctx, c.Discovery, Kinds...)
	if err != nil {
		return err
	}
	if !ok {
		return crd.Errorf(http.StatusServiceUnavailable, "Flux is not installed in this cluster (none of its CRDs is served)")
	}
	return nil
}

// Serve answers a read: 200 and its JSON.
func (Integration) Serve(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) (int, []byte, error) {
	b, err := Integration{}.read(ctx, c, req)
	return http.StatusOK, b, err
}

// read answers FLUX_GET_STATUS, FLUX_LIST and FLUX_GET_EVENTS.
func (Integration) read(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) ([]byte, error) {
	switch req.GetQueryType() {
	case cloudv1.DatadogQueryType_FLUX_GET_STATUS, cloudv1.DatadogQueryType_FLUX_GET_EVENTS:
		k, ref, _, err := Target(req)
		if err != nil {
			return nil, err
		}
		u, err := crd.Fetch(ctx, c, k, ref)
		if err != nil {
			return nil, err
		}
		if req.GetQueryType() == cloudv1.DatadogQueryType_FLUX_GET_STATUS {
			return json.Marshal(Summarize(u))
		}
		return events(ctx, c, u, int(req.GetMaxResults()))
	case cloudv1.DatadogQueryType_FLUX_LIST:
		return list(ctx, c, req)
	}
	return nil, crd.Errorf(http.StatusBadRequest, "%s is not a Flux read", req.GetQueryType())
}

// List is the answer to FLUX_LIST.
type List struct {
	Resources []Summary `json:"resources"`
	Count     int       `json:"count"`
}

// list lists one kind (json_body kind, else the filter "kind" or "kind/namespace") or,
// without a kind, every installed Flux kind.
func list(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) ([]byte, error) {
	var b Body
	if err := crd.DecodeBody(req.GetJsonBody(), &b); err != nil {
		return nil, err
	}
	kind, ns := b.Kind, b.Namespace
	if f := req.GetFilter(); kind == "" && f != "" {
		var rest string
		kind, rest, _ = strings.Cut(f, "/")
		if ns == "" {
			ns = rest
		}
	}
	if err := crd.CheckNamespace(ns); err != nil {
		return nil, err
	}
	kinds := Kinds
	if kind != "" {
		k, err := KindOf(kind)
		if err != nil {
			return nil, err
		}
		kinds = []crd.Kind{k}
	}
	out := List{Resources: []Summary{}}
	limit := int(req.GetMaxResults())
	for _, k := range kinds {
		gvr, err := crd.Resolve(ctx, c.Discovery, k)
		if crd.Code(err) == http.StatusServiceUnavailable && kind == "" {
			continue // a kind this Flux does not install
		}
		if err != nil {
			return nil, err
		}
		items, err := crd.List(ctx, c.Dynamic, gvr, ns, 0)
		if err != nil {
			return nil, err
		}
		for i := range items {
			out.Resources = append(out.Resources, Summarize(&items[i]))
		}
	}
	if limit > 0 && len(out.Resources) > limit {
		out.Resources = out.Resources[:limit]
	}
	out.Count = len(out.Resources)
	return json.Marshal(out)
}

// SourceRef is what a Kustomization or HelmRelease deploys from.
type SourceRef struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// Summary is one Flux object as the cloud reads it.
type Summary struct {
	Kind                   string          `json:"kind"`
	APIVersion             string          `json:"api_version"`
	Name                   string          `json:"name"`
	Namespace              string          `json:"namespace"`
	Ready                  string          `json:"ready"`
	Reason                 string          `json:"reason,omitempty"`
	Message                string          `json:"message,omitempty"`
	Suspended              bool            `json:"suspended"`
	Interval               string          `json:"interval,omitempty"`
	Generation             int64           `json:"generation"`
	ObservedGeneration     int64           `json:"observed_generation"`
	LastAppliedRevision    string          `json:"last_applied_revision,omitempty"`
	LastAttemptedRevision  string          `json:"last_attempted_revision,omitempty"`
	ArtifactRevision       string          `json:"artifact_revision,omitempty"`
	LastHandledReconcileAt string          `json:"last_handled_reconcile_at,omitempty"`
	SourceRef              *SourceRef      `json:"source_ref,omitempty"`
	Conditions             []crd.Condition `json:"conditions,omitempty"`
}

// Summarize builds the summary of one Flux object.
func Summarize(u *unstructured.Unstructured) Summary {
	o := u.Object
	conds := crd.Conditions(u)
	ready, reason, msg := crd.Ready(conds)
	s := Summary{Kind: u.GetKind(), APIVersion: u.GetAPIVersion(), Name: u.GetName(), Namespace: u.GetNamespace(),
		Ready: ready, Reason: reason, Message: msg, Suspended: crd.Bool(o, "spec", "suspend"), Interval: crd.Str(o, "spec", "interval"),
		Generation: u.GetGeneration(), ObservedGeneration: crd.Int(o, "status", "observedGeneration"),
		LastAppliedRevision: crd.Str(o, "status", "lastAppliedRevision"), LastAttemptedRevision: crd.Str(o, "status", "lastAttemptedRevision"),
		ArtifactRevision: crd.Str(o, "status", "artifact", "revision"), LastHandledReconcileAt: crd.Str(o, "status", "lastHandledReconcileAt"),
		Conditions: conds}
	ref := crd.Map(o, "spec", "sourceRef")
	if ref == nil {
		ref = crd.Map(o, "spec", "chart", "spec", "sourceRef") // HelmRelease
	}
	if ref != nil {
		s.SourceRef = &SourceRef{Kind: crd.Str(ref, "kind"), Name: crd.Str(ref, "name"), Namespace: crd.Str(ref, "namespace")}
	}
	return s
}

// Event is one Kubernetes Event about a Flux object.
type Event struct {
	Type           string `json:"type"`
	Reason         string `json:"reason"`
	Message        string `json:"message"`
	Count          int64  `json:"count"`
	FirstTimestamp string `json:"first_timestamp,omitempty"`
	LastTimestamp  string `json:"last_timestamp,omitempty"`
	Source         string `json:"source,omitempty"`
}

// Events is the answer to FLUX_GET_EVENTS.
type Events struct {
	Kind      string  `json:"kind"`
	Name      string  `json:"name"`
	Namespace string  `json:"namespace"`
	Events    []Event `json:"events"`
	Count     int     `json:"count"`
}

var eventsGVR = schema.GroupVersionResource{Version: "v1", Resource: "events"}

// events lists the Events about u, newest first.
func events(ctx context.Context, c crd.Clients, u *unstructured.Unstructured, limit int) ([]byte, error) {
	sel := "involvedObject.kind=" + u.GetKind() + ",involvedObject.name=" + u.GetName()
	if len(validation.IsDNS1123Subdomain(u.GetName())) > 0 {
		return nil, crd.Errorf(http.StatusBadRequest, "name %q cannot be selected", u.GetName())
	}
	list, err := c.Dynamic.Resource(eventsGVR).Namespace(u.GetNamespace()).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, err
	}
	out := Events{Kind: u.GetKind(), Name: u.GetName(), Namespace: u.GetNamespace(), Events: []Event{}}
	for _, e := range list.Items {
		o := e.Object
		last := crd.Str(o, "lastTimestamp")
		if last == "" {
			last = crd.Str(o, "eventTime")
		}
		out.Events = append(out.Events, Event{Type: crd.Str(o, "type"), Reason: crd.Str(o, "reason"), Message: crd.Str(o, "message"),
			Count: crd.Int(o, "count"), FirstTimestamp: crd.Str(o, "firstTimestamp"), LastTimestamp: last,
			Source: crd.Str(o, "source", "component")})
	}
	slices.SortStableFunc(out.Events, func(a, b Event) int { return cmp.Compare(b.LastTimestamp, a.LastTimestamp) })
	if limit > 0 && len(out.Events) > limit {
		out.Events = out.Events[:limit]
	}
	out.Count = len(out.Events)
	return json.Marshal(out)
}
