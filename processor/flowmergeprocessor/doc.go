//go:generate mdatagen metadata.yaml

// Package flowmergeprocessor implements the flow_merge processor: on the gateway of node-agent
// mode it merges the kestrelai.network.flow aggregates that the node collectors' hubble
// receivers send over OTLP into one aggregate per key and wall-clock window. Counts are summed,
// so the cloud sees exactly as many flows as the nodes did.
package flowmergeprocessor // import "github.com/kestrelai/otelcol-kestrel/processor/flowmergeprocessor"
