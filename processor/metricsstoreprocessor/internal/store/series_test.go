package store

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// Rebuilding the appender for every sample must produce the very bytes one long-lived
// appender would: this pins the workaround for XOR2Chunk.Appender's unset window.
func TestChunkBytesMatchALiveAppender(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	sequences := map[string]func(i int) float64{
		"constant then changing": func(i int) float64 { return float64(max(0, i-20)) },
		"counter":                func(i int) float64 { return float64(i * rng.IntN(100)) },
		"constant":               func(int) float64 { return 7 },
		"stale markers":          func(i int) float64 { return []float64{1, math.Float64frombits(value.StaleNaN), 1, 2}[i%4] },
		"ratios":                 func(int) float64 { return float64(rng.IntN(1000)) / 1000 },
	}
	for name, gen := range sequences {
		t.Run(name, func(t *testing.T) {
			s, _ := newTestStore(t, func(c *Config) { c.RingSize = 40 })
			sr := &series{chunk: emptyChunk(0)}
			live := chunkenc.NewXOR2Chunk()
			app, err := live.Appender()
			require.NoError(t, err)
			for i := range 40 {
				st, tm, v := int64(5), int64(1000+i*15_000+rng.IntN(3)), gen(i)
				s.appendSample(sr, 1, st, tm, v, nil)
				app.Append(st, tm, v)
				require.Equal(t, live.Bytes(), sr.chunk, "after sample %d", i)
			}
		})
	}
}
