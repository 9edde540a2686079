package envoyalsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver"

import (
	"strconv"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// maxFieldLength caps paths and user agents: they reach Kestrel Cloud in every aggregate.
const maxFieldLength = 4096

type direction uint8

const (
	dirUnknown direction = iota
	dirInbound
	dirOutbound
)

var directionNames = [...]string{dirInbound: schema.DirectionInbound, dirOutbound: schema.DirectionOutbound}

// endpointKey identifies one end of an access log: its workload, pod or Service, or, when
// nothing else is known, its IP address.
type endpointKey struct {
	namespace, kind, name string
	ip                    string
}

// entryKey is what entries are aggregated by. It never contains the client port.
type entryKey struct {
	dir      direction
	src, dst endpointKey
	port     uint32
	http     bool
	method   corev3.RequestMethod
	template string
	status   uint32
	flags    uint64
}

// entryAgg is the aggregate of one key: the first entry's details, and sums of durations and
// bytes.
type entryAgg struct {
	flowagg.Span
	node               *node
	cluster            string
	service            string
	srcIP, dstIP       string
	srcPort            uint32
	http               *accesslogv3.HTTPAccessLogEntry // first entry, headers removed
	tcp                *accesslogv3.TCPAccessLogEntry  // first entry
	headers            []header
	durationMs         int64
	upSent, upRecv     uint64
	connSent, connRecv uint64
}

// clusterInfo is what an upstream cluster name says. Istio names clusters
// outbound|<port>|<subset>|<host> and inbound|<port>|<name>|<host> (the host is empty in
// recent releases), plus a few special ones.
type clusterInfo struct {
	dir       direction
	port      uint32
	host      string
	blackhole bool
}

func parseCluster(c string) clusterInfo {
	switch {
	case c == "PassthroughCluster":
		return clusterInfo{dir: dirOutbound}
	case c == "BlackHoleCluster":
		return clusterInfo{dir: dirOutbound, blackhole: true}
	case strings.HasPrefix(c, "InboundPassthroughCluster"):
		return clusterInfo{dir: dirInbound}
	}
	kind, rest, ok := strings.Cut(c, "|")
	if !ok || (kind != "inbound" && kind != "outbound") {
		return clusterInfo{}
	}
	ci := clusterInfo{dir: dirInbound}
	if kind == "outbound" {
		ci.dir = dirOutbound
	}
	port, rest, _ := strings.Cut(rest, "|")
	if p, err := strconv.ParseUint(port, 10, 16); err == nil {
		ci.port = uint32(p)
	}
	_, ci.host, _ = strings.Cut(rest, "|")
	return ci
}

// serviceOf splits a Kubernetes service host (<svc>.<ns>.svc.<domain>, or <svc>.<ns>) into
// name and namespace; other hosts (ServiceEntries, external names) are the name alone.
func serviceOf(host string) (name, namespace string) {
	name, rest, ok := strings.Cut(host, ".")
	if !ok {
		return host, ""
	}
	ns, rest, _ := strings.Cut(rest, ".")
	if rest == "" || strings.HasPrefix(rest, "svc.") || rest == "svc" {
		return name, ns
	}
	return host, ""
}

// hostOf strips the port from an :authority.
func hostOf(authority string) string {
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && i > strings.LastIndexByte(authority, ']') {
		authority = authority[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(authority, "["), "]")
}

func (nd *node) endpoint() endpointKey {
	switch {
	case nd == nil || !nd.hasIdentity:
		return endpointKey{}
	case nd.workload != "":
		return endpointKey{namespace: nd.namespace, kind: nd.kind, name: nd.workload}
	}
	return endpointKey{namespace: nd.namespace, kind: "Pod", name: nd.pod}
}

// endpoints works out both ends. Outbound (client-side sidecar): the Envoy's pod is the
// source and the cluster names the destination Service. Inbound (server-side sidecar): the
// Envoy's pod is the destination and the client is known by address. Other Envoys (gateways,
// plain Envoy): the client by address, the destination by its Service or host.
func endpoints(nd *node, ci clusterInfo, srcIP, dstIP, authority string) (src, dst endpointKey, service string) {
	src, dst = endpointKey{ip: srcIP}, endpointKey{ip: dstIP}
	host := ci.host
	if host == "" && ci.dir != dirInbound {
		host = hostOf(authority)
	}
	var ns string
	if host != "" {
		service, ns = serviceOf(host)
	}
	switch ci.dir {
	case dirOutbound:
		if e := nd.endpoint(); e.name != "" {
			src = e
		}
	case dirInbound:
		if e := nd.endpoint(); e.name != "" {
			dst = e
		}
		return src, dst, service
	}
	if service != "" {
		dst = endpointKey{namespace: ns, kind: "Service", name: service}
	}
	return src, dst, service
}

func addrOf(a *corev3.Address) (string, uint32) {
	if sa := a.GetSocketAddress(); sa != nil {
		return sa.GetAddress(), sa.GetPortValue()
	}
	return a.GetPipe().GetPath(), 0
}

func durationMs(c *accesslogv3.AccessLogCommon) int64 {
	d := c.GetDuration()
	if d == nil {
		// Envoy before 1.26 has no duration; the last byte sent downstream is the end.
		d = c.GetTimeToLastDownstreamTxByte()
	}
	return durationpbMs(d)
}

func durationpbMs(d *durationpb.Duration) int64 {
	if d == nil || d.Seconds < 0 {
		return 0
	}
	return min(d.Seconds, 1<<53)*1000 + int64(d.Nanos)/1e6
}

// responseFlagCodes are Envoy's short codes, in the order of the bits of flagBits.
var responseFlagCodes = [...]string{
	"LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE",
	"DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DR",
}

func flagBits(f *accesslogv3.ResponseFlags) uint64 {
	if f == nil {
		return 0
	}
	set := [...]bool{
		f.FailedLocalHealthcheck, f.NoHealthyUpstream, f.UpstreamRequestTimeout, f.LocalReset,
		f.UpstreamRemoteReset, f.UpstreamConnectionFailure, f.UpstreamConnectionTermination,
		f.UpstreamOverflow, f.NoRouteFound, f.DelayInjected, f.FaultInjected, f.RateLimited,
		f.UnauthorizedDetails != nil, f.RateLimitServiceError, f.DownstreamConnectionTermination,
		f.UpstreamRetryLimitExceeded, f.StreamIdleTimeout, f.InvalidEnvoyRequestHeaders,
		f.DownstreamProtocolError, f.UpstreamMaxStreamDurationReached, f.ResponseFromCacheFilter,
		f.NoFilterConfigFound, f.DurationTimeout, f.UpstreamProtocolError, f.NoClusterFound,
		f.OverloadManager, f.DnsResolutionFailure, f.DownstreamRemoteReset,
	}
	var bits uint64
	for i, b := range set {
		if b {
			bits |= 1 << i
		}
	}
	return bits
}

// pathTemplate strips the query and a trailing slash and replaces the segments that vary per
// object (numbers, UUIDs, long hex ids) with :id and :uuid, so that /carts/42 and /carts/43
// aggregate together. Paths without such segments are returned without allocating.
func pathTemplate(path string) string {
	path, _, _ = strings.Cut(path, "?")
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	if !strings.ContainsFunc(path, func(r rune) bool { return r >= '0' && r <= '9' }) {
		return truncate(path, maxFieldLength)
	}
	var b strings.Builder
	b.Grow(len(path))
	for i, seg := range strings.Split(path, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		switch {
		case isNumber(seg):
			b.WriteString(":id")
		case isUUID(seg):
			b.WriteString(":uuid")
		case len(seg) >= 16 && isHex(seg):
			b.WriteString(":id")
		default:
			b.WriteString(seg)
		}
	}
	return truncate(b.String(), maxFieldLength)
}

func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	return len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' &&
		isHex(s[:8]) && isHex(s[9:13]) && isHex(s[14:18]) && isHex(s[19:23]) && isHex(s[24:])
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// entryCommon is what HTTP and TCP entries share, decoded once for the key and the aggregate.
type entryCommon struct {
	c            *accesslogv3.AccessLogCommon
	nd           *node
	key          entryKey // without the HTTP fields
	service      string
	srcIP, dstIP string
	srcPort      uint32
	t            int64
}

func decodeCommon(nd *node, c *accesslogv3.AccessLogCommon, authority string) entryCommon {
	ci := parseCluster(c.GetUpstreamCluster())
	ec := entryCommon{c: c, nd: nd, t: flowagg.EventTime(c.GetStartTime())}
	ec.srcIP, ec.srcPort = addrOf(c.GetDownstreamRemoteAddress())
	var port uint32
	ec.dstIP, port = addrOf(c.GetUpstreamRemoteAddress())
	if port == 0 {
		// No upstream host was picked (or it is a pipe): the cluster names the port.
		port = ci.port
	}
	var src, dst endpointKey
	src, dst, ec.service = endpoints(nd, ci, ec.srcIP, ec.dstIP, authority)
	ec.key = entryKey{dir: ci.dir, src: src, dst: dst, port: port, flags: flagBits(c.GetResponseFlags())}
	return ec
}

// addCommon merges what HTTP and TCP entries share into the aggregate.
func (a *entryAgg) addCommon(ec *entryCommon, fresh bool) {
	a.Add(ec.t)
	c := ec.c
	if fresh {
		a.node = ec.nd
		a.cluster = c.GetUpstreamCluster()
		a.service = ec.service
		a.srcIP, a.srcPort, a.dstIP = ec.srcIP, ec.srcPort, ec.dstIP
	}
	a.durationMs += durationMs(c)
	a.upSent += c.GetUpstreamWireBytesSent()
	a.upRecv += c.GetUpstreamWireBytesReceived()
}

// toRecord writes one aggregate as a kestrelai.l7.access_log record.
func toRecord(k entryKey, a *entryAgg, lr plog.LogRecord, observed pcommon.Timestamp) {
	lr.SetEventName(schema.EventL7AccessLog)
	lr.SetObservedTimestamp(observed)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	if k.status >= 500 || k.flags != 0 && !k.http {
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
	}
	a.Put(lr)
	m := lr.Attributes()
	putStr(m, schema.AttrSourceAddress, a.srcIP)
	putPort(m, schema.AttrSourcePort, a.srcPort)
	putStr(m, schema.AttrDestinationAddress, a.dstIP)
	putPort(m, schema.AttrDestinationPort, k.port)
	m.PutStr(schema.AttrNetworkTransport, schema.TransportTCP)
	putEndpoint(m, k.src, schema.AttrSourceNamespace, schema.AttrSourceWorkloadKind, schema.AttrSourceWorkloadName, schema.AttrSourcePod)
	putEndpoint(m, k.dst, schema.AttrDestNamespace, schema.AttrDestWorkloadKind, schema.AttrDestWorkloadName, schema.AttrDestPod)
	putStr(m, schema.AttrDestService, a.service)
	if a.node != nil {
		putStr(m, schema.AttrEnvoyNodeID, a.node.id)
		putStr(m, schema.AttrEnvoyLogName, a.node.logName)
	}
	putStr(m, schema.AttrEnvoyUpstreamCluster, a.cluster)
	if k.dir != dirUnknown {
		m.PutStr(schema.AttrEnvoyDirection, directionNames[k.dir])
	}
	if k.flags != 0 {
		s := m.PutEmptySlice(schema.AttrEnvoyResponseFlags)
		for i, code := range responseFlagCodes {
			if k.flags&(1<<i) != 0 {
				s.AppendEmpty().SetStr(code)
			}
		}
	}
	m.PutInt(schema.AttrEnvoyDurationMs, a.durationMs)
	m.PutInt(schema.AttrEnvoyUpstreamBytesSent, clampInt(a.upSent))
	m.PutInt(schema.AttrEnvoyUpstreamBytesReceived, clampInt(a.upRecv))
	var c *accesslogv3.AccessLogCommon
	switch {
	case a.http != nil:
		c = a.http.GetCommonProperties()
		a.putHTTP(k, m)
	case a.tcp != nil:
		c = a.tcp.GetCommonProperties()
		m.PutInt(schema.AttrEnvoyConnBytesSent, clampInt(a.connSent))
		m.PutInt(schema.AttrEnvoyConnBytesReceived, clampInt(a.connRecv))
	}
	m.PutStr(schema.AttrEnvoyAccessLogType, c.GetAccessLogType().String())
	putStr(m, schema.AttrEnvoyTerminationDetails, c.GetConnectionTerminationDetails())
	putStr(m, schema.AttrEnvoyUpstreamFailure, c.GetUpstreamTransportFailureReason())
	putStr(m, schema.AttrEnvoyDownstreamFailure, c.GetDownstreamTransportFailureReason())
	putStr(m, schema.AttrEnvoyStreamID, c.GetStreamId())
	if n := c.GetUpstreamRequestAttemptCount(); n > 0 {
		m.PutInt(schema.AttrEnvoyAttemptCount, int64(n))
	}
}

var httpVersions = [...]string{
	accesslogv3.HTTPAccessLogEntry_HTTP10: "1.0",
	accesslogv3.HTTPAccessLogEntry_HTTP11: "1.1",
	accesslogv3.HTTPAccessLogEntry_HTTP2:  "2",
	accesslogv3.HTTPAccessLogEntry_HTTP3:  "3",
}

func (a *entryAgg) putHTTP(k entryKey, m pcommon.Map) {
	e := a.http
	req, resp := e.GetRequest(), e.GetResponse()
	m.PutStr(schema.AttrNetworkProtocolName, "http")
	if v := e.GetProtocolVersion(); int(v) < len(httpVersions) && httpVersions[v] != "" {
		m.PutStr(schema.AttrNetworkProtocolVersion, httpVersions[v])
	}
	if k.method != corev3.RequestMethod_METHOD_UNSPECIFIED {
		m.PutStr(schema.AttrHTTPRequestMethod, k.method.String())
	}
	if resp.GetResponseCode() != nil {
		m.PutInt(schema.AttrHTTPResponseStatusCode, int64(k.status))
	}
	path, _, _ := strings.Cut(req.GetPath(), "?")
	putStr(m, schema.AttrURLPath, truncate(path, maxFieldLength))
	putStr(m, schema.AttrURLTemplate, k.template)
	putStr(m, schema.AttrURLScheme, req.GetScheme())
	putStr(m, schema.AttrServerAddress, hostOf(req.GetAuthority()))
	putStr(m, schema.AttrUserAgentOriginal, truncate(req.GetUserAgent(), maxFieldLength))
	if n := req.GetRequestBodyBytes(); n > 0 {
		m.PutInt(schema.AttrHTTPRequestBodySize, clampInt(n))
	}
	if n := resp.GetResponseBodyBytes(); n > 0 {
		m.PutInt(schema.AttrHTTPResponseBodySize, clampInt(n))
	}
	for _, h := range a.headers {
		m.PutEmptySlice(h.key).AppendEmpty().SetStr(h.value)
	}
}

func putEndpoint(m pcommon.Map, e endpointKey, ns, kind, name, pod string) {
	putStr(m, ns, e.namespace)
	switch e.kind {
	case "", "Service":
		// Services go to *.k8s.service.name, addresses are already set.
	case "Pod":
		m.PutStr(pod, e.name)
	default:
		m.PutStr(kind, e.kind)
		m.PutStr(name, e.name)
	}
}

func putStr(m pcommon.Map, key, v string) {
	if v != "" {
		m.PutStr(key, v)
	}
}

func putPort(m pcommon.Map, key string, p uint32) {
	if p != 0 {
		m.PutInt(key, int64(p))
	}
}

func clampInt(n uint64) int64 { return int64(min(n, 1<<63-1)) }
