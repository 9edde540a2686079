//go:generate mdatagen metadata.yaml
//go:generate go run ./internal/fixturegen/cmd/fixturegen -o testdata/flows.pb.gz

// Package hubblereceiver implements the hubble receiver: a Hubble Relay client
// (observer.Observer/GetFlows in follow mode) that aggregates Cilium flows by workload pair,
// port, protocol, direction, verdict and drop reason, and emits each aggregate as a
// kestrelai.network.flow log record.
package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"
