package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"errors"
	"hash/maphash"
	"math"
	"unsafe"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Flows are decoded straight from the wire into a reused flowView instead of a *flowpb.Flow:
// generated code allocates every string, label, workload and policy of every flow (about 40
// allocations for a flow with two policies), while the receiver needs most of them only for
// the first flow of an aggregate. The view's strings point into the receive buffer, which the
// next message overwrites: whatever outlives one message (an aggregate's key, addresses,
// labels and policies) is copied out of it when it is first stored, and nothing keeps a
// reference into a received message once its flow is aggregated.

// frame is a GetFlowsResponse as received, undecoded.
type frame []byte

// frameCodec receives GetFlowsResponses as frames and sends requests with gRPC's proto codec.
type frameCodec struct{ encoding.CodecV2 }

func newFrameCodec() frameCodec { return frameCodec{encoding.GetCodecV2(grpcproto.Name)} }

// maxKeptFrame is the largest receive buffer kept for the next message: flows are a few
// hundred bytes, and one unusually large message must not pin its buffer for good.
const maxKeptFrame = 64 << 10

// Unmarshal copies the message into the frame's own buffer, which the receiver reuses for
// every message of its stream: gRPC frees data when Unmarshal returns, and a fresh buffer per
// message would be garbage at the rate flows arrive.
func (c frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*frame); ok {
		b := (*f)[:0]
		if n := data.Len(); cap(b) < n || cap(b) > maxKeptFrame && n <= maxKeptFrame {
			b = make([]byte, 0, max(n, 1024))
		}
		for _, buf := range data {
			b = append(b, buf.ReadOnlyData()...)
		}
		*f = b
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// Field numbers of the messages read here (cilium/api/v1/flow/flow.proto, observer.proto).
const (
	respFlow       = 1
	respNodeStatus = 2
	respLostEvents = 3
	respNodeName   = 1000
	respTime       = 1001

	flowTime             = 1
	flowVerdict          = 2
	flowIP               = 5
	flowL4               = 6
	flowSource           = 8
	flowDestination      = 9
	flowTrafficDirection = 22
	flowDropReasonDesc   = 25
	flowIsReply          = 26
	flowUUID             = 34
	flowEgressAllowedBy  = 21001
	flowIngressAllowedBy = 21002
	flowEgressDeniedBy   = 21004
	flowIngressDeniedBy  = 21005
)

// policy lists of a flow, in flowView.policies.
const (
	ingressAllowed = iota
	egressAllowed
	ingressDenied
	egressDenied
	numPolicyLists
)

type endpointView struct {
	identity                   uint32
	namespace, podName         string
	workloadName, workloadKind string // the first workload
	labels                     []string
}

type policyView struct {
	name, namespace, kind string
	revision              uint64
	labels                []string
}

// flowView is the part of a Hubble flow the receiver uses.
type flowView struct {
	time, respTime      int64 // Unix nanoseconds
	hasTime, hasResp    bool
	uuid                string
	verdict             flowpb.Verdict
	dropReason          flowpb.DropReason
	srcIP, dstIP        string
	ipv6                bool
	proto               l4
	port                uint32
	direction           flowpb.TrafficDirection
	isReply, hasIsReply bool
	src, dst            endpointView
	policies            [numPolicyLists][]policyView
	rawPolicies         [numPolicyLists][]string // each policy's bytes, as aggregates keep them
}

// carriedHash hashes what a flow carries beyond its aggregation key: its endpoints' labels and
// its policies, each element hashed on its own and the list lengths mixed in. Two flows with
// the same hash carry the same lists but with a probability of about 2⁻⁶⁴ per pair, so an
// aggregate skips uniting the lists of a flow whose hash it has just seen.
func (v *flowView) carriedHash(seed maphash.Seed) uint64 {
	h := hashList(0, seed, v.src.labels)
	h = hashList(h, seed, v.dst.labels)
	for _, l := range v.rawPolicies {
		h = hashList(h, seed, l)
	}
	return h
}

// hashList mixes the length of l and the hash of each of its elements into h.
func hashList(h uint64, seed maphash.Seed, l []string) uint64 {
	const k = 0x9e3779b97f4a7c15 // odd: multiplying by it loses no bits
	h = (h ^ uint64(len(l))) * k
	for _, e := range l {
		h = (h ^ maphash.String(seed, e)) * k
	}
	return h
}

// response is one decoded GetFlowsResponse: a flow (in view), or the bytes of the rarer
// node status and lost-event messages, decoded with generated code by the caller.
type response struct {
	isFlow     bool
	nodeStatus []byte
	lostEvents []byte
	nodeName   string
}

var errTruncated = errors.New("truncated or malformed protobuf")

// unsafeString views b as a string without copying. b is always part of the frame being
// handled, which is not written to until the next message arrives; strings kept beyond that
// are copied first (see flowAgg.add).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b)) //nolint:gosec // see above: a frame is not written while its strings are used
}

