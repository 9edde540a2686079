//go:generate mdatagen metadata.yaml

// Package kestreltoolsreceiver implements the kestrel_tools receiver: it answers Kestrel
// Cloud's investigation requests (KubernetesAPIRequest and ShellCommandRequest) through the
// kestrel_command connection, as a read-only cluster identity, and emits one audit log
// record per call into the logs pipeline it is part of.
package kestreltoolsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver"
