package logmap

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// netEndpointKeys names the identity attributes of one end of a flow or access log.
type netEndpointKeys struct {
	namespace, pod, kind, name, service, identity, labels string
}

var (
	netSourceKeys = netEndpointKeys{
		namespace: schema.AttrSourceNamespace, pod: schema.AttrSourcePod,
		kind: schema.AttrSourceWorkloadKind, name: schema.AttrSourceWorkloadName,
		identity: schema.AttrCiliumSourceIdentity, labels: schema.AttrCiliumSourceLabels,
	}
	netDestKeys = netEndpointKeys{
		namespace: schema.AttrDestNamespace, pod: schema.AttrDestPod,
		kind: schema.AttrDestWorkloadKind, name: schema.AttrDestWorkloadName, service: schema.AttrDestService,
		identity: schema.AttrCiliumDestIdentity, labels: schema.AttrCiliumDestLabels,
	}
)

// netEndpoint is one end's identity as the attributes give it.
type netEndpoint struct {
	namespace, kind, name, pod, service string
	identity                            int64
	labels                              []string
}

func (rd *reader) netEndpoint(k netEndpointKeys) netEndpoint {
	e := netEndpoint{
		namespace: rd.Str(k.namespace),
		kind:      rd.Str(k.kind),
		name:      rd.Str(k.name),
		pod:       rd.Str(k.pod),
		identity:  rd.int(k.identity),
		labels:    rd.Strs(k.labels),
	}
	if k.service != "" {
		e.service = rd.Str(k.service)
	}
	return e
}

// flowEndpoint names an endpoint as the protocol does (docs/protocol.md#flow): its
// workload, else its pod, else its first label (Unmanaged), else its security identity.
func (e netEndpoint) flowEndpoint() *cloudv1.Endpoint {
	out := &cloudv1.Endpoint{Ns: e.namespace, Labels: e.labels}
	switch {
	case e.kind != "" && e.name != "":
		out.Kind, out.Name = e.kind, e.name
	case e.pod != "":
		out.Kind, out.Name = "Pod", e.pod
	case len(e.labels) > 0:
		out.Kind, out.Name = "Unmanaged", e.labels[0]
	case e.identity > 0:
		out.Kind, out.Name = "Unknown", "identity-"+strconv.FormatInt(e.identity, 10)
	default:
		out.Kind, out.Name = "Unknown", "unknown"
	}
	return out
}

// l7Endpoint names an access-log endpoint: its workload, else its pod, else (for the
// destination of outbound requests) its Service.
func (e netEndpoint) l7Endpoint(ip string, port uint32) *cloudv1.L7Endpoint {
	out := &cloudv1.L7Endpoint{Ip: ip, Port: port, Namespace: e.namespace, ServiceName: e.service}
	switch {
	case e.kind != "" && e.name != "":
		out.Kind, out.Name = e.kind, e.name
	case e.pod != "":
		out.Kind, out.Name = "Pod", e.pod
	case e.service != "":
		out.Kind, out.Name = "Service", e.service
	}
	return out
}

// flow maps a kestrelai.network.flow record (an aggregate of Hubble flows) to a cloud.v1.Flow.
func (b *batch) flow(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	verdict := rd.Required(schema.AttrCiliumVerdict)
	direction := rd.Str(schema.AttrCiliumTrafficDirection)
	if direction == "" {
		direction = "TRAFFIC_DIRECTION_UNKNOWN"
	}
	src := rd.netEndpoint(netSourceKeys)
	dst := rd.netEndpoint(netDestKeys)
	f := &cloudv1.Flow{
		SrcIp:            rd.Str(schema.AttrSourceAddress),
		DstIp:            rd.Str(schema.AttrDestinationAddress),
		Src:              src.flowEndpoint(),
		Dst:              dst.flowEndpoint(),
		Direction:        direction,
		Port:             rd.netPort(schema.AttrDestinationPort),
		Protocol:         rd.flowProtocol(),
		Allowed:          verdict == "FORWARDED",
		IngressAllowedBy: rd.ciliumPolicies(schema.AttrCiliumIngressAllowedBy),
		EgressAllowedBy:  rd.ciliumPolicies(schema.AttrCiliumEgressAllowedBy),
	}
	f.Count, f.FirstSeen, f.LastSeen = rd.aggregateSpan()
	return b.emit(&rd, schema.EventNetworkFlow, f)
}