// skip is returned by a field callback for fields it does not read.
const skip = math.MinInt32

// fields walks the fields of one message; fn consumes the value of the fields it knows and
// returns how many bytes it consumed (negative on malformed input), or skip.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, b []byte) int) error {
	for len(b) > 0 {
		num, typ, n := protowire.Number(b[0]>>3), protowire.Type(b[0]&7), 1
		if b[0] >= 0x80 {
			num, typ, n = protowire.ConsumeTag(b)
		}
		if n < 0 || num == 0 {
			return errTruncated
		}
		b = b[n:]
		n = fn(num, typ, b)
		if n == skip {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
	}
	return nil
}

// consumeVarint and consumeBytes are protowire's with the one-byte case first, as fields has
// for tags: nearly every tag, length and enum of a flow is one byte, and they run for every
// field of every flow.
func consumeVarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return protowire.ConsumeVarint(b)
}

func consumeBytes(b []byte) ([]byte, int) {
	if len(b) > 0 && b[0] < 0x80 {
		n := int(b[0])
		if len(b)-1 < n {
			return nil, -1
		}
		return b[1 : 1+n], 1 + n
	}
	return protowire.ConsumeBytes(b)
}

// parse decodes a GetFlowsResponse frame into resp and, for flows, v (which is reset).
func (v *flowView) parse(b []byte, resp *response) error {
	*resp = response{}
	v.reset()
	return fields(b, func(num protowire.Number, typ protowire.Type, b []byte) int {
		if typ == protowire.BytesType {
			val, n := consumeBytes(b)
			if n < 0 {
				return n
			}
			switch num {
			case respFlow:
				resp.isFlow = true
				if v.parseFlow(val) != nil {
					return -1
				}
			case respNodeStatus:
				resp.nodeStatus = val
			case respLostEvents:
				resp.lostEvents = val
			case respNodeName:
				resp.nodeName = unsafeString(val)
			case respTime:
				v.respTime, v.hasResp = parseTimestamp(val), true
			}
			return n
		}
		return skip
	})
}

func (v *flowView) reset() {
	src, dst, policies, raw := v.src.labels[:0], v.dst.labels[:0], v.policies, v.rawPolicies
	*v = flowView{}
	v.src.labels, v.dst.labels = src, dst
	for i := range policies {
		v.policies[i] = policies[i][:0]
		v.rawPolicies[i] = raw[i][:0]
	}
}

func (v *flowView) parseFlow(b []byte) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, b []byte) int {
		switch typ {
		case protowire.VarintType:
			x, n := consumeVarint(b)
			switch num {
			case flowVerdict:
				v.verdict = flowpb.Verdict(int32(x))
			case flowTrafficDirection:
				v.direction = flowpb.TrafficDirection(int32(x))
			case flowDropReasonDesc:
				v.dropReason = flowpb.DropReason(int32(x))
			}
			return n
		case protowire.BytesType:
			val, n := consumeBytes(b)
			if n < 0 {
				return n
			}
			var err error
			switch num {
			case flowTime:
				v.time, v.hasTime = parseTimestamp(val), true
			case flowUUID:
				v.uuid = unsafeString(val)
			case flowIP:
				err = v.parseIP(val)
			case flowL4:
				err = v.parseL4(val)
			case flowSource:
				err = v.src.parse(val)
			case flowDestination:
				err = v.dst.parse(val)
			case flowIsReply:
				v.hasIsReply = true
				err = fields(val, func(num protowire.Number, typ protowire.Type, b []byte) int {
					if num != 1 || typ != protowire.VarintType {
						return skip
					}
					x, n := consumeVarint(b)
					v.isReply = x != 0
					return n
				})
			case flowIngressAllowedBy:
				err = v.appendPolicy(ingressAllowed, val)
			case flowEgressAllowedBy:
				err = v.appendPolicy(egressAllowed, val)
			case flowIngressDeniedBy:
				err = v.appendPolicy(ingressDenied, val)
			case flowEgressDeniedBy:
				err = v.appendPolicy(egressDenied, val)
			}
			if err != nil {
				return -1
			}
			return n
		}
		return skip
	})
}

