//go:generate mdatagen metadata.yaml

// Package k8sinventoryreceiver implements the k8s_inventory receiver: it watches the
// cluster's workloads, pods, namespaces, nodes, services and network and authorization
// policies through shared informers (internal/k8scache) and emits their state as log
// records (an initial snapshot, then diff-only changes), plus incident signals (Warning
// events, pod status changes, node condition changes, workload rollout status).
package k8sinventoryreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver"
