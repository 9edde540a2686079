package flowgraph

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func edge(src, dst string, port uint32) Edge {
	return Edge{Src: Peer{Namespace: "a", Kind: "Deployment", Name: src}, Dst: Peer{Namespace: "b", Kind: "Deployment", Name: dst}, Port: port, Protocol: "tcp"}
}

// reader registers a reader for the test.
func reader(t *testing.T) {
	t.Helper()
	t.Cleanup(Read())
}

func TestObserveMergesAndCopies(t *testing.T) {
	Reset()
	reader(t)
	buf := []byte("web")
	name := string(buf)
	e := edge(name, "db", 5432)
	v := Version()
	Observe(e, 2, t0.Add(time.Second), t0.Add(2*time.Second))
	assert.Greater(t, Version(), v, "a new edge changes the version")
	v = Version()
	Observe(e, 3, t0, t0.Add(time.Second))
	assert.Equal(t, v, Version(), "more of a known edge does not")

	got := Edges(t0, t0.Add(time.Hour))
	require.Len(t, got, 1)
	assert.Equal(t, Stat{Edge: e, Count: 5, First: t0, Last: t0.Add(2 * time.Second)}, got[0])
	assert.Empty(t, Edges(t0.Add(3*time.Second), t0.Add(time.Hour)), "since filters by last seen")
	assert.Empty(t, Edges(t0, t0.Add(Retention+time.Hour)), "expired edges are dropped")
	assert.Empty(t, Edges(t0, t0), "and forgotten")
}

func TestRegister(t *testing.T) {
	before := Sources()
	un := Register()
	assert.Equal(t, before+1, Sources())
	un()
	un()
	assert.Equal(t, before, Sources())
}

func TestBoundedByMaxEdges(t *testing.T) {
	Reset()
	defer Reset()
	reader(t)
	for i := range MaxEdges + 10 {
		Observe(edge(fmt.Sprint(i), "db", 1), 1, t0.Add(time.Duration(i)*time.Millisecond), t0.Add(time.Duration(i)*time.Millisecond))
	}
	got := Edges(t0, t0.Add(time.Hour))
	assert.LessOrEqual(t, len(got), MaxEdges)
	assert.Greater(t, len(got), MaxEdges*8/10)
	last := Edge{}
	for _, s := range got {
		if s.Src.Name == fmt.Sprint(MaxEdges+9) {
			last = s.Edge
		}
	}
	assert.Equal(t, edge(fmt.Sprint(MaxEdges+9), "db", 1), last, "the newest edge is kept")
	oldest := slices.MinFunc(got, func(a, b Stat) int { return a.Last.Compare(b.Last) })
	assert.Greater(t, oldest.Last, t0.Add(time.Duration(MaxEdges/20)*time.Millisecond), "the least recently seen went first")
}

// Without a reader nothing is recorded; edges recorded while there was one are kept after it
// stops, and recording resumes with the next reader.
func TestObserveOnlyWhileRead(t *testing.T) {
	Reset()
	t.Cleanup(Reset)
	require.False(t, Reading())
	v := Version()
	Observe(edge("web", "db", 5432), 1, t0, t0)
	assert.Empty(t, Edges(t0, t0.Add(time.Hour)), "no reader, no edge")
	assert.Equal(t, v, Version())

	un := Read()
	un2 := Read()
	assert.True(t, Reading())
	Observe(edge("web", "db", 5432), 2, t0, t0)
	un()
	un()
	assert.True(t, Reading(), "one reader is left; unregistering twice counts once")
	Observe(edge("web", "cache", 6379), 3, t0, t0)
	un2()
	assert.False(t, Reading())
	Observe(edge("web", "queue", 5672), 4, t0, t0)

	got := map[string]int64{}
	for _, s := range Edges(t0, t0.Add(time.Hour)) {
		got[s.Dst.Name] = s.Count
	}
	assert.Equal(t, map[string]int64{"db": 2, "cache": 3}, got, "what was read is kept, what came after the last reader is not")
}
