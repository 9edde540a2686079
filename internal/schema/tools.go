package schema

import (
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// The audit trail of the cloud's tools (the kestrel_tools receiver): one log record per API
// path or command the cloud asked for, and one for a request refused as a whole. Body: a
// one-line summary. The kestrel exporter does not map these records; send them to any other
// logs exporter.
const (
	// EventToolAudit is one audited tool call.
	EventToolAudit = "kestrelai.tool.audit"

	// AttrToolName (string): the tool, e.g. kubernetes_api or shell.
	AttrToolName = "kestrelai.tool.name"
	// AttrToolRequestID (string): the cloud's request_id.
	AttrToolRequestID = "kestrelai.tool.request_id"
	// AttrToolInput (string): the API path or the command string, as the cloud sent it
	// (cut at 4 KiB).
	AttrToolInput = "kestrelai.tool.input"
	// AttrToolIdentity (string): the Kubernetes identity the call ran as.
	AttrToolIdentity = "kestrelai.tool.identity"
	// AttrToolOutcome (string): ok, error, refused, busy, timeout or truncated.
	AttrToolOutcome = "kestrelai.tool.outcome"
	// AttrToolReason (string): why a call was refused or failed.
	AttrToolReason = "kestrelai.tool.reason"
	// AttrToolResponseBytes (int): bytes of output returned to the cloud.
	AttrToolResponseBytes = "kestrelai.tool.response.bytes"
	// AttrToolDuration (double): seconds the call took. API reads carry the apiserver's HTTP
	// status in AttrHTTPResponseStatusCode.
	AttrToolDuration = "kestrelai.tool.duration"
	// AttrProcessExitCode (int): the command's exit code (commands).
	AttrProcessExitCode = string(semconv.ProcessExitCodeKey)
)