// parseTimestamp decodes a google.protobuf.Timestamp into Unix nanoseconds.
func parseTimestamp(b []byte) int64 {
	var sec, nanos int64
	_ = fields(b, func(num protowire.Number, typ protowire.Type, b []byte) int {
		if typ != protowire.VarintType || (num != 1 && num != 2) {
			return skip
		}
		x, n := consumeVarint(b)
		if num == 1 {
			sec = int64(x)
		} else {
			nanos = int64(int32(x))
		}
		return n
	})
	return sec*1e9 + nanos
}

func (v *flowView) parseIP(b []byte) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, b []byte) int {
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			val, n := consumeBytes(b)
			if num == 1 {
				v.srcIP = unsafeString(val)
			} else {
				v.dstIP = unsafeString(val)
			}
			return n
		case num == 3 && typ == protowire.VarintType:
			x, n := consumeVarint(b)
			v.ipv6 = flowpb.IPVersion(int32(x)) == flowpb.IPVersion_IPv6
			return n
		}
		return skip
	})
}

// l4Fields are the Layer4 oneof's members in field-number order (TCP=1 ... IGMP=7).
var l4Fields = [...]l4{1: l4TCP, 2: l4UDP, 3: l4ICMPv4, 4: l4ICMPv6, 5: l4SCTP, 6: l4None, 7: l4None}

func (v *flowView) parseL4(b []byte) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, b []byte) int {
		if typ != protowire.BytesType || num < 1 || int(num) >= len(l4Fields) {
			return skip
		}
		val, n := consumeBytes(b)
		// A oneof: the last member wins, with its own port.
		v.proto, v.port = l4Fields[num], 0
		if v.proto == l4TCP || v.proto == l4UDP || v.proto == l4SCTP {
			if fields(val, func(num protowire.Number, typ protowire.Type, b []byte) int {
				if num != 2 || typ != protowire.VarintType {
					return skip
				}
				x, n := consumeVarint(b)
				v.port = uint32(x)
				return n
			}) != nil {
				return -1
			}
		}
		return n
	})
}

func (e *endpointView) parse(b []byte) error {
	seenWorkload := e.workloadName != "" || e.workloadKind != ""
	return fields(b, func(num protowire.Number, typ protowire.Type, b []byte) int {
		if num == 2 && typ == protowire.VarintType {
			x, n := consumeVarint(b)
			e.identity = uint32(x)
			return n
		}
		if typ != protowire.BytesType {
			return skip
		}
		val, n := consumeBytes(b)
		switch num {
		case 3:
			e.namespace = unsafeString(val)
		case 4:
			e.labels = append(e.labels, unsafeString(val))
		case 5:
			e.podName = unsafeString(val)
		case 6:
			if seenWorkload {
				return n
			}
			seenWorkload = true
			if fields(val, func(num protowire.Number, typ protowire.Type, b []byte) int {
				if (num != 1 && num != 2) || typ != protowire.BytesType {
					return skip
				}
				s, n := consumeBytes(b)
				if num == 1 {
					e.workloadName = unsafeString(s)
				} else {
					e.workloadKind = unsafeString(s)
				}
				return n
			}) != nil {
				return -1
			}
		}
		return n
	})
}

func (v *flowView) appendPolicy(list int, b []byte) error {
	ps := v.policies[list]
	if len(ps) < cap(ps) {
		ps = ps[:len(ps)+1]
		labels := ps[len(ps)-1].labels[:0]
		ps[len(ps)-1] = policyView{labels: labels}
	} else {
		ps = append(ps, policyView{})
	}
	v.policies[list] = ps
	v.rawPolicies[list] = append(v.rawPolicies[list], unsafeString(b))
	return ps[len(ps)-1].parse(b)
}

// parse decodes a flow.Policy into p, appending to p.labels.
func (p *policyView) parse(b []byte) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, b []byte) int {
		if num == 4 && typ == protowire.VarintType {
			x, n := consumeVarint(b)
			p.revision = x
			return n
		}
		if typ != protowire.BytesType {
			return skip
		}
		val, n := consumeBytes(b)
		switch num {
		case 1:
			p.name = unsafeString(val)
		case 2:
			p.namespace = unsafeString(val)
		case 3:
			p.labels = append(p.labels, unsafeString(val))
		case 5:
			p.kind = unsafeString(val)
		}
		return n
	})
}
