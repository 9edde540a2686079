package ssa

import (
	"context"
	"encoding/json"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"
)

// MergePatch sends obj as a JSON merge patch to the object it names (to its subresource
// when one is given), so exactly the fields obj holds change; with dryRun nothing is stored
// and the result carries the diff, status included. Integration writes use it: they set a
// few fields that other managers (the integration's controller, its CLI) also write, where
// server-side apply without force would report conflicts.
func (a *Applier) MergePatch(ctx context.Context, obj *unstructured.Unstructured, subresource string, dryRun bool) Result {
	ri, err := a.Resolve(obj, "")
	if err != nil {
		return failed(obj, err)
	}
	body, err := json.Marshal(obj.Object)
	if err != nil {
		return failed(obj, err)
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var subs []string
	if subresource != "" {
		subs = []string{subresource}
	}
	var live *unstructured.Unstructured
	if dryRun {
		if live, err = ri.Get(ctx, obj.GetName(), metav1.GetOptions{}); err != nil {
			return failed(obj, err)
		}
	}
	out, err := ri.Patch(ctx, obj.GetName(), types.MergePatchType, body, opts, subs...)
	if err != nil {
		return failed(obj, err)
	}
	r := Result{Object: manifest.Name(obj), StatusCode: http.StatusOK}
	if dryRun {
		r.Diff = diff(live, out, true)
	}
	return r
}

// Delete deletes the object obj names; with dryRun nothing is deleted and the result
// carries the diff (the whole object removed).
func (a *Applier) Delete(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) Result {
	ri, err := a.Resolve(obj, "")
	if err != nil {
		return failed(obj, err)
	}
	opts := metav1.DeleteOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	r := Result{Object: manifest.Name(obj), StatusCode: http.StatusOK}
	if dryRun {
		live, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return failed(obj, err)
		}
		r.Diff = diff(live, nil, false)
	}
	if err := ri.Delete(ctx, obj.GetName(), opts); err != nil && (!apierrors.IsNotFound(err) || dryRun) {
		return failed(obj, err)
	}
	return r
}