// l7AccessLog maps a kestrelai.l7.access_log record (an aggregate of Envoy access-log entries)
// to a cloud.v1.L7AccessLog.
func (b *batch) l7AccessLog(r *record) (int, Reason, string) {
	rd := reader{rec: r}
	srcIP := rd.Required(schema.AttrSourceAddress)
	isHTTP := rd.Str(schema.AttrNetworkProtocolName) == "http"
	cluster := rd.Str(schema.AttrEnvoyUpstreamCluster)
	flags := rd.Strs(schema.AttrEnvoyResponseFlags)
	l := &cloudv1.L7AccessLog{
		Source:        rd.netEndpoint(netSourceKeys).l7Endpoint(srcIP, rd.netPort(schema.AttrSourcePort)),
		Destination:   rd.netEndpoint(netDestKeys).l7Endpoint(rd.Str(schema.AttrDestinationAddress), rd.netPort(schema.AttrDestinationPort)),
		Protocol:      "TCP",
		DurationMs:    rd.int(schema.AttrEnvoyDurationMs),
		BytesSent:     rd.uint(schema.AttrEnvoyUpstreamBytesSent),
		BytesReceived: rd.uint(schema.AttrEnvoyUpstreamBytesReceived),
		Allowed:       l7Allowed(flags, cluster, isHTTP),
		NodeId:        rd.Str(schema.AttrEnvoyNodeID),
		ClusterName:   cluster,
	}
	l.Count, l.FirstSeen, l.LastSeen = rd.aggregateSpan()
	l.Timestamp = l.FirstSeen
	termination := rd.Str(schema.AttrEnvoyTerminationDetails)
	upstreamFailure := rd.Str(schema.AttrEnvoyUpstreamFailure)
	downstreamFailure := rd.Str(schema.AttrEnvoyDownstreamFailure)
	logType := rd.Str(schema.AttrEnvoyAccessLogType)
	streamID := rd.Str(schema.AttrEnvoyStreamID)
	attempts := rd.uint32(schema.AttrEnvoyAttemptCount)
	if isHTTP {
		l.L7Protocol = cloudv1.L7ProtocolType_L7_PROTOCOL_HTTP
		reqHeaders := rd.httpHeaders(schema.AttrHTTPRequestHeaderPrefix)
		l.HttpData = &cloudv1.HTTPAccessLogData{
			Method:                           rd.Str(schema.AttrHTTPRequestMethod),
			Path:                             rd.Str(schema.AttrURLPath),
			Version:                          l7HTTPVersion(rd.Str(schema.AttrNetworkProtocolVersion)),
			Host:                             rd.Str(schema.AttrServerAddress),
			UserAgent:                        rd.Str(schema.AttrUserAgentOriginal),
			RequestHeaders:                   reqHeaders,
			ResponseCode:                     min(rd.uint32(schema.AttrHTTPResponseStatusCode), 999),
			ResponseHeaders:                  rd.httpHeaders(schema.AttrHTTPResponseHeaderPrefix),
			RequestSize:                      rd.uint(schema.AttrHTTPRequestBodySize),
			ResponseSize:                     rd.uint(schema.AttrHTTPResponseBodySize),
			Referer:                          reqHeaders["referer"],
			ResponseFlags:                    flags,
			ConnectionTerminationDetails:     termination,
			UpstreamTransportFailureReason:   upstreamFailure,
			DownstreamTransportFailureReason: downstreamFailure,
			AccessLogType:                    logType,
			StreamId:                         streamID,
			UpstreamRequestAttemptCount:      attempts,
		}
	} else {
		l.L7Protocol = cloudv1.L7ProtocolType_L7_PROTOCOL_TCP
		l.TcpData = &cloudv1.TCPAccessLogData{
			ConnectionState:                  l7ConnectionState(logType, termination),
			ReceivedBytes:                    rd.uint(schema.AttrEnvoyConnBytesReceived),
			SentBytes:                        rd.uint(schema.AttrEnvoyConnBytesSent),
			ConnectionTerminationDetails:     termination,
			UpstreamTransportFailureReason:   upstreamFailure,
			DownstreamTransportFailureReason: downstreamFailure,
			AccessLogType:                    logType,
			StreamId:                         streamID,
			UpstreamRequestAttemptCount:      attempts,
		}
	}
	return b.emit(&rd, schema.EventL7AccessLog, l)
}

// l7Allowed is false for requests Envoy refused: external authorization or RBAC (UAEX), no
// route (NR), no cluster (NC), Istio's BlackHoleCluster (outbound traffic policy
// REGISTRY_ONLY) and, for TCP, a failed upstream connection (UF), as the operator did.
func l7Allowed(flags []string, cluster string, isHTTP bool) bool {
	if cluster == "BlackHoleCluster" {
		return false
	}
	for _, f := range flags {
		switch f {
		case "UAEX", "NR", "NC":
			return false
		case "UF":
			if !isHTTP {
				return false
			}
		}
	}
	return true
}

// l7HTTPVersion writes the semconv protocol version the way the protocol expects it.
func l7HTTPVersion(v string) string {
	switch v {
	case "1.0", "1.1":
		return v
	case "2", "2.0":
		return "2.0"
	case "3", "3.0":
		return "3.0"
	}
	return "unknown"
}

