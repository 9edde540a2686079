package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"iter"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// packed is a list of strings held in one string: each element as a varint length and its
// bytes. Aggregates keep their endpoints' labels and their policies (each policy as the bytes
// Relay sent it in) packed, inside values they intern (flowAgg), so the thousands of
// aggregates between the same workloads share one string instead of each holding a slice of
// its own.
type packed string

// all yields the elements in order. A packed string is only ever made by packer.union, so
// it is well formed.
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

// packer builds packed lists in buffers it reuses. What it returns is valid until its buffer
// is next used, and is only handed to unique.Make, which copies the strings of a value it
// keeps: a new aggregate whose endpoints and policies are already interned (nearly every one)
// then costs no allocation, where a copy per list was a quarter of the bytes the agent
// allocated at 20,000 flows/s.
type packer struct{ bufs [numPolicyLists][]byte }

// union returns p with the elements of list it lacks appended, in first-seen order, built in
// buffer i; p itself when nothing is new.
func (pk *packer) union(i int, p packed, list []string) packed {
	if p.equal(list) {
		return p
	}
	b := pk.bufs[i][:0]
	b = append(b, p...)
	for _, e := range list {
		if !bytesView(b).contains(e) {
			b = protowire.AppendString(b, e)
		}
	}
	pk.bufs[i] = b
	if len(b) == len(p) {
		return p
	}
	return bytesView(b)
}

// bytesView reads b as a packed list without copying it.
func bytesView(b []byte) packed {
	return packed(unsafe.String(unsafe.SliceData(b), len(b))) //nolint:gosec // read before b changes; see packer
}
