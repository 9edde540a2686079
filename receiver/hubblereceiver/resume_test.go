package hubblereceiver

import (
	"hash/maphash"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keptTimes returns the times of the flows resumeState keeps, oldest first.
func (s *resumeState) keptTimes() []int64 {
	var ts []int64
	for e := range s.kept() {
		ts = append(ts, e.t)
	}
	return ts
}

// The flows of the last overlap are kept across blocks, older ones are forgotten, and after a
// reconnect exactly the kept ones at or after since are recognised as repeats.
func TestResumeKeepsTheOverlapAcrossBlocks(t *testing.T) {
	const overlap = 1000
	s := resumeState{overlap: overlap, seed: maphash.MakeSeed()}
	const n = 5*seenBlock + 17
	for i := int64(1); i <= n; i++ {
		require.True(t, s.admit(i, uint64(i)))
	}
	ts := s.keptTimes()
	require.Len(t, ts, overlap+1, "the flows at last-overlap … last")
	assert.Equal(t, int64(n-overlap), ts[0])
	assert.Equal(t, int64(n), ts[len(ts)-1])
	assert.LessOrEqual(t, len(s.recent), 2, "forgotten blocks are let go")

	since := s.reconnect()
	assert.Equal(t, int64(n-overlap), since)
	assert.False(t, s.admit(n-1, uint64(n-1)), "received before the reconnect: a repeat")
	assert.False(t, s.admit(since, uint64(since)), "at since: a repeat")
	assert.True(t, s.admit(n-1, 1<<40), "the same time, another flow: new")
	assert.True(t, s.admit(n+1, uint64(n+1)), "after the last: new")
}

// A burst's blocks are given back when the rate drops, and the one pruned block is reused.
func TestResumeGivesBackABurst(t *testing.T) {
	s := resumeState{overlap: 10, seed: maphash.MakeSeed()}
	for i := range 20 * seenBlock {
		s.admit(5, uint64(i)) // a burst at one instant: all within the overlap
	}
	assert.Len(t, s.recent, 20)
	s.admit(100, 1) // later than the burst's overlap: the burst is forgotten
	assert.Equal(t, []int64{100}, s.keptTimes())
	assert.Len(t, s.recent, 1)
	now := int64(100)
	allocs := testing.AllocsPerRun(100, func() {
		now += 100 // each block's flows are forgotten once the next block's time comes
		for i := range seenBlock {
			s.admit(now, uint64(i))
		}
	})
	assert.Zero(t, allocs, "a steady rate reuses the pruned block")
	assert.LessOrEqual(t, len(s.recent), 2)
}
