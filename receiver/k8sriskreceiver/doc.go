//go:generate mdatagen metadata.yaml

// Package k8sriskreceiver implements the k8s_risk receiver: it evaluates the risk
// catalogue (internal/checks) over the shared informers of internal/k8scache and the
// traffic internal/flowgraph has seen, on a schedule and after changes, and emits one
// finding per object and check as log records. It can keep wgpolicyk8s.io PolicyReports
// current as well.
package k8sriskreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver"
