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

func TestObserveMergesAndCopies(t *testing.T) {
	Reset()
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
