package store

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// series is one slab slot. A slot is free when fam is 0.
//
// Samples are one XOR2 chunk (Prometheus tsdb/chunkenc): delta-of-delta timestamps, XOR'd
// values and the start timestamp, which costs nothing while it does not change. Only the
// chunk bytes are kept: a live chunkenc appender would cost 64 bytes per series plus the
// chunk object, which at 100,000 series is a fifth of the memory budget. Appending instead
// re-reads the chunk to rebuild the appender (XOR2Chunk.Appender restores the bit position),
// about 20 ns per stored sample.
//
// XOR2Chunk.Appender restores every field of the appender from the chunk except one: while
// no value change has been written yet, the XOR window (leading/trailing zero counts) comes
// back as 0/0 instead of "unset", and every later change would cost 64 bits. The series
// therefore remembers whether its chunk has a window (windowedBit); the first value change
// of a chunk re-encodes it with one fresh appender, which writes the window properly. This
// happens at most once per chunk.
//
// The chunk holds between RingSize and RingSize+slack samples; when it is full, the newest
// RingSize-1 are re-encoded into a fresh chunk, which is cheaper in memory than a ring of
// sub-chunks (each sub-chunk pays a full first sample, ~20 bytes). Queries only ever see the
// newest RingSize samples.
type series struct {
	chunk     []byte     // an XOR2 chunk
	aux       *auxStream // histogram and summary parts besides the sum; nil for numbers
	maxT      int64      // newest sample, milliseconds
	fam       uint32
	ctx       uint32
	labels    uint32
	lastWrite uint32 // Store.tick of the last append, and windowedBit
}

// windowedBit in series.lastWrite marks a chunk that holds a value change (see above). It
// costs the write clock its top bit: ticks are seconds, so 68 years.
const windowedBit = 1 << 31

func (sr *series) windowed() bool { return sr.lastWrite&windowedBit != 0 }

func (sr *series) setWritten(tick uint32, windowed bool) {
	sr.lastWrite = tick &^ windowedBit
	if windowed {
		sr.lastWrite |= windowedBit
	}
}

func (sr *series) tick() uint32 { return sr.lastWrite &^ windowedBit }

const sizeofSeries = unsafe.Sizeof(series{})

const (
	chunkHeader = 3 // XOR2: 2 bytes sample count, 1 byte start-timestamp header
	// chunkHeadroom is left free when a chunk is (re)allocated, so that most appends fit
	// without the chunk's own append doubling the slice.
	chunkHeadroom = 8
	// firstSampleCost is roughly what a chunk's first sample costs beyond later ones.
	firstSampleCost = 24
)

// allocSize rounds n up like the Go allocator's size classes, so that the rounding becomes
// usable capacity instead of hidden waste.
func allocSize(n int) int {
	switch {
	case n <= 256:
		return (n + 15) &^ 15
	case n <= 512:
		return (n + 31) &^ 31
	case n <= 1024:
		return (n + 63) &^ 63
	default:
		return (n + 127) &^ 127
	}
}

func numSamples(chunk []byte) int { return int(binary.BigEndian.Uint16(chunk)) }

func emptyChunk(capHint int) []byte {
	return make([]byte, chunkHeader, allocSize(max(capHint, chunkHeader+firstSampleCost)))
}

// iterate returns an iterator over chunk, reusing it when possible.
func iterate(chunk []byte, it chunkenc.Iterator) chunkenc.Iterator {
	var c chunkenc.XOR2Chunk
	c.Reset(chunk)
	return c.Iterator(it)
}

// fitted returns b, moved to a right-sized buffer if appending made the slice double.
func fitted(b []byte) []byte {
	if want := allocSize(len(b) + chunkHeadroom); cap(b) > want {
		nb := make([]byte, len(b), want)
		copy(nb, b)
		return nb
	}
	return b
}

// seriesBytes is the series' share of Store.bytes besides its slab slot.
func seriesBytes(sr *series) int64 {
	n := int64(seriesOverhead + cap(sr.chunk))
	if sr.aux != nil {
		n += sr.aux.bytes()
	}
	return n
}

