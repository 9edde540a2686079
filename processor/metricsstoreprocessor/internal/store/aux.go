package store

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"slices"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The side stream of histogram, exponential histogram and summary series. The chunk already
// holds the timestamps and the sum; each point here is encoded against the previous one:
//
//	flags byte (has min / max / sum)
//	count: zig-zag varint of the difference to the previous count
//	min, max (when present): float, see appendFloat
//	histogram:   bounds (float vector), bucket counts (uint vector)
//	exponential: scale (varint), zero count (delta), zero threshold (float),
//	             positive offset (varint), counts (uint vector), negative offset, counts
//	summary:     quantiles (float vector), values (float vector)
//
// A vector is one header byte 0 when it equals the previous point's (bounds nearly always
// do), uvarint(n<<2|1) followed by per-element differences when only the values moved, or
// uvarint(n<<2|2) followed by the elements. Typical cost: a 12-bucket histogram whose counts
// move by small amounts takes 15–25 bytes per point on top of its chunk sample.

const (
	flagMin = 1 << iota
	flagMax
	flagSum
)

const (
	vecSame = iota
	vecDelta
	vecAbsolute
)

// auxOverhead approximates the fixed heap cost of an auxStream.
const auxOverhead = 160

// auxPoint is the decoded side-stream part of one point. Summaries keep quantiles in bounds
// and their values in values; exponential histograms keep positive counts in counts.
type auxPoint struct {
	flags                uint8
	count                uint64
	min, max             float64
	bounds               []float64
	counts               []uint64
	values               []float64
	scale                int32
	zeroCount            uint64
	zeroThreshold        float64
	posOffset, negOffset int32
	neg                  []uint64
}

func (p *auxPoint) reset() {
	*p = auxPoint{bounds: p.bounds[:0], counts: p.counts[:0], values: p.values[:0], neg: p.neg[:0]}
}

// advance makes p the reference for the next point after q was encoded or decoded. Absent
// min/max keep the previous reference on both sides, so encoder and decoder stay in step.
func (p *auxPoint) advance(q *auxPoint) {
	p.flags, p.count = q.flags, q.count
	if q.flags&flagMin != 0 {
		p.min = q.min
	}
	if q.flags&flagMax != 0 {
		p.max = q.max
	}
	p.bounds = append(p.bounds[:0], q.bounds...)
	p.counts = append(p.counts[:0], q.counts...)
	p.values = append(p.values[:0], q.values...)
	p.neg = append(p.neg[:0], q.neg...)
	p.scale, p.zeroCount, p.zeroThreshold = q.scale, q.zeroCount, q.zeroThreshold
	p.posOffset, p.negOffset = q.posOffset, q.negOffset
}

type auxStream struct {
	kind pmetric.MetricType
	buf  []byte
	prev auxPoint
}

func (a *auxStream) bytes() int64 {
	return int64(auxOverhead + cap(a.buf) +
		8*(cap(a.prev.bounds)+cap(a.prev.counts)+cap(a.prev.values)+cap(a.prev.neg)))
}

// restart drops all points; the old buffer is left to whoever still reads it.
func (a *auxStream) restart() {
	a.buf = nil
	a.prev.reset()
}

// append encodes p after the last point. scratch is a reusable encoding buffer.
func (a *auxStream) append(p *auxPoint, scratch []byte) []byte {
	enc := a.encode(scratch[:0], p)
	if cap(a.buf)-len(a.buf) < len(enc) {
		nb := make([]byte, len(a.buf), allocSize(len(a.buf)+len(enc)+max(32, len(a.buf)/8)))
		copy(nb, a.buf)
		a.buf = nb
	}
	a.buf = append(a.buf, enc...)
	a.prev.advance(p)
	return enc
}

func (a *auxStream) encode(dst []byte, p *auxPoint) []byte {
	q := &a.prev
	dst = append(dst, p.flags)
	dst = binary.AppendVarint(dst, int64(p.count-q.count))
	if p.flags&flagMin != 0 {
		dst = appendFloat(dst, p.min, q.min)
	}
	if p.flags&flagMax != 0 {
		dst = appendFloat(dst, p.max, q.max)
	}
	switch a.kind {
	case pmetric.MetricTypeHistogram:
		dst = appendFloatVec(dst, p.bounds, q.bounds)
		dst = appendUintVec(dst, p.counts, q.counts)
	case pmetric.MetricTypeExponentialHistogram:
		dst = binary.AppendVarint(dst, int64(p.scale))
		dst = binary.AppendVarint(dst, int64(p.zeroCount-q.zeroCount))
		dst = appendFloat(dst, p.zeroThreshold, q.zeroThreshold)
		dst = binary.AppendVarint(dst, int64(p.posOffset))
		dst = appendUintVec(dst, p.counts, q.counts)
		dst = binary.AppendVarint(dst, int64(p.negOffset))
		dst = appendUintVec(dst, p.neg, q.neg)
	case pmetric.MetricTypeSummary:
		dst = appendFloatVec(dst, p.bounds, q.bounds)
		dst = appendFloatVec(dst, p.values, q.values)
	}
	return dst
}

