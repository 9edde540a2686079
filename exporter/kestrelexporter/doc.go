//go:generate mdatagen metadata.yaml

// Package kestrelexporter implements the kestrel exporter: it maps pdata log records to
// cloud.v1 messages (see internal/logmap) and sends them to Kestrel Cloud over the connection
// owned by the kestrel_command extension.
package kestrelexporter // import "github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter"
