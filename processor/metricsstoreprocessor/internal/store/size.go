package store

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/protowire"
)

// Exact protobuf sizes of the response messages, computed from the stored data so that a
// query can decide what fits under max_response_bytes before building anything. All fields
// of these messages have numbers below 16, so every tag is one byte. TestSizesMatchProto
// checks these against proto.Size.

// sizeField is the size of a length-delimited field (message, string, packed) of n bytes.
func sizeField(n int) int { return 1 + protowire.SizeBytes(n) }

func sizeString(s string) int {
	if s == "" {
		return 0
	}
	return sizeField(len(s))
}

func sizeDouble(v float64) int {
	if math.Float64bits(v) == 0 { // proto3 omits +0 but writes -0
		return 0
	}
	return 9
}

func sizeUint(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

// sizeInt is for int32/int64 fields: negative values are sign-extended to ten bytes.
func sizeInt(v int64) int { return sizeUint(uint64(v)) }

// splitMillis returns the Timestamp fields of a millisecond time.
func splitMillis(ms int64) (sec int64, nanos int32) {
	sec = ms / 1000
	rem := ms % 1000
	if rem < 0 {
		sec--
		rem += 1000
	}
	return sec, int32(rem * 1e6)
}

func sizeTimestamp(ms int64) int {
	sec, nanos := splitMillis(ms)
	return sizeInt(sec) + sizeInt(int64(nanos))
}

func sizePackedDoubles(n int) int {
	if n == 0 {
		return 0
	}
	return sizeField(8 * n)
}

func sizePackedUints(vs []uint64) int {
	if len(vs) == 0 {
		return 0
	}
	n := 0
	for _, v := range vs {
		n += protowire.SizeVarint(v)
	}
	return sizeField(n)
}

// sizePoint is the size of one OTelMetricDataPoint message as pointFrom builds it.
func sizePoint(st, t int64, v float64, a *auxPoint, kind pmetric.MetricType) int {
	n := sizeField(sizeTimestamp(t))
	if st != 0 {
		n += sizeField(sizeTimestamp(st))
	}
	if a == nil {
		return n + sizeDouble(v)
	}
	n += sizeUint(a.count)
	if a.flags&flagSum != 0 {
		n += sizeDouble(v)
	}
	if a.flags&flagMin != 0 {
		n += sizeDouble(a.min)
	}
	if a.flags&flagMax != 0 {
		n += sizeDouble(a.max)
	}
	switch kind {
	case pmetric.MetricTypeHistogram:
		n += sizePackedDoubles(len(a.bounds)) + sizePackedUints(a.counts)
	case pmetric.MetricTypeExponentialHistogram:
		e := sizeInt(int64(a.scale)) + sizeUint(a.zeroCount) + sizeDouble(a.zeroThreshold)
		e += sizeField(sizeInt(int64(a.posOffset)) + sizePackedUints(a.counts))
		e += sizeField(sizeInt(int64(a.negOffset)) + sizePackedUints(a.neg))
		n += sizeField(e)
	case pmetric.MetricTypeSummary:
		q := 0
		for i := range min(len(a.bounds), len(a.values)) {
			q += sizeField(sizeDouble(a.bounds[i]) + sizeDouble(a.values[i]))
		}
		n += sizeField(q)
	}
	return n
}
