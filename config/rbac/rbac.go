// Package rbac holds the RBAC manifests of the write profile (the change tools), the
// approvers and the self-restart, for tests and tools that install them; the YAML files are
// what administrators apply.
package rbac // import "github.com/kestrelai/otelcol-kestrel/config/rbac"

import _ "embed"

// Changes is the write profile: the kestrel-ai-changes identity and its roles.
//
//go:embed changes.yaml
var Changes []byte

// Approver is the approver ClusterRole (and an example binding).
//
//go:embed approver.yaml
var Approver []byte

// Restart lets the collector patch its own Deployment.
//
//go:embed restart.yaml
var Restart []byte

// IntegrationsRead is the read profile of the integrations (Argo CD, Argo Rollouts, Flux,
// Karpenter) for the reader.
//
//go:embed integrations-read.yaml
var IntegrationsRead []byte

// IntegrationsWrite is the write profile of the integrations for the change identity.
//
//go:embed integrations-write.yaml
var IntegrationsWrite []byte
