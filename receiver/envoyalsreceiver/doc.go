//go:generate mdatagen metadata.yaml

// Package envoyalsreceiver implements the envoy_access_log receiver: an Envoy Access Log
// Service (envoy.service.accesslog.v3) gRPC server for Envoy and Istio sidecars. HTTP and TCP
// access-log entries are aggregated per source workload, destination, port, protocol, method,
// path template, status and response flags, and each aggregate becomes a
// kestrelai.l7.access_log log record. Its type differs from contrib's envoy_als receiver, whose
// records are unstructured.
package envoyalsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver"