// appendFloat writes v as its XOR with prev: one byte 0 when equal, otherwise one byte with
// the number of trailing zero bits plus one, then the remaining bits as a uvarint.
func appendFloat(dst []byte, v, prev float64) []byte {
	x := math.Float64bits(v) ^ math.Float64bits(prev)
	if x == 0 {
		return append(dst, 0)
	}
	tz := bits.TrailingZeros64(x)
	dst = append(dst, byte(tz+1))
	return binary.AppendUvarint(dst, x>>tz)
}

func appendFloatVec(dst []byte, cur, prev []float64) []byte {
	switch {
	case slices.EqualFunc(cur, prev, func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }):
		return append(dst, vecSame)
	case len(cur) == len(prev):
		dst = binary.AppendUvarint(dst, uint64(len(cur))<<2|vecDelta)
		for i, v := range cur {
			dst = appendFloat(dst, v, prev[i])
		}
	default:
		dst = binary.AppendUvarint(dst, uint64(len(cur))<<2|vecAbsolute)
		var last float64
		for _, v := range cur {
			dst = appendFloat(dst, v, last)
			last = v
		}
	}
	return dst
}

func appendUintVec(dst []byte, cur, prev []uint64) []byte {
	switch {
	case slices.Equal(cur, prev):
		return append(dst, vecSame)
	case len(cur) == len(prev):
		dst = binary.AppendUvarint(dst, uint64(len(cur))<<2|vecDelta)
		for i, v := range cur {
			dst = binary.AppendVarint(dst, int64(v-prev[i]))
		}
	default:
		dst = binary.AppendUvarint(dst, uint64(len(cur))<<2|vecAbsolute)
		for _, v := range cur {
			dst = binary.AppendUvarint(dst, v)
		}
	}
	return dst
}

var errCorrupt = errors.New("corrupt histogram stream")

// auxDecoder reads an auxStream's buffer point by point. cur is both the decoded point and
// the reference for the next one.
type auxDecoder struct {
	kind pmetric.MetricType
	buf  []byte
	off  int
	cur  auxPoint
	err  error
}

func (d *auxDecoder) reset(buf []byte, kind pmetric.MetricType) {
	d.kind, d.buf, d.off, d.err = kind, buf, 0, nil
	d.cur.reset()
}

// next decodes the next point. After an error (only possible on bytes this package did not
// write) it keeps returning the last good point.
func (d *auxDecoder) next() *auxPoint {
	if d.err != nil {
		return &d.cur
	}
	p := &d.cur
	p.flags = d.byte()
	p.count += uint64(d.varint())
	if p.flags&flagMin != 0 {
		p.min = d.float(p.min)
	}
	if p.flags&flagMax != 0 {
		p.max = d.float(p.max)
	}
	switch d.kind {
	case pmetric.MetricTypeHistogram:
		p.bounds = d.floatVec(p.bounds)
		p.counts = d.uintVec(p.counts)
	case pmetric.MetricTypeExponentialHistogram:
		p.scale = int32(d.varint())
		p.zeroCount += uint64(d.varint())
		p.zeroThreshold = d.float(p.zeroThreshold)
		p.posOffset = int32(d.varint())
		p.counts = d.uintVec(p.counts)
		p.negOffset = int32(d.varint())
		p.neg = d.uintVec(p.neg)
	case pmetric.MetricTypeSummary:
		p.bounds = d.floatVec(p.bounds)
		p.values = d.floatVec(p.values)
	}
	return p
}

func (d *auxDecoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
}

func (d *auxDecoder) byte() byte {
	if d.err != nil || d.off >= len(d.buf) {
		d.fail()
		return 0
	}
	d.off++
	return d.buf[d.off-1]
}

func (d *auxDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *auxDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *auxDecoder) float(prev float64) float64 {
	h := d.byte()
	if h == 0 || d.err != nil {
		return prev
	}
	if h > 64 {
		d.fail()
		return prev
	}
	x := d.uvarint() << (h - 1)
	return math.Float64frombits(math.Float64bits(prev) ^ x)
}

// vecHeader returns the mode and length of a vector whose previous value had length prevLen.
func (d *auxDecoder) vecHeader(prevLen int) (mode, n int) {
	h := d.uvarint()
	mode = int(h & 3)
	// Every element takes at least one byte, which bounds n on corrupt input.
	if h>>2 > uint64(len(d.buf)-d.off) || mode > vecAbsolute || (mode == vecDelta && int(h>>2) != prevLen) {
		d.fail()
		return vecSame, prevLen
	}
	if mode == vecSame {
		return vecSame, prevLen
	}
	return mode, int(h >> 2)
}

func (d *auxDecoder) floatVec(v []float64) []float64 {
	switch mode, n := d.vecHeader(len(v)); mode {
	case vecDelta:
		for i := range v {
			v[i] = d.float(v[i])
		}
	case vecAbsolute:
		v = v[:0]
		var last float64
		for range n {
			last = d.float(last)
			v = append(v, last)
		}
	}
	return v
}

func (d *auxDecoder) uintVec(v []uint64) []uint64 {
	switch mode, n := d.vecHeader(len(v)); mode {
	case vecDelta:
		for i := range v {
			v[i] += uint64(d.varint())
		}
	case vecAbsolute:
		v = v[:0]
		for range n {
			v = append(v, d.uvarint())
		}
	}
	return v
}
