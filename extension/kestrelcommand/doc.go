//go:generate mdatagen metadata.yaml

// Package kestrelcommand implements the kestrel_command extension: it owns the one mTLS
// gRPC connection to Kestrel Cloud (the five cloud.v1.StreamService streams), keeps its
// bearer token and client certificate fresh without restarts, and serves requests from
// the cloud to the handlers other components register. Other components reach it through
// host.GetExtensions() and the cloudconn.Provider interface.
package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"
