//go:generate mdatagen metadata.yaml

// Package metricsstoreprocessor implements the metrics_store processor: a pass-through metrics
// processor that keeps a compressed, bounded rolling window of every series it sees and answers
// MetricsQueryRequest messages that Kestrel Cloud sends over the kestrel_command connection.
package metricsstoreprocessor // import "github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor"
