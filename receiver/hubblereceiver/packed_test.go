package hubblereceiver

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPackedUnion(t *testing.T) {
	var p packed
	assert.True(t, p.equal(nil))
	assert.Empty(t, slices.Collect(p.all()))

	p = p.union([]string{"k8s:app=web", "", "reserved:world"})
	assert.Equal(t, []string{"k8s:app=web", "", "reserved:world"}, slices.Collect(p.all()))
	assert.True(t, p.equal([]string{"k8s:app=web", "", "reserved:world"}))
	assert.False(t, p.equal([]string{"k8s:app=web", ""}))
	assert.False(t, p.equal([]string{"k8s:app=web", "", "reserved:world", "x"}))

	same := p.union([]string{"reserved:world", "k8s:app=web"})
	assert.Equal(t, p, same, "nothing new: the same string")
	more := p.union([]string{"k8s:tier=db", "k8s:app=web", "k8s:tier=db"})
	assert.Equal(t, []string{"k8s:app=web", "", "reserved:world", "k8s:tier=db"}, slices.Collect(more.all()),
		"first-seen order, each once")

	long := strings.Repeat("x", 300) // a two-byte length
	assert.Equal(t, []string{long}, slices.Collect(packed("").union([]string{long}).all()))
}

func TestPackedUnionCopies(t *testing.T) {
	buf := []byte("k8s:app=web")
	a := packed("").union([]string{unsafeString(buf)})
	b := packed("").union([]string{"k8s:app=web"})
	copy(buf, "overwritten")
	assert.Equal(t, []string{"k8s:app=web"}, slices.Collect(a.all()), "no reference into the receive buffer")
	assert.Equal(t, a, b)
}

// FuzzPacked: any lists united give each distinct element once, in first-seen order, and a
// malformed packed string (which the receiver never makes) ends the iteration, never panics.
func FuzzPacked(f *testing.F) {
	f.Add("a\x00b\x00a", "c\x00\x00b", "\x05abc")
	f.Add("", "x", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")
	f.Fuzz(func(t *testing.T, first, second, garbage string) {
		l1, l2 := strings.Split(first, "\x00"), strings.Split(second, "\x00")
		p := packed("").union(l1).union(l2)
		var want []string
		for _, e := range slices.Concat(l1, l2) {
			if !slices.Contains(want, e) {
				want = append(want, e)
			}
		}
		require.Equal(t, want, slices.Collect(p.all()))
		require.True(t, p.equal(want))
		for range packed(garbage).all() {
		}
		_ = packed(garbage).equal(l1)
	})
}
