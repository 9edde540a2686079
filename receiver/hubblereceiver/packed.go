package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"iter"

	"google.golang.org/protobuf/encoding/protowire"
)

// packed is a list of strings held in one string: each element as a varint length and its
// bytes. Aggregates keep their endpoints' labels and their policies (each policy as the bytes
// Relay sent it in) packed, inside values they intern (flowAgg), so the thousands of
// aggregates between the same workloads share one string instead of each holding a slice of
// its own.
type packed string

// all yields the elements in order. A packed string is only ever made by union, so it is
// well formed.
func (p packed) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		s := string(p)
		for s != "" {
			n, k := consumeLen(s)
			if k < 0 || len(s)-k < n {
				return
			}
			if !yield(s[k : k+n]) {
				return
			}
			s = s[k+n:]
		}
	}
}

// equal reports whether p holds exactly list, in order: the case of nearly every flow, which
// carries what the first flow of its aggregate carried.
func (p packed) equal(list []string) bool {
	s := string(p)
	for _, e := range list {
		n, k := consumeLen(s)
		if k < 0 || n != len(e) || len(s)-k < n || s[k:k+n] != e {
			return false
		}
		s = s[k+n:]
	}
	return s == ""
}

// consumeLen decodes the varint length at the start of s: the length and the varint's size,
// or k < 0 when s does not start with one that fits an int.
func consumeLen(s string) (n, k int) {
	var x uint64
	for i := 0; i < len(s) && i < 9; i++ {
		x |= uint64(s[i]&0x7f) << (7 * i)
		if s[i] < 0x80 {
			if x > uint64(len(s)) {
				return 0, -1
			}
			return int(x), i + 1 //nolint:gosec // x ≤ len(s), checked above
		}
	}
	return 0, -1
}

func (p packed) contains(e string) bool {
	for have := range p.all() {
		if have == e {
			return true
		}
	}
	return false
}

// union returns p with the elements of list it lacks appended, in first-seen order. A new
// result is a copy: it outlives list, whose strings point into the receive buffer.
func (p packed) union(list []string) packed {
	if p.equal(list) {
		return p
	}
	b := []byte(p)
	for _, e := range list {
		if !p.contains(e) && !packed(b).contains(e) {
			b = protowire.AppendString(b, e)
		}
	}
	if len(b) == len(p) {
		return p
	}
	return packed(b)
}
