// Package crd holds what the CRD-backed integrations (Argo CD, Argo Rollouts, Flux,
// Karpenter) share: finding a kind's served version by discovery, with fallbacks, at the
// moment of each request (so a CRD installed or removed while the collector runs is seen
// at once); the filter forms; and the errors that carry a status code for the answer.
package crd // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// Error is a failure with the status code the answer carries.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error.
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Code is the status code for err: its own, the apiserver's, else 500.
func Code(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		if c := int(st.Status().Code); c != 0 {
			return c
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// Kind is a custom resource and the versions to try, preferred first.
type Kind struct {
	Group    string
	Resource string
	// Kind is the resource's kind, for messages.
	Kind     string
	Versions []string
}

func (k Kind) String() string { return k.Resource + "." + k.Group }

// Clients are what one request reads with, bound to its context and identity.
type Clients struct {
	Discovery discovery.DiscoveryInterface
	Dynamic   dynamic.Interface
}

// Resolve returns the first of k's versions the apiserver serves k in, or an *Error with
// 503 when none is served (the CRD is not installed).
func Resolve(ctx context.Context, d discovery.DiscoveryInterface, k Kind) (schema.GroupVersionResource, error) {
	for _, v := range k.Versions {
		if err := ctx.Err(); err != nil {
			return schema.GroupVersionResource{}, err
		}
		list, err := d.ServerResourcesForGroupVersion(k.Group + "/" + v)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return schema.GroupVersionResource{}, fmt.Errorf("discovering %s/%s: %w", k.Group, v, err)
		}
		if slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == k.Resource }) {
			return schema.GroupVersionResource{Group: k.Group, Version: v, Resource: k.Resource}, nil
		}
	}
	return schema.GroupVersionResource{}, Errorf(http.StatusServiceUnavailable, "%s is not installed in this cluster (no CRD %s served in %s)",
		k.Kind, k, strings.Join(k.Versions, ", "))
}

// Installed reports whether any of kinds is served.
func Installed(ctx context.Context, d discovery.DiscoveryInterface, kinds ...Kind) (bool, error) {
	for _, k := range kinds {
		_, err := Resolve(ctx, d, k)
		if err == nil {
			return true, nil
		}
		if Code(err) != http.StatusServiceUnavailable {
			return false, err
		}
	}
	return false, nil
}

// Ref names one object: Namespace is empty for cluster-scoped kinds, or when the request
// named no namespace (then the object is looked up in all namespaces).
type Ref struct {
	Namespace string
	Name      string
}

// ParseRef reads "ns/name" or "name".
func ParseRef(s string) (Ref, error) {
	var r Ref
	parts := strings.Split(s, "/")
	switch len(parts) {
	case 1:
		r.Name = parts[0]
	case 2:
		r.Namespace, r.Name = parts[0], parts[1]
		if r.Namespace == "" {
			return r, Errorf(http.StatusBadRequest, "filter %q: empty namespace", s)
		}
	default:
		return r, Errorf(http.StatusBadRequest, "filter %q: want name or namespace/name", s)
	}
	return r, r.Check()
}

// Check validates the names.
func (r Ref) Check() error {
	if r.Name == "" {
		return Errorf(http.StatusBadRequest, "no object name given (filter or json_body name)")
	}
	if msgs := validation.IsDNS1123Subdomain(r.Name); len(msgs) > 0 {
		return Errorf(http.StatusBadRequest, "name %q: %s", r.Name, strings.Join(msgs, "; "))
	}
	return CheckNamespace(r.Namespace)
}

// CheckNamespace validates a namespace name ("" is all namespaces).
func CheckNamespace(ns string) error {
	if ns == "" {
		return nil
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return Errorf(http.StatusBadRequest, "namespace %q: %s", ns, strings.Join(msgs, "; "))
	}
	return nil
}

// Fetch reads the object r names in the served version of k.
func Fetch(ctx context.Context, c Clients, k Kind, r Ref) (*unstructured.Unstructured, error) {
	gvr, err := Resolve(ctx, c.Discovery, k)
	if err != nil {
		return nil, err
	}
	return Get(ctx, c.Dynamic, gvr, k.Kind, r)
}

// Get reads the object r names. Without a namespace the name is looked up in every
// namespace the identity may list; more than one match is ambiguous.
func Get(ctx context.Context, c dynamic.Interface, gvr schema.GroupVersionResource, kind string, r Ref) (*unstructured.Unstructured, error) {
	if r.Namespace != "" {
		return c.Resource(gvr).Namespace(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	}
	list, err := c.Resource(gvr).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + r.Name})
	if err != nil {
		return nil, err
	}
	switch len(list.Items) {
	case 0:
		return nil, Errorf(http.StatusNotFound, "%s %q not found in any namespace", kind, r.Name)
	case 1:
		return &list.Items[0], nil
	}
	var nss []string
	for _, it := range list.Items {
		nss = append(nss, it.GetNamespace())
	}
	return nil, Errorf(http.StatusBadRequest, "%s %q exists in several namespaces (%s): name one as namespace/name", kind, r.Name, strings.Join(nss, ", "))
}

// List lists the objects of gvr in ns ("" for all namespaces), at most limit (0: all).
func List(ctx context.Context, c dynamic.Interface, gvr schema.GroupVersionResource, ns string, limit int) ([]unstructured.Unstructured, error) {
	opts := metav1.ListOptions{}
	if limit > 0 {
		opts.Limit = int64(limit)
	}
	var list *unstructured.UnstructuredList
	var err error
	if ns == "" {
		list, err = c.Resource(gvr).List(ctx, opts)
	} else {
		list, err = c.Resource(gvr).Namespace(ns).List(ctx, opts)
	}
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// Condition is one status condition, as the summaries show it.
type Condition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
	LastTransitionTime string `json:"last_transition_time,omitempty"`
}

// Conditions reads status.conditions.
func Conditions(u *unstructured.Unstructured) []Condition {
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var out []Condition
	for _, c := range raw {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		out = append(out, Condition{Type: Str(m, "type"), Status: Str(m, "status"), Reason: Str(m, "reason"),
			Message: Str(m, "message"), LastTransitionTime: Str(m, "lastTransitionTime")})
	}
	return out
}

// Ready is the status of the Ready condition ("Unknown" without one).
func Ready(conds []Condition) (status, reason, message string) {
	for _, c := range conds {
		if c.Type == "Ready" {
			return c.Status, c.Reason, c.Message
		}
	}
	return "Unknown", "", ""
}

// Str reads a string field at path (empty when absent or not a string).
func Str(m map[string]any, path ...string) string {
	s, _, _ := unstructured.NestedString(m, path...)
	return s
}

// Int reads an integer field at path (0 when absent).
func Int(m map[string]any, path ...string) int64 {
	v, _, _ := unstructured.NestedFieldNoCopy(m, path...)
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

// Bool reads a boolean field at path (false when absent).
func Bool(m map[string]any, path ...string) bool {
	b, _, _ := unstructured.NestedBool(m, path...)
	return b
}

// Map reads an object field at path (nil when absent).
func Map(m map[string]any, path ...string) map[string]any {
	v, _, _ := unstructured.NestedMap(m, path...)
	return v
}
