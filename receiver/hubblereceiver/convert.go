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
//
// It is 96 bytes: a window holds one per key, and while a window is spread over half the
// next one (flowagg.Emitter) two windows' aggregates coexist, so at 20,000 keys this struct is
// most of the live heap. Its strings are therefore interned as a whole (unique.Handle, one
// pointer each): an endpoint with its labels, each address, the four policy lists; flows
// between the same workloads share them. As separate strings it was 352 bytes.
type flowAgg struct {
	flowagg.Span
	carried      uint64 // the carriedHash of the last flow merged
	src, dst     unique.Handle[endpoint]
	srcIP, dstIP unique.Handle[string]
	policies     unique.Handle[policyLists] // each policy as Relay encoded it
	port         uint32
	direction    flowpb.TrafficDirection
	verdict      flowpb.Verdict
	dropReason   flowpb.DropReason
	proto        l4
	ipv6         bool
}

// endpoint is what an aggregate keeps of one end of its flows: its part of the key, its
// security identity and its labels.
type endpoint struct {
	key      endpointKey
	identity uint32
	labels   packed
}

type policyLists [numPolicyLists]packed

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

// add merges one flow, which happened at t (Unix nanoseconds) and whose carriedHash is
// carried, into its aggregate. v and the receive buffer its strings point into are reused
// for the next flow, as are pk's buffers: unique.Make copies the strings it keeps, and each
// handle is shared with every other aggregate that keeps the same value, until none does.
func (a *flowAgg) add(k *flowKey, v *flowView, t int64, carried uint64, fresh bool, pk *packer) {
	a.Add(t)
	if !fresh && carried == a.carried {
		// What the previous flow carried is in the aggregate already. Comparing the lists
		// themselves would read the interned values, a few cache misses per flow at many keys.
		return
	}
	a.carried = carried
	if fresh {
		a.src = unique.Make(endpoint{key: k.src, identity: v.src.identity, labels: pk.union(0, "", v.src.labels)})
		a.dst = unique.Make(endpoint{key: k.dst, identity: v.dst.identity, labels: pk.union(0, "", v.dst.labels)})
		a.srcIP, a.dstIP, a.ipv6 = unique.Make(v.srcIP), unique.Make(v.dstIP), v.ipv6
		var ps policyLists
		for i := range ps {
			ps[i] = pk.union(i, "", v.rawPolicies[i])
		}
		a.policies = unique.Make(ps)
		a.port, a.proto, a.direction, a.verdict, a.dropReason = k.port, k.proto, k.direction, k.verdict, k.dropReason
		return
	}
	// Labels and policies are united over the window, in first-seen order (the first label
	// names Unmanaged endpoints). Flows of one key nearly always carry what the first one did,
	// which costs a comparison and no allocation.
	a.src = unite(a.src, v.src.labels, pk)
	a.dst = unite(a.dst, v.dst.labels, pk)
	ps := a.policies.Value()
	for i := range ps {
		if !ps[i].equal(v.rawPolicies[i]) {
			var more policyLists
			for i := range more {
				more[i] = pk.union(i, ps[i], v.rawPolicies[i])
			}
			if more != ps {
				a.policies = unique.Make(more)
			}
			break
		}
	}
}

// unite returns e with the labels of list that it lacks added.
func unite(e unique.Handle[endpoint], list []string, pk *packer) unique.Handle[endpoint] {
	ep := e.Value()
	if u := pk.union(0, ep.labels, list); len(u) != len(ep.labels) {
		ep.labels = u
		return unique.Make(ep)
	}
	return e
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
	verdict, proto := a.verdict, a.proto
	srcIP, dstIP := a.srcIP.Value(), a.dstIP.Value()
	lr.SetEventName(schema.EventNetworkFlow)
	lr.SetObservedTimestamp(observed)
	if verdict == flowpb.Verdict_FORWARDED {
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
	putStr(attrs, schema.AttrSourceAddress, srcIP)
	putStr(attrs, schema.AttrDestinationAddress, dstIP)
	if proto != l4None {
		attrs.PutStr(schema.AttrNetworkTransport, transportOf[proto])
		if proto != l4ICMPv4 && proto != l4ICMPv6 {
			attrs.PutInt(schema.AttrDestinationPort, int64(a.port))
		}
	}
	switch {
	case a.ipv6 || proto == l4ICMPv6:
		attrs.PutStr(schema.AttrNetworkType, schema.NetworkIPv6)
	case srcIP != "" || proto == l4ICMPv4:
		attrs.PutStr(schema.AttrNetworkType, schema.NetworkIPv4)
	}
	putEndpoint(attrs, a.src.Value(), endpointAttrs{
		namespace: schema.AttrSourceNamespace, pod: schema.AttrSourcePod,
		kind: schema.AttrSourceWorkloadKind, name: schema.AttrSourceWorkloadName,
		identity: schema.AttrCiliumSourceIdentity, labels: schema.AttrCiliumSourceLabels,
	})
	putEndpoint(attrs, a.dst.Value(), endpointAttrs{
		namespace: schema.AttrDestNamespace, pod: schema.AttrDestPod,
		kind: schema.AttrDestWorkloadKind, name: schema.AttrDestWorkloadName,
		identity: schema.AttrCiliumDestIdentity, labels: schema.AttrCiliumDestLabels,
	})
	attrs.PutStr(schema.AttrCiliumVerdict, verdict.String())
	if verdict == flowpb.Verdict_DROPPED {
		attrs.PutStr(schema.AttrCiliumDropReason, a.dropReason.String())
	}
	attrs.PutStr(schema.AttrCiliumTrafficDirection, a.direction.String())
	ps := a.policies.Value()
	putPolicies(attrs, schema.AttrCiliumIngressAllowedBy, ps[ingressAllowed])
	putPolicies(attrs, schema.AttrCiliumEgressAllowedBy, ps[egressAllowed])
	putPolicies(attrs, schema.AttrCiliumIngressDeniedBy, ps[ingressDenied])
	putPolicies(attrs, schema.AttrCiliumEgressDeniedBy, ps[egressDenied])
}

type endpointAttrs struct {
	namespace, pod, kind, name, identity, labels string
}

func putEndpoint(attrs pcommon.Map, ep endpoint, keys endpointAttrs) {
	k := ep.key
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
	if ep.identity != 0 {
		attrs.PutInt(keys.identity, int64(ep.identity))
	}
	if ep.labels != "" {
		s := attrs.PutEmptySlice(keys.labels)
		for l := range ep.labels.all() {
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