// l7ConnectionState derives the TCP connection state from the Envoy access-log type, as the
// protocol describes it.
func l7ConnectionState(logType, termination string) string {
	switch logType {
	case "TcpUpstreamConnected":
		return "CONNECTED"
	case "TcpConnectionEnd":
		return "CLOSED"
	case "TcpPeriodic":
		return "ESTABLISHED"
	case "DownstreamStart":
		return "STARTING"
	case "DownstreamEnd":
		return "ENDED"
	}
	if termination != "" {
		return "TERMINATED"
	}
	return "ESTABLISHED"
}

// flowProtocol returns the Flow protocol name (TCP, UDP, SCTP, ICMPv4, ICMPv6) from the semconv
// transport and network type; unknown transports give "".
func (rd *reader) flowProtocol() string {
	transport := rd.Str(schema.AttrNetworkTransport)
	switch transport {
	case schema.TransportTCP, schema.TransportUDP, schema.TransportSCTP:
		return strings.ToUpper(transport)
	case schema.TransportICMP:
		if rd.Str(schema.AttrNetworkType) == schema.NetworkIPv6 {
			return "ICMPv6"
		}
		return "ICMPv4"
	}
	return ""
}

// aggregateSpan returns the aggregate's count and first and last event times: the record Timestamp
// (else its observed time) and kestrelai.aggregate.last_seen (else the first).
func (rd *reader) aggregateSpan() (int64, *timestamppb.Timestamp, *timestamppb.Timestamp) {
	count := int64(1)
	if _, ok := rd.rec.attr(schema.AttrAggregateCount); ok {
		count = rd.int(schema.AttrAggregateCount)
		if count == 0 {
			rd.fail(ReasonInvalidAttribute, schema.AttrAggregateCount)
		}
	}
	t := rd.rec.lr.Timestamp()
	if t == 0 {
		t = rd.rec.lr.ObservedTimestamp()
	}
	first := newTimestamp(t)
	last := rd.Time(schema.AttrAggregateLastSeen)
	if last == nil {
		last = first
	}
	return count, first, last
}

// netPort returns a port attribute (0..65535), 0 when absent.
func (rd *reader) netPort(key string) uint32 {
	p := rd.uint(key)
	if p > 65535 {
		rd.fail(ReasonInvalidAttribute, key)
		return 0
	}
	return uint32(p)
}

// strList returns the strings of s, nil when it is empty or holds a non-string (which
// fails key).
func (rd *reader) strList(key string, s pcommon.Slice) []string {
	if s.Len() == 0 {
		return nil
	}
	out := make([]string, s.Len())
	for i := range out {
		e := s.At(i)
		if e.Type() != pcommon.ValueTypeStr {
			rd.fail(ReasonInvalidAttribute, key)
			return nil
		}
		out[i] = validUTF8(e.Str())
	}
	return out
}

// ciliumPolicies returns a Cilium policy list attribute (maps with name, namespace, kind, labels
// and revision).
func (rd *reader) ciliumPolicies(key string) []*cloudv1.Policy {
	return mapList(rd, key, func(m pcommon.Map) (*cloudv1.Policy, bool) {
		p := &cloudv1.Policy{}
		ok := true
		m.Range(func(k string, v pcommon.Value) bool {
			switch {
			case k == schema.PolicyName && v.Type() == pcommon.ValueTypeStr:
				p.Name = validUTF8(v.Str())
			case k == schema.PolicyNamespace && v.Type() == pcommon.ValueTypeStr:
				p.Namespace = validUTF8(v.Str())
			case k == schema.PolicyKind && v.Type() == pcommon.ValueTypeStr:
				p.Kind = validUTF8(v.Str())
			case k == schema.PolicyRevision:
				p.Revision, ok = uintValue(v)
			case k == schema.PolicyLabels && v.Type() == pcommon.ValueTypeSlice:
				p.Labels = rd.strList(key, v.Slice())
			default:
				ok = false
			}
			return ok
		})
		return p, ok
	})
}

// httpHeaders collects the record's header attributes under prefix (semconv: one string[] per
// lower-case header name) into a map; several values are joined with ",", as HTTP does.
func (rd *reader) httpHeaders(prefix string) map[string]string {
	var out map[string]string
	rd.rec.attrs.Range(func(k string, v pcommon.Value) bool {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok || name == "" {
			return true
		}
		var value string
		switch v.Type() {
		case pcommon.ValueTypeStr:
			value = validUTF8(v.Str())
		case pcommon.ValueTypeSlice:
			value = strings.Join(rd.strList(k, v.Slice()), ",")
		default:
			rd.fail(ReasonInvalidAttribute, k)
			return false
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[validUTF8(name)] = value
		return true
	})
	return out
}
