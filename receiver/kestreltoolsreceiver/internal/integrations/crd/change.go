package crd

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Change is one object a write changes; it becomes a manifest of a ChangeRequest.
type Change struct {
	// Object names the object and holds exactly the fields to set (a JSON merge patch:
	// nil removes a field), or the whole object for Apply.
	Object *unstructured.Unstructured
	// Action is MergePatch (the default), Apply or Delete.
	Action string
	// Subresource is "status" for fields of the status subresource.
	Subresource string
}

// Actions of a Change, as the ChangeRequest names them.
const (
	MergePatch = "MergePatch"
	Apply      = "Apply"
	Delete     = "Delete"
)

// Set is one field of a patch: its path and value (nil removes it).
type Set struct {
	Path  []string
	Value any
}

// Patch is a merge patch of u: its identity (apiVersion, kind, name, namespace) and the
// fields of sets.
func Patch(u *unstructured.Unstructured, subresource string, sets ...Set) Change {
	p := Ident(u)
	for _, s := range sets {
		_ = unstructured.SetNestedField(p.Object, s.Value, s.Path...)
	}
	return Change{Object: p, Action: MergePatch, Subresource: subresource}
}

// Ident is u's identity only: apiVersion, kind, metadata.name and metadata.namespace.
func Ident(u *unstructured.Unstructured) *unstructured.Unstructured {
	p := &unstructured.Unstructured{Object: map[string]any{}}
	p.SetAPIVersion(u.GetAPIVersion())
	p.SetKind(u.GetKind())
	p.SetName(u.GetName())
	if u.GetNamespace() != "" {
		p.SetNamespace(u.GetNamespace())
	}
	return p
}
