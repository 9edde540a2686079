package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"hash/maphash"
	"strings"
	"unicode/utf8"
	"unique"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// Endpoint kinds for endpoints without a workload, as the protocol names them
// (docs/protocol.md#flow).
const (
	kindPod       = "Pod"
	kindUnmanaged = "Unmanaged"
	kindUnknown   = "Unknown"
)

// l4 is the flow's L4 protocol.
type l4 uint8

const (
	l4None l4 = iota
	l4TCP
	l4UDP
	l4SCTP
	l4ICMPv4
	l4ICMPv6
)

// endpointKey identifies one end of a flow: its workload, else its pod, else (for endpoints
// outside Kubernetes such as world or host) its first label and IP address, since the IP is
// all that tells those apart, else its security identity and IP.
type endpointKey struct {
	namespace, kind, name string
	identity              uint32
	ip                    string
}

// flowKey is what flows are aggregated by. It never contains the source port: that is
// ephemeral, and keying on it (as the old operator did) defeats aggregation.
type flowKey struct {
	src, dst   endpointKey
	port       uint32
	proto      l4
	direction  flowpb.TrafficDirection
	verdict    flowpb.Verdict
	dropReason flowpb.DropReason
}

// aggKey is what the window's map is keyed by: a 128-bit hash of the flowKey. A flowKey
// holds eight strings, and with thousands of keys comparing them on every lookup missed the
// CPU caches for each string (its bytes live elsewhere); the hash is computed from the flow's
// own strings, which are in cache, and the map of 16-byte keys has no pointers to follow. Two
// of n keys of a window colliding has a probability of about n²/2¹²⁹ (10⁻²⁹ for 100,000 keys).
type aggKey struct{ lo, hi uint64 }

// keyHasher hashes flowKeys with two seeds of its own.
type keyHasher struct{ lo, hi maphash.Seed }

func newKeyHasher() keyHasher { return keyHasher{maphash.MakeSeed(), maphash.MakeSeed()} }

func (h keyHasher) of(k *flowKey) aggKey {
	return aggKey{maphash.Comparable(h.lo, *k), maphash.Comparable(h.hi, *k)}
}

// flowAgg is the aggregate of one key. Addresses are those of the first flow (the key may
// span several pods of a workload); labels and policies are united over the window.
type flowAgg struct {
	flowagg.Span
	key          flowKey // with strings of its own (ownKey)
	srcIP, dstIP string
	ipv6         bool
	src, dst     endpointInfo
	policies     [numPolicyLists]packed // each policy as Relay encoded it
}

type endpointInfo struct {
	identity uint32
	labels   packed
}

func endpointIdentity(ep *endpointView, ip string) endpointKey {
	switch {
	case ep.workloadName != "":
		return endpointKey{namespace: ep.namespace, kind: ep.workloadKind, name: ep.workloadName}
	case ep.podName != "":
		return endpointKey{namespace: ep.namespace, kind: kindPod, name: ep.podName}
	case len(ep.labels) > 0:
		return endpointKey{namespace: ep.namespace, kind: kindUnmanaged, name: ep.labels[0], ip: ip}
	}
	return endpointKey{namespace: ep.namespace, kind: kindUnknown, identity: ep.identity, ip: ip}
}

// keyOf returns the aggregation key of a flow.
func keyOf(v *flowView) flowKey {
	reason := v.dropReason
	if v.verdict != flowpb.Verdict_DROPPED {
		// Only drops have a reason; ignore stray values so they cannot split aggregates.
		reason = flowpb.DropReason_DROP_REASON_UNKNOWN
	}
	return flowKey{
		src:        endpointIdentity(&v.src, v.srcIP),
		dst:        endpointIdentity(&v.dst, v.dstIP),
		port:       v.port,
		proto:      v.proto,
		direction:  v.direction,
		verdict:    v.verdict,
		dropReason: reason,
	}
}

// intern returns s as a string of its own, shared with every other aggregate that keeps the
// same string: s points into the receive buffer, which the next message overwrites. Names,
// labels and policies repeat across thousands of aggregates, and unique drops its copy once
// no aggregate uses it any more.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

func (e endpointKey) owned() endpointKey {
	e.namespace, e.kind, e.name, e.ip = intern(e.namespace), intern(e.kind), intern(e.name), intern(e.ip)
	return e
}

// ownKey is what an aggregate keeps of its key: the key with strings of its own.
func ownKey(k flowKey) flowKey {
	k.src, k.dst = k.src.owned(), k.dst.owned()
	return k
}

// add merges one flow, which happened at t (Unix nanoseconds), into its aggregate. v and the
// receive buffer its strings point into are reused for the next flow, so whatever the
// aggregate keeps is copied out of them.
func (a *flowAgg) add(k *flowKey, v *flowView, t int64, fresh bool) {
	a.Add(t)
	if fresh {
		a.key = ownKey(*k)
		a.srcIP, a.dstIP, a.ipv6 = intern(v.srcIP), intern(v.dstIP), v.ipv6
		a.src.identity = v.src.identity
		a.dst.identity = v.dst.identity
	}
	// Labels and policies are united over the window, in first-seen order (the first label
	// names Unmanaged endpoints). Flows of one key nearly always carry what the first one did,
	// which costs a comparison and no allocation.
	a.src.labels = a.src.labels.union(v.src.labels)
	a.dst.labels = a.dst.labels.union(v.dst.labels)
	for i := range a.policies {
		a.policies[i] = a.policies[i].union(v.rawPolicies[i])
	}
}