// appendSample adds one sample (and the histogram/summary remainder a, if the series has
// one) written at tick, and returns the number of samples the ring dropped to make room.
func (s *Store) appendSample(sr *series, tick uint32, st, t int64, v float64, a *auxPoint) int {
	next := &sample{st: st, t: t, v: v, aux: a}
	if n := numSamples(sr.chunk); n >= s.cfg.RingSize+s.slack {
		return s.rewrite(sr, n-s.cfg.RingSize+1, 0, tick, next)
	} else if n > 0 && !sr.windowed() && math.Float64bits(v) != math.Float64bits(firstValue(sr.chunk)) {
		return s.rewrite(sr, 0, 0, tick, next)
	}
	before := seriesBytes(sr)
	var c chunkenc.XOR2Chunk
	c.Reset(sr.chunk)
	app, err := c.Appender()
	if err != nil {
		// Only a corrupt chunk fails to decode, and the store only holds chunks it wrote;
		// should it happen anyway, the series restarts instead of failing ingest.
		c.Reset(emptyChunk(0))
		app, _ = c.Appender()
	}
	app.Append(st, t, v)
	sr.chunk = fitted(c.Bytes())
	if sr.aux != nil {
		s.auxScratch = sr.aux.append(a, s.auxScratch)
	}
	sr.maxT = t
	sr.setWritten(tick, sr.windowed())
	s.bytes += seriesBytes(sr) - before
	return 0
}

type sample struct {
	st, t int64
	v     float64
	aux   *auxPoint
}

// firstValue returns the value of a chunk's first sample; while a chunk has no window, all
// its values are equal to it.
func firstValue(chunk []byte) float64 {
	var c chunkenc.XOR2Chunk
	c.Reset(chunk)
	it := c.Iterator(nil)
	it.Next()
	_, v := it.At()
	return v
}

// rewrite re-encodes sr without its first drop samples and without samples older than minT,
// then appends next (if any, as written at tick), all with one appender. It returns how many
// samples it removed.
func (s *Store) rewrite(sr *series, drop int, minT int64, tick uint32, next *sample) int {
	before := seriesBytes(sr)
	old := sr.chunk
	n := numSamples(old)
	keep := max(n-drop, 0)
	var c chunkenc.XOR2Chunk
	c.Reset(emptyChunk(chunkHeader + firstSampleCost + (len(old)-chunkHeader)*keep/max(n, 1) + chunkHeadroom))
	app, _ := c.Appender() // an empty chunk needs no decoding and cannot fail
	var dec *auxDecoder
	if sr.aux != nil {
		dec = &s.auxDec
		dec.reset(sr.aux.buf, sr.aux.kind)
		sr.aux.restart()
	}
	removed := 0
	var w windowTracker
	add := func(st, t int64, v float64, a *auxPoint) {
		app.Append(st, t, v)
		w.add(v)
		if dec != nil {
			s.auxScratch = sr.aux.append(a, s.auxScratch)
		}
	}
	s.iter = iterate(old, s.iter)
	for i := 0; s.iter.Next() != chunkenc.ValNone; i++ {
		t, v := s.iter.At()
		var a *auxPoint
		if dec != nil {
			a = dec.next()
		}
		if i < drop || t < minT {
			removed++
			continue
		}
		add(s.iter.AtST(), t, v, a)
	}
	written := sr.tick()
	if next != nil {
		add(next.st, next.t, next.v, next.aux)
		sr.maxT, written = next.t, tick
	}
	sr.setWritten(written, w.windowed)
	sr.chunk = fitted(c.Bytes())
	s.bytes += seriesBytes(sr) - before
	return removed
}

// windowTracker follows whether an XOR2 appender has written a window: it does so at the
// first value that differs from the previous non-stale one.
type windowTracker struct {
	last     uint64
	seen     bool
	windowed bool
}

func (w *windowTracker) add(v float64) {
	if value.IsStaleNaN(v) {
		return
	}
	b := math.Float64bits(v)
	w.windowed = w.windowed || (w.seen && b != w.last)
	w.last, w.seen = b, true
}
