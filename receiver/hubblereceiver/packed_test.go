package hubblereceiver

import (
	"hash/maphash"
	"slices"
	"strings"
	"testing"
	"unique"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pack is the packed union of lists, copied out of the packer's buffer.
func pack(lists ...[]string) packed {
	var pk packer
	var p packed
	for _, l := range lists {
		p = packed(strings.Clone(string(pk.union(0, p, l))))
	}
	return p
}

func TestPackerUnion(t *testing.T) {
	var p packed
	assert.True(t, p.equal(nil))
	assert.Empty(t, slices.Collect(p.all()))

	p = pack([]string{"k8s:app=web", "", "reserved:world"})
	assert.Equal(t, []string{"k8s:app=web", "", "reserved:world"}, slices.Collect(p.all()))
	assert.True(t, p.equal([]string{"k8s:app=web", "", "reserved:world"}))
	assert.False(t, p.equal([]string{"k8s:app=web", ""}))
	assert.False(t, p.equal([]string{"k8s:app=web", "", "reserved:world", "x"}))

	var pk packer
	same := pk.union(1, p, []string{"reserved:world", "k8s:app=web"})
	assert.Equal(t, p, same, "nothing new")
	more := pk.union(1, p, []string{"k8s:tier=db", "k8s:app=web", "k8s:tier=db"})
	assert.Equal(t, []string{"k8s:app=web", "", "reserved:world", "k8s:tier=db"}, slices.Collect(more.all()),
		"first-seen order, each once")

	long := strings.Repeat("x", 300) // a two-byte length
	assert.Equal(t, []string{long}, slices.Collect(pack([]string{long}).all()))
}

// The packer's results point into its buffers and the receive buffer's strings into the
// frame; an aggregate keeps neither, because unique.Make copies the strings of what it keeps.
func TestInternedListsOutliveTheirBuffers(t *testing.T) {
	buf := []byte("k8s:app=fresh-" + t.Name())
	var pk packer
	h := unique.Make(endpoint{labels: pk.union(0, "", []string{unsafeString(buf)})})
	copy(buf, "overwritten")
	pk.union(0, "", []string{"k8s:app=other", "k8s:tier=db"})
	assert.Equal(t, []string{"k8s:app=fresh-" + t.Name()}, slices.Collect(h.Value().labels.all()))
	assert.Equal(t, h, unique.Make(endpoint{labels: pack([]string{"k8s:app=fresh-" + t.Name()})}))
}

// A new aggregate whose endpoints, addresses and policies are already interned allocates
// nothing: the case of nearly every key after the first window.
func TestNewAggregateOfKnownValuesDoesNotAllocate(t *testing.T) {
	v := &flowView{srcIP: "10.0.0.1", dstIP: "10.0.0.2"}
	v.src.labels = []string{"k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"}
	v.dst.labels = []string{"k8s:app=db"}
	v.rawPolicies[0] = []string{"\x0a\x05allow"}
	k := flowKey{src: endpointKey{namespace: "shop", kind: "Deployment", name: "web"}, port: 5432}
	var pk packer
	var a flowAgg
	a.add(&k, v, 1, 0, true, &pk)
	allocs := testing.AllocsPerRun(100, func() {
		var b flowAgg
		b.add(&k, v, 2, 0, true, &pk)
	})
	assert.Zero(t, allocs)
}

// An aggregate unites the labels and policies of its flows over the window, also when it
// skips the lists of a flow that carries what the previous one did.
func TestAggregateUnitesWhatItsFlowsCarry(t *testing.T) {
	seed := maphash.MakeSeed()
	flow := func(src, dst []string, policies ...string) *flowView {
		v := &flowView{srcIP: "10.0.0.1", dstIP: "10.0.0.2"}
		v.src.labels, v.dst.labels = src, dst
		v.rawPolicies[ingressAllowed] = policies
		return v
	}
	k := flowKey{src: endpointKey{namespace: "shop", kind: "Deployment", name: "web"}, port: 80}
	var pk packer
	var a flowAgg
	add := func(v *flowView, t int64, fresh bool) { a.add(&k, v, t, v.carriedHash(seed), fresh, &pk) }
	add(flow([]string{"k8s:app=web"}, nil), 1, true)
	add(flow([]string{"k8s:app=web"}, nil), 2, false)
	add(flow([]string{"k8s:app=web", "k8s:tier=fe"}, nil, "p1"), 3, false)
	add(flow([]string{"k8s:app=web"}, nil), 4, false)
	add(flow(nil, []string{"k8s:app=db"}, "p2"), 5, false)
	add(flow(nil, []string{"k8s:app=db"}, "p2"), 6, false)

	assert.Equal(t, []string{"k8s:app=web", "k8s:tier=fe"}, slices.Collect(a.src.Value().labels.all()))
	assert.Equal(t, []string{"k8s:app=db"}, slices.Collect(a.dst.Value().labels.all()))
	assert.Equal(t, []string{"p1", "p2"}, slices.Collect(a.policies.Value()[ingressAllowed].all()))
	assert.Equal(t, int64(6), a.Last)

	assert.NotEqual(t, flow([]string{"a"}, nil).carriedHash(seed), flow(nil, []string{"a"}).carriedHash(seed), "which list an element is in counts")
	assert.NotEqual(t, flow([]string{"ab"}, nil).carriedHash(seed), flow([]string{"a", "b"}, nil).carriedHash(seed), "where elements end counts")
}

// FuzzPacked: any lists united give each distinct element once, in first-seen order, and a
// malformed packed string (which the receiver never makes) ends the iteration, never panics.
func FuzzPacked(f *testing.F) {
	f.Add("a\x00b\x00a", "c\x00\x00b", "\x05abc")
	f.Add("", "x", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")
	f.Fuzz(func(t *testing.T, first, second, garbage string) {
		l1, l2 := strings.Split(first, "\x00"), strings.Split(second, "\x00")
		p := pack(l1, l2)
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