var transportOf = [...]string{
	l4TCP:    schema.TransportTCP,
	l4UDP:    schema.TransportUDP,
	l4SCTP:   schema.TransportSCTP,
	l4ICMPv4: schema.TransportICMP,
	l4ICMPv6: schema.TransportICMP,
}

// maxFlowAttrs is the most attributes toRecord writes: the aggregate's two, five of the
// connection, five of each endpoint, verdict, drop reason and direction, four policy lists.
const maxFlowAttrs = 2 + 5 + 2*5 + 3 + 4

// toRecord writes one aggregate as a kestrelai.network.flow record.
func toRecord(_ aggKey, a *flowAgg, lr plog.LogRecord, observed pcommon.Timestamp) {
	k := &a.key
	lr.SetEventName(schema.EventNetworkFlow)
	lr.SetObservedTimestamp(observed)
	if k.verdict == flowpb.Verdict_FORWARDED {
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
	} else {
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
	}
	attrs := lr.Attributes()
	// A record has at most maxFlowAttrs attributes: room for all of them at once costs less
	// than growing the slice five times, and a window's records are all in memory while it
	// is sent.
	attrs.EnsureCapacity(maxFlowAttrs)
	a.Put(lr)
	putStr(attrs, schema.AttrSourceAddress, a.srcIP)
	putStr(attrs, schema.AttrDestinationAddress, a.dstIP)
	if k.proto != l4None {
		attrs.PutStr(schema.AttrNetworkTransport, transportOf[k.proto])
		if k.proto != l4ICMPv4 && k.proto != l4ICMPv6 {
			attrs.PutInt(schema.AttrDestinationPort, int64(k.port))
		}
	}
	switch {
	case a.ipv6 || k.proto == l4ICMPv6:
		attrs.PutStr(schema.AttrNetworkType, schema.NetworkIPv6)
	case a.srcIP != "" || k.proto == l4ICMPv4:
		attrs.PutStr(schema.AttrNetworkType, schema.NetworkIPv4)
	}
	putEndpoint(attrs, k.src, a.src, endpointAttrs{
		namespace: schema.AttrSourceNamespace, pod: schema.AttrSourcePod,
		kind: schema.AttrSourceWorkloadKind, name: schema.AttrSourceWorkloadName,
		identity: schema.AttrCiliumSourceIdentity, labels: schema.AttrCiliumSourceLabels,
	})
	putEndpoint(attrs, k.dst, a.dst, endpointAttrs{
		namespace: schema.AttrDestNamespace, pod: schema.AttrDestPod,
		kind: schema.AttrDestWorkloadKind, name: schema.AttrDestWorkloadName,
		identity: schema.AttrCiliumDestIdentity, labels: schema.AttrCiliumDestLabels,
	})
	attrs.PutStr(schema.AttrCiliumVerdict, k.verdict.String())
	if k.verdict == flowpb.Verdict_DROPPED {
		attrs.PutStr(schema.AttrCiliumDropReason, k.dropReason.String())
	}
	attrs.PutStr(schema.AttrCiliumTrafficDirection, k.direction.String())
	putPolicies(attrs, schema.AttrCiliumIngressAllowedBy, a.policies[ingressAllowed])
	putPolicies(attrs, schema.AttrCiliumEgressAllowedBy, a.policies[egressAllowed])
	putPolicies(attrs, schema.AttrCiliumIngressDeniedBy, a.policies[ingressDenied])
	putPolicies(attrs, schema.AttrCiliumEgressDeniedBy, a.policies[egressDenied])
}

type endpointAttrs struct {
	namespace, pod, kind, name, identity, labels string
}

func putEndpoint(attrs pcommon.Map, k endpointKey, info endpointInfo, keys endpointAttrs) {
	putStr(attrs, keys.namespace, k.namespace)
	switch k.kind {
	case kindPod:
		attrs.PutStr(keys.pod, validUTF8(k.name))
	case kindUnmanaged, kindUnknown:
		// Identified by labels, identity and address only.
	default:
		attrs.PutStr(keys.kind, validUTF8(k.kind))
		attrs.PutStr(keys.name, validUTF8(k.name))
	}
	if info.identity != 0 {
		attrs.PutInt(keys.identity, int64(info.identity))
	}
	if info.labels != "" {
		s := attrs.PutEmptySlice(keys.labels)
		for l := range info.labels.all() {
			s.AppendEmpty().SetStr(validUTF8(l))
		}
	}
}

func putPolicies(attrs pcommon.Map, key string, ps packed) {
	if ps == "" {
		return
	}
	s := attrs.PutEmptySlice(key)
	var p policyView
	for raw := range ps.all() {
		// The bytes were parsed when the flow arrived.
		p = policyView{labels: p.labels[:0]}
		_ = p.parse([]byte(raw))
		m := s.AppendEmpty().SetEmptyMap()
		m.PutStr(schema.PolicyName, validUTF8(p.name))
		putStr(m, schema.PolicyNamespace, p.namespace)
		putStr(m, schema.PolicyKind, p.kind)
		m.PutInt(schema.PolicyRevision, int64(min(p.revision, 1<<63-1)))
		if len(p.labels) > 0 {
			ls := m.PutEmptySlice(schema.PolicyLabels)
			for _, l := range p.labels {
				ls.AppendEmpty().SetStr(validUTF8(l))
			}
		}
	}
}

func putStr(attrs pcommon.Map, key, v string) {
	if v != "" {
		attrs.PutStr(key, validUTF8(v))
	}
}

// validUTF8 repairs strings that are not UTF-8: flows are decoded without the check that
// generated code does, and OTLP needs valid strings.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
