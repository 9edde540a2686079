package store

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The index must agree with a Go map through inserts, removals (with their backward shifts
// across the table's wrap-around) and growth.
func TestSeriesIndexMatchesMap(t *testing.T) {
	s, _ := newTestStore(t)
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[seriesKey]uint32{}
	var live []uint32
	for op := range 50_000 {
		if len(live) > 0 && (rng.IntN(3) == 0 || len(live) > 3000) {
			i := rng.IntN(len(live))
			id := live[i]
			live[i] = live[len(live)-1]
			live = live[:len(live)-1]
			delete(want, s.keyOf(id))
			s.removeSeries(id)
			*s.slot(id) = series{}
			s.freeSeries = append(s.freeSeries, id)
		} else {
			// Few distinct values per field, so keys share hash inputs.
			k := seriesKey{fam: 1 + uint32(rng.IntN(50)), ctx: uint32(rng.IntN(50)), labels: uint32(rng.IntN(4))}
			if _, dup := want[k]; dup {
				continue
			}
			id := s.allocSeries()
			sr := s.slot(id)
			sr.fam, sr.ctx, sr.labels = k.fam, k.ctx, k.labels
			s.insertSeries(id)
			want[k] = id
			live = append(live, id)
		}
		if op%1000 == 0 {
			require.Equal(t, len(want), s.index.n)
			for k, id := range want {
				got, ok := s.findSeries(k)
				require.True(t, ok)
				require.Equal(t, id, got)
			}
			_, ok := s.findSeries(seriesKey{fam: 999})
			require.False(t, ok)
		}
	}
}
