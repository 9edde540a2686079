// Package ssa applies objects with server-side apply, as a dry run (dryRun=All, through the
// apiserver's whole admission chain, nothing stored) or for real, under the field manager
// kestrel-operator and never with force: a field another manager owns is a conflict that is
// reported, not overwritten. Objects are resolved to their resource through a RESTMapper over
// discovery, so any served kind works, custom resources and cluster-scoped kinds included.
package ssa // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/ssa"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"
)

// FieldManager owns the fields the operator applies.
const FieldManager = "kestrel-operator"

// maxDiffLines bounds one diff; the rest is summarised.
const maxDiffLines = 2000

// Applier applies objects as one Kubernetes identity.
type Applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// New returns an applier for the client configuration (its identity decides what may be
// applied; a dry run is authorized like the write it simulates).
func New(rc *rest.Config) (*Applier, error) {
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &Applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// Result is the outcome for one object.
type Result struct {
	// Object names the object ("<apiVersion> <Kind> <namespace>/<name>").
	Object string
	// StatusCode is 200 when applied (or valid), else the API's code (400 for a manifest the
	// operator cannot use, 500 when the API gave none).
	StatusCode int32
	// Message is the error with the API's field-level causes; empty on success.
	Message string
	// Diff is the unified diff from the live object to the result (dry run only).
	Diff string
}

// OK reports success.
func (r Result) OK() bool { return r.StatusCode == http.StatusOK }

// Resolve finds obj's resource and fills in its namespace: namespaced objects without one
// get ns, and a namespace on a cluster-scoped object is an error.
func (a *Applier) Resolve(obj *unstructured.Unstructured, ns string) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		// A CRD installed since the last lookup: discovery is read again once.
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, manifest.Errorf("kind %q of apiVersion %q is not served by this cluster (unknown kind, or its CRD is not installed)", gvk.Kind, obj.GetAPIVersion())
		}
		return nil, fmt.Errorf("resolving %s: %w", gvk, err)
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		if obj.GetNamespace() != "" {
			return nil, manifest.Errorf("%s is cluster-scoped and cannot have metadata.namespace %q", gvk.Kind, obj.GetNamespace())
		}
		return a.dyn.Resource(m.Resource), nil
	}
	if obj.GetNamespace() == "" {
		if ns == "" {
			return nil, manifest.Errorf("%s %s has no metadata.namespace and the request names none", gvk.Kind, obj.GetName())
		}
		obj.SetNamespace(ns)
	}
	return a.dyn.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
}

// DryRun applies obj with dryRun=All and diffs the live object against the result. Like
// Apply, it fills in obj's namespace (see Resolve).
func (a *Applier) DryRun(ctx context.Context, obj *unstructured.Unstructured, ns string) Result {
	return a.apply(ctx, obj, ns, true)
}

// Apply applies obj for real.
func (a *Applier) Apply(ctx context.Context, obj *unstructured.Unstructured, ns string) Result {
	return a.apply(ctx, obj, ns, false)
}

func (a *Applier) apply(ctx context.Context, obj *unstructured.Unstructured, ns string, dryRun bool) Result {
	ri, err := a.Resolve(obj, ns)
	if err != nil {
		return failed(obj, err)
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Apply(ctx, obj.GetName(), obj, opts)
	if err != nil {
		return failed(obj, err)
	}
	r := Result{Object: manifest.Name(obj), StatusCode: http.StatusOK}
	if dryRun {
		live, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			live = nil
		case err != nil:
			r.Diff = fmt.Sprintf("(no diff: reading the live object failed: %v)\n", err)
			return r
		}
		r.Diff = Diff(live, out)
	}
	return r
}

func failed(obj *unstructured.Unstructured, err error) Result {
	code, msg := Describe(err)
	return Result{Object: manifest.Name(obj), StatusCode: code, Message: msg}
}

// Describe turns an error into a status code and a message with the API's field-level
// causes.
func Describe(err error) (int32, string) {
	var me *manifest.Error
	if errors.As(err, &me) {
		return http.StatusBadRequest, me.Error()
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		code := s.Code
		if code == 0 {
			code = http.StatusInternalServerError
		}
		var b strings.Builder
		b.WriteString(s.Message)
		if d := s.Details; d != nil && len(d.Causes) > 0 {
			b.WriteString("\ncauses:")
			for _, c := range d.Causes {
				fmt.Fprintf(&b, "\n- %s: %s", c.Field, c.Message)
			}
		}
		return code, b.String()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout, "timed out: " + err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

// Diff is a unified diff from live (nil: the object does not exist yet) to result, both
// without the fields that change on every write or belong to the server (managedFields,
// resourceVersion, uid, generation, creationTimestamp, status).
func Diff(live, result *unstructured.Unstructured) string {
	return diff(live, result, false)
}

// diff is Diff, with the status kept when withStatus is set.
func diff(live, result *unstructured.Unstructured, withStatus bool) string {
	a, b := render(live, withStatus), render(result, withStatus)
	if a == b {
		return ""
	}
	from, to := "live", "dry-run"
	if result == nil {
		to = "dry-run (deleted)"
	}
	if live == nil {
		from = "live (does not exist)"
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b), FromFile: from, ToFile: to, Context: 3,
	})
	if err != nil {
		return "(no diff: " + err.Error() + ")\n"
	}
	lines := strings.SplitAfter(d, "\n")
	if len(lines) > maxDiffLines {
		d = strings.Join(lines[:maxDiffLines], "") + fmt.Sprintf("… (%d more lines)\n", len(lines)-maxDiffLines)
	}
	return d
}

func render(obj *unstructured.Unstructured, withStatus bool) string {
	if obj == nil {
		return ""
	}
	c := obj.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	if !withStatus {
		unstructured.RemoveNestedField(c.Object, "status")
	}
	b, err := yaml.Marshal(c.Object)
	if err != nil {
		return fmt.Sprintf("(cannot render: %v)\n", err)
	}
	return string(b)
}
