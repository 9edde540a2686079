// Package crd holds the kestrel.ai CustomResourceDefinitions, generated from api/kestrel
// by controller-gen (`make crds`), and the admission policy shipped with them, for tests
// and tools that install them.
package crd // import "github.com/kestrelai/otelcol-kestrel/config/crd"

import _ "embed"

// ChangeRequests is the ChangeRequest CRD.
//
//go:embed kestrel.ai_changerequests.yaml
var ChangeRequests []byte

// Admission is the ValidatingAdmissionPolicy and its binding that guard decisions on
// ChangeRequests.
//
//go:embed kestrel.ai_changerequests_admission.yaml
var Admission []byte
