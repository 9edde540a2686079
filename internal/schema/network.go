package schema

import (
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Network event names. Both records describe an aggregate: every flow or access-log entry with
// the same key seen within one aggregation window. The record Timestamp is the event time of the
// first of them; AttrAggregateCount and AttrAggregateLastSeen say how many and until when.
const (
	// EventNetworkFlow is an aggregated L3/L4 flow (Cilium Hubble). Becomes a cloud.v1.Flow.
	EventNetworkFlow = "kestrelai.network.flow"
	// EventL7AccessLog is an aggregated Envoy access-log entry (HTTP or TCP). Becomes a
	// cloud.v1.L7AccessLog.
	EventL7AccessLog = "kestrelai.l7.access_log"
)

// Aggregation attributes of our own. Record attributes.
const (
	// AttrAggregateCount (int, >= 1): number of flows or entries merged into the record.
	// Absent means 1.
	AttrAggregateCount = "kestrelai.aggregate.count"
	// AttrAggregateLastSeen (string, RFC 3339): event time of the last merged flow or entry.
	// Absent means the record Timestamp.
	AttrAggregateLastSeen = "kestrelai.aggregate.last_seen"
)

// Network attributes (semantic conventions). Record attributes.
const (
	// AttrSourceAddress (string): source IP address of a flow; downstream remote address
	// (the client side) of an Envoy access log.
	AttrSourceAddress = string(semconv.SourceAddressKey)
	// AttrSourcePort (int): source port. Flows never carry it: it is ephemeral and not part of
	// the aggregation key.
	AttrSourcePort = string(semconv.SourcePortKey)
	// AttrDestinationAddress (string): destination IP address of a flow; upstream remote
	// address (the host Envoy forwarded to) of an Envoy access log.
	AttrDestinationAddress = string(semconv.DestinationAddressKey)
	// AttrDestinationPort (int): destination L4 port; absent for ICMP.
	AttrDestinationPort = string(semconv.DestinationPortKey)
	// AttrNetworkTransport (string): tcp, udp, sctp or icmp (lower case, as semconv).
	AttrNetworkTransport = string(semconv.NetworkTransportKey)
	// AttrNetworkType (string): ipv4 or ipv6.
	AttrNetworkType = string(semconv.NetworkTypeKey)
	// AttrNetworkProtocolName (string): application protocol, "http" for HTTP access logs.
	AttrNetworkProtocolName = string(semconv.NetworkProtocolNameKey)
	// AttrNetworkProtocolVersion (string): HTTP version: 1.0, 1.1, 2 or 3.
	AttrNetworkProtocolVersion = string(semconv.NetworkProtocolVersionKey)
)

// Values of AttrNetworkTransport and AttrNetworkType.
const (
	TransportTCP  = "tcp"
	TransportUDP  = "udp"
	TransportSCTP = "sctp"
	TransportICMP = "icmp"
	NetworkIPv4   = "ipv4"
	NetworkIPv6   = "ipv6"
)

// Kubernetes identity of both ends of a flow or access log. The semantic conventions describe
// one entity per resource and have no source/destination variant, so both ends are record
// attributes named "source." or "destination." followed by the semconv key (k8s.namespace.name,
// k8s.pod.name, k8s.service.name). A workload has no generic semconv key (only kind-specific ones
// such as k8s.deployment.name), so kind and name are k8s.workload.kind / k8s.workload.name under
// the same prefixes.
const (
	AttrSourceNamespace    = "source." + string(semconv.K8SNamespaceNameKey)
	AttrSourcePod          = "source." + string(semconv.K8SPodNameKey)
	AttrSourceWorkloadKind = "source.k8s.workload.kind"
	AttrSourceWorkloadName = "source.k8s.workload.name"
	AttrDestNamespace      = "destination." + string(semconv.K8SNamespaceNameKey)
	AttrDestPod            = "destination." + string(semconv.K8SPodNameKey)
	AttrDestWorkloadKind   = "destination.k8s.workload.kind"
	AttrDestWorkloadName   = "destination.k8s.workload.name"
	AttrDestService        = "destination." + string(semconv.K8SServiceNameKey)
)

// Cilium Hubble flow attributes, in Cilium's own namespace. Record attributes.
const (
	// AttrCiliumVerdict (string): Hubble verdict enum name, e.g. FORWARDED, DROPPED.
	AttrCiliumVerdict = "cilium.flow.verdict"
	// AttrCiliumDropReason (string): Hubble drop reason enum name, e.g. POLICY_DENIED; absent
	// unless the flow was dropped.
	AttrCiliumDropReason = "cilium.flow.drop_reason"
	// AttrCiliumTrafficDirection (string): INGRESS, EGRESS or TRAFFIC_DIRECTION_UNKNOWN.
	AttrCiliumTrafficDirection = "cilium.flow.traffic_direction"
	// AttrCiliumSourceIdentity / AttrCiliumDestIdentity (int): Cilium security identity.
	AttrCiliumSourceIdentity = "cilium.flow.source.identity"
	AttrCiliumDestIdentity   = "cilium.flow.destination.identity"
	// AttrCiliumSourceLabels / AttrCiliumDestLabels (string[]): Cilium labels of the endpoint,
	// e.g. k8s:app=web, united over the aggregation window.
	AttrCiliumSourceLabels = "cilium.flow.source.labels"
	AttrCiliumDestLabels   = "cilium.flow.destination.labels"
	// Policies (map[]; each map has name, namespace, kind (strings), labels (string[]) and
	// revision (int)), deduplicated over the aggregation window.
	AttrCiliumIngressAllowedBy = "cilium.flow.ingress_allowed_by"
	AttrCiliumEgressAllowedBy  = "cilium.flow.egress_allowed_by"
	AttrCiliumIngressDeniedBy  = "cilium.flow.ingress_denied_by"
	AttrCiliumEgressDeniedBy   = "cilium.flow.egress_denied_by"
)

// Keys of the maps in the policy attributes.
const (
	PolicyName      = "name"
	PolicyNamespace = "namespace"
	PolicyKind      = "kind"
	PolicyLabels    = "labels"
	PolicyRevision  = "revision"
)

// HTTP attributes (semantic conventions). Record attributes.
const (
	// AttrHTTPRequestMethod (string): GET, POST, ...
	AttrHTTPRequestMethod = string(semconv.HTTPRequestMethodKey)
	// AttrHTTPResponseStatusCode (int).
	AttrHTTPResponseStatusCode = string(semconv.HTTPResponseStatusCodeKey)
	// AttrURLPath (string): request path without the query string (the query is not kept: it
	// often carries tokens).
	AttrURLPath = string(semconv.URLPathKey)
	// AttrURLTemplate (string): the path with numeric and UUID segments replaced by :id and
	// :uuid; it is part of the aggregation key.
	AttrURLTemplate = string(semconv.URLTemplateKey)
	// AttrURLScheme (string): http or https.
	AttrURLScheme = string(semconv.URLSchemeKey)
	// AttrServerAddress (string): the request's :authority (Host) without the port.
	AttrServerAddress = string(semconv.ServerAddressKey)
	// AttrUserAgentOriginal (string).
	AttrUserAgentOriginal = string(semconv.UserAgentOriginalKey)
	// AttrHTTPRequestBodySize / AttrHTTPResponseBodySize (int): body bytes.
	AttrHTTPRequestBodySize  = string(semconv.HTTPRequestBodySizeKey)
	AttrHTTPResponseBodySize = string(semconv.HTTPResponseBodySizeKey)
	// AttrHTTPRequestHeaderPrefix / AttrHTTPResponseHeaderPrefix + lower-case header name
	// (string[]): headers that passed the receiver's allowlist, redacted values included.
	AttrHTTPRequestHeaderPrefix  = "http.request.header."
	AttrHTTPResponseHeaderPrefix = "http.response.header."
)

// Envoy access-log attributes, in Envoy's own namespace. Record attributes.
const (
	// AttrEnvoyNodeID (string): the Envoy node id of the stream, e.g. Istio's
	// sidecar~10.0.0.5~web-0.shop~shop.svc.cluster.local.
	AttrEnvoyNodeID = "envoy.node.id"
	// AttrEnvoyLogName (string): the access log's name from the stream identifier.
	AttrEnvoyLogName = "envoy.log_name"
	// AttrEnvoyUpstreamCluster (string): e.g. outbound|8080||web.shop.svc.cluster.local.
	AttrEnvoyUpstreamCluster = "envoy.upstream.cluster"
	// AttrEnvoyDirection (string): inbound or outbound, from the Istio cluster name; absent
	// when unknown.
	AttrEnvoyDirection = "envoy.direction"
	// AttrEnvoyResponseFlags (string[]): Envoy short codes, e.g. UH, UF, NR, UAEX.
	AttrEnvoyResponseFlags = "envoy.response_flags"
	// AttrEnvoyAccessLogType (string): Envoy AccessLogType enum name, e.g. TcpConnectionEnd.
	AttrEnvoyAccessLogType = "envoy.access_log.type"
	// AttrEnvoyTerminationDetails (string): connection termination details.
	AttrEnvoyTerminationDetails = "envoy.connection.termination_details"
	// AttrEnvoyUpstreamFailure / AttrEnvoyDownstreamFailure (string): transport failure reasons.
	AttrEnvoyUpstreamFailure   = "envoy.upstream.transport_failure_reason"
	AttrEnvoyDownstreamFailure = "envoy.downstream.transport_failure_reason"
	// AttrEnvoyStreamID (string).
	AttrEnvoyStreamID = "envoy.stream_id"
	// AttrEnvoyAttemptCount (int): upstream request attempts.
	AttrEnvoyAttemptCount = "envoy.upstream.request_attempt_count"
	// AttrEnvoyDurationMs (int): request or connection duration in milliseconds, summed over
	// the aggregate.
	AttrEnvoyDurationMs = "envoy.duration_ms"
	// AttrEnvoyUpstreamBytesSent / AttrEnvoyUpstreamBytesReceived (int): upstream wire bytes,
	// summed over the aggregate.
	AttrEnvoyUpstreamBytesSent     = "envoy.upstream.bytes_sent"
	AttrEnvoyUpstreamBytesReceived = "envoy.upstream.bytes_received"
	// AttrEnvoyConnBytesSent / AttrEnvoyConnBytesReceived (int): TCP connection bytes, summed
	// over the aggregate.
	AttrEnvoyConnBytesSent     = "envoy.connection.bytes_sent"
	AttrEnvoyConnBytesReceived = "envoy.connection.bytes_received"
)

// Values of AttrEnvoyDirection.
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
)
