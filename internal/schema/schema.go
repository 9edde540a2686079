// Package schema holds the names that our receivers put on log records and that the kestrel
// exporter reads: log record event names (plog.LogRecord EventName) and attribute keys,
// and, for inventory records, the tables (tables.go) that list each record's attributes
// once for both sides. Both sides import them so a rename cannot silently break the
// mapping.
//
// Semantic-convention names are taken from go.opentelemetry.io/otel/semconv where one
// exists; names for Kubernetes Events follow what contrib's k8s_events receiver emits, so
// its output is understood as well; everything without a convention uses the vendor prefix
// "kestrelai." (semconv owns the bare "kestrel." namespace).
package schema

import (
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Event names, set as the LogRecord EventName (never as the deprecated event.name attribute).
const (
	// EventK8sEvent is one Kubernetes core/v1 Event. Body: the event message (string).
	// Becomes a cloud.v1.KubernetesEvent.
	EventK8sEvent = "kestrelai.k8s.event"
)

// Kubernetes identity (semantic conventions). Found on the resource or on the record; the
// record wins when both are set.
const (
	// AttrK8sNamespaceName (string): namespace of the pod, or of the object an event is about.
	AttrK8sNamespaceName = string(semconv.K8SNamespaceNameKey)
	// AttrK8sPodName (string): pod name.
	AttrK8sPodName = string(semconv.K8SPodNameKey)
	// AttrK8sPodUID (string): pod UID.
	AttrK8sPodUID = string(semconv.K8SPodUIDKey)
	// AttrK8sContainerName (string): container name within the pod.
	AttrK8sContainerName = string(semconv.K8SContainerNameKey)
	// AttrK8sNodeName (string): node name. For Kubernetes Events it is the event source host
	// (resource attribute, as contrib's k8s_events receiver sets it).
	AttrK8sNodeName = string(semconv.K8SNodeNameKey)
)

// Kubernetes Event attributes as contrib's k8s_events receiver emits them. They are not part
// of the semantic conventions. The k8s.event.* names are record attributes, the k8s.object.*
// names (the event's involved object) are resource attributes there; both places are read.
const (
	// AttrK8sEventReason (string): Event .reason, e.g. BackOff.
	AttrK8sEventReason = "k8s.event.reason"
	// AttrK8sEventName (string): Event .metadata.name.
	AttrK8sEventName = "k8s.event.name"
	// AttrK8sEventUID (string): Event .metadata.uid.
	AttrK8sEventUID = "k8s.event.uid"
	// AttrK8sEventCount (int): Event .count; absent when zero.
	AttrK8sEventCount = "k8s.event.count"
	// AttrK8sEventStartTime (string): when the event was first seen. Our receivers write
	// RFC 3339; contrib writes Go's time.Time.String() layout. Both are accepted.
	AttrK8sEventStartTime = "k8s.event.start_time"

	// AttrK8sObjectKind (string): involved object kind, e.g. Pod.
	AttrK8sObjectKind = "k8s.object.kind"
	// AttrK8sObjectName (string): involved object name.
	AttrK8sObjectName = "k8s.object.name"
	// AttrK8sObjectUID (string): involved object UID.
	AttrK8sObjectUID = "k8s.object.uid"
	// AttrK8sObjectAPIVersion (string): involved object apiVersion, e.g. v1.
	AttrK8sObjectAPIVersion = "k8s.object.api_version"
	// AttrK8sObjectResourceVersion (string): involved object resourceVersion.
	AttrK8sObjectResourceVersion = "k8s.object.resource_version"
	// AttrK8sObjectFieldPath (string): involved object fieldPath, e.g. spec.containers{app}.
	AttrK8sObjectFieldPath = "k8s.object.fieldpath"
)

// Attributes of our own (no convention exists). Record attributes.
const (
	// AttrAction (string, one of ActionCreate/ActionUpdate/ActionDelete): the change a record
	// reports about the object it describes. Absent means ActionCreate.
	AttrAction = "kestrelai.action"
	// AttrK8sEventType (string): Event .type, Normal or Warning. When absent the record's
	// SeverityText is used (contrib's k8s_events receiver puts the type there).
	AttrK8sEventType = "kestrelai.k8s.event.type"
	// AttrK8sEventLastTime (string, RFC 3339): Event .lastTimestamp. When absent the record
	// Timestamp is used.
	AttrK8sEventLastTime = "kestrelai.k8s.event.last_time"
	// AttrK8sEventSourceComponent (string): Event .source.component, e.g. kubelet.
	AttrK8sEventSourceComponent = "kestrelai.k8s.event.source.component"
)

// Values of AttrAction.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// Application log attributes. Record attributes.
const (
	// AttrExceptionType (string): exception or error type of an error log line.
	AttrExceptionType = string(semconv.ExceptionTypeKey)
	// AttrExceptionMessage (string): exception message.
	AttrExceptionMessage = string(semconv.ExceptionMessageKey)
	// AttrExceptionStacktrace (string): stack trace.
	AttrExceptionStacktrace = string(semconv.ExceptionStacktraceKey)
	// AttrLogFileRecordNumber (int): 1-based number of the line in its log file. Not in the
	// semantic conventions; it is the name contrib's filelog receiver uses with
	// include_file_record_number.
	AttrLogFileRecordNumber = "log.file.record_number"
)
