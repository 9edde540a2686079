package store

// seriesIndex maps a series key to its slot. It is an open-addressing table with linear
// probing over slot numbers (plus one; 0 marks an empty bucket), and reads keys back from the
// slots. A Go map spends ~25 bytes per series on its 12-byte keys and values; this spends
// 5–11, which is the difference between meeting the memory goal or not.
type seriesIndex struct {
	buckets []uint32
	n       int
}

func hashKey(k seriesKey) uint64 {
	// splitmix64 finaliser over the three IDs.
	h := (uint64(k.fam)<<32 | uint64(k.ctx)) ^ uint64(k.labels)*0x9e3779b97f4a7c15
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

func (s *Store) keyOf(id uint32) seriesKey {
	sr := s.slot(id)
	return seriesKey{sr.fam, sr.ctx, sr.labels}
}

func (s *Store) findSeries(k seriesKey) (uint32, bool) {
	x := &s.index
	if len(x.buckets) == 0 {
		return 0, false
	}
	mask := uint64(len(x.buckets) - 1)
	for i := hashKey(k) & mask; ; i = (i + 1) & mask {
		b := x.buckets[i]
		if b == 0 {
			return 0, false
		}
		if s.keyOf(b-1) == k {
			return b - 1, true
		}
	}
}

// insertSeries adds slot id, whose key must not be in the index yet.
func (s *Store) insertSeries(id uint32) {
	x := &s.index
	if 4*(x.n+1) > 3*len(x.buckets) {
		old := x.buckets
		x.buckets = make([]uint32, max(1024, 2*len(old)))
		s.bytes += int64(4 * (len(x.buckets) - len(old)))
		for _, b := range old {
			if b != 0 {
				s.place(b)
			}
		}
	}
	s.place(id + 1)
	x.n++
}

func (s *Store) place(b uint32) {
	x := &s.index
	mask := uint64(len(x.buckets) - 1)
	i := hashKey(s.keyOf(b-1)) & mask
	for x.buckets[i] != 0 {
		i = (i + 1) & mask
	}
	x.buckets[i] = b
}

// removeSeries drops slot id (still holding its key) and shifts later entries of its probe
// run back, so that lookups never need tombstones.
func (s *Store) removeSeries(id uint32) {
	x := &s.index
	mask := uint64(len(x.buckets) - 1)
	i := hashKey(s.keyOf(id)) & mask
	for x.buckets[i] != id+1 {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; x.buckets[j] != 0; j = (j + 1) & mask {
		home := hashKey(s.keyOf(x.buckets[j]-1)) & mask
		// The entry at j may move to the hole at i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.buckets[i] = x.buckets[j]
			i = j
		}
	}
	x.buckets[i] = 0
	x.n--
}
