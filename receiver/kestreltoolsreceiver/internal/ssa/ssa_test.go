package ssa

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"
)

func obj(replicas int64, rv string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "shop", "resourceVersion": rv, "uid": "u-" + rv,
			"managedFields": []any{map[string]any{"manager": "x"}}, "generation": int64(3), "creationTimestamp": "2026-01-01T00:00:00Z"},
		"spec":   map[string]any{"replicas": replicas},
		"status": map[string]any{"readyReplicas": int64(1)},
	}}
}

func TestDiff(t *testing.T) {
	assert.Empty(t, Diff(obj(1, "1"), obj(1, "2")), "server-owned fields are left out")
	d := Diff(obj(1, "1"), obj(3, "2"))
	assert.Contains(t, d, "--- live\n+++ dry-run\n")
	assert.Contains(t, d, "-  replicas: 1\n+  replicas: 3\n")
	for _, leftOut := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "status", "readyReplicas"} {
		assert.NotContains(t, d, leftOut)
	}
	created := Diff(nil, obj(1, "1"))
	assert.Contains(t, created, "--- live (does not exist)\n")
	assert.Contains(t, created, "+kind: Deployment\n")
}

func TestDescribe(t *testing.T) {
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", field.ErrorList{
		field.Invalid(field.NewPath("spec", "replicas"), -1, "must be greater than or equal to 0")})
	code, msg := Describe(fmt.Errorf("applying: %w", invalid))
	assert.Equal(t, int32(http.StatusUnprocessableEntity), code)
	assert.Contains(t, msg, "causes:\n- spec.replicas: Invalid value: -1: must be greater than or equal to 0")

	code, msg = Describe(manifest.Errorf("bad %s", "yaml"))
	assert.Equal(t, int32(http.StatusBadRequest), code)
	assert.Equal(t, "bad yaml", msg)

	code, _ = Describe(fmt.Errorf("x: %w", context.DeadlineExceeded))
	assert.Equal(t, int32(http.StatusGatewayTimeout), code)

	code, msg = Describe(errors.New("boom"))
	assert.Equal(t, int32(http.StatusInternalServerError), code)
	assert.Equal(t, "boom", msg)

	code, _ = Describe(&apierrors.StatusError{ErrStatus: metav1.Status{Message: "no code"}})
	assert.Equal(t, int32(http.StatusInternalServerError), code)
}
