// Package flowgraph is the process-wide summary of the traffic the network receivers have
// observed: which workload talked to which, on which port, and when last. The hubble receiver
// feeds it from its aggregation windows (and the flow_merge processor from its merged windows,
// on the gateway of node-agent mode); the risk receiver reads it to find attack chains that
// only observed traffic reveals. Receivers never import each other, so this package is how
// what one of them sees reaches the other.
//
// It holds edges, not flows: one per source, destination, destination port and protocol,
// with a count and the first and last time seen. It is bounded by MaxEdges, and edges not
// seen for Retention are forgotten.
//
// Edges are recorded only while a reader is registered (Read): the node agent, and any
// collector without k8s_risk, runs the hubble receiver with nobody to read them, and they
// were its largest structure after the aggregates. The sources hand over a window's edges
// when the window ends, covering every flow of it, so a reader registered before a window
// ends sees all of that window, including flows received before it registered. In a
// collector every component's Start runs before the first window (30 s) ends.
package flowgraph // import "github.com/kestrelai/otelcol-kestrel/internal/flowgraph"

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// MaxEdges bounds the edges held. Edges are per workload pair and port, so a cluster of
	// 2,000 workloads rarely has more than a few thousand; at about 200 bytes each the bound
	// is 10 MiB.
	MaxEdges = 50_000
	// Retention is how long an edge is kept after it was last seen.
	Retention = 24 * time.Hour
)

// Reserved names the endpoints that are not workloads of the cluster. Cilium calls them
// reserved identities.
const (
	ReservedWorld         = "world"
	ReservedKubeAPIServer = "kube-apiserver"
	ReservedHost          = "host"
	ReservedRemoteNode    = "remote-node"
	ReservedOther         = "other" // health checks, ingress proxies, unmanaged endpoints, unknown identities
)

// Cilium's reserved security identities.
const (
	identityHost          = 1
	identityWorld         = 2
	identityRemoteNode    = 6
	identityKubeAPIServer = 7
	identityWorldIPv4     = 9
	identityWorldIPv6     = 10
)

// ReservedOf classifies an endpoint outside the cluster's workloads by its Cilium security
// identity or its reserved: labels (hasLabel("world") is whether it has reserved:world). The
// API server goes first: on a control-plane node it is the host too. The hubble receiver and
// the flow_merge processor both classify with it, so both feed the same edges.
func ReservedOf(identity uint32, hasLabel func(reserved string) bool) string {
	switch {
	case identity == identityKubeAPIServer || hasLabel("kube-apiserver"):
		return ReservedKubeAPIServer
	case identity == identityWorld || identity == identityWorldIPv4 || identity == identityWorldIPv6 ||
		hasLabel("world") || hasLabel("world-ipv4") || hasLabel("world-ipv6"):
		return ReservedWorld
	case identity == identityHost || hasLabel("host"):
		return ReservedHost
	case identity == identityRemoteNode || hasLabel("remote-node"):
		return ReservedRemoteNode
	}
	return ReservedOther
}

// Peer is one end of an edge: a workload (Kind is its kind, or "Pod" for a pod without
// one) or, with Reserved set, an endpoint outside the cluster's workloads.
type Peer struct {
	Namespace, Kind, Name string
	Reserved              string
}

// Edge is traffic from Src to Dst on one destination port and protocol (tcp, udp, sctp,
// icmp).
type Edge struct {
	Src, Dst Peer
	Port     uint32
	Protocol string
}

// Stat is an edge with what was seen of it.
type Stat struct {
	Edge
	Count       int64
	First, Last time.Time
}

var graph = struct {
	mu      sync.Mutex
	sources int
	readers int
	edges   map[Edge]*Stat
	version uint64
}{edges: map[Edge]*Stat{}}

// reading mirrors graph.readers > 0 for Reading, which sources call once per window
// without taking the lock.
var reading atomic.Bool

// Register announces a running flow source; call the returned function when it stops. The
// risk receiver tells "no traffic seen" from "nobody looks at traffic" by it.
func Register() (unregister func()) {
	graph.mu.Lock()
	graph.sources++
	graph.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			graph.mu.Lock()
			graph.sources--
			graph.mu.Unlock()
		})
	}
}

// Read announces a reader of the edges; call the returned function when it stops. Edges are
// recorded only while there is one. The edges recorded so far are kept when the last reader
// stops (a configuration reload restarts the reader, and should not forget a day of traffic);
// they still expire after Retention.
func Read() (unregister func()) {
	graph.mu.Lock()
	graph.readers++
	reading.Store(true)
	graph.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			graph.mu.Lock()
			graph.readers--
			reading.Store(graph.readers > 0)
			graph.mu.Unlock()
		})
	}
}

// Reading reports whether a reader is registered: a source may skip building the edges of a
// window when none is, since Observe would discard them.
func Reading() bool { return reading.Load() }

// Sources returns the number of running flow sources.
func Sources() int {
	graph.mu.Lock()
	defer graph.mu.Unlock()
	return graph.sources
}

// Observe records count flows on e seen between first and last, if a reader is registered
// (Read); otherwise it does nothing. Only traffic that was allowed belongs here. The strings
// of e may be reused by the caller afterwards: a new edge keeps copies.
func Observe(e Edge, count int64, first, last time.Time) {
	graph.mu.Lock()
	defer graph.mu.Unlock()
	if graph.readers == 0 {
		return
	}
	if s, ok := graph.edges[e]; ok {
		s.Count += count
		if first.Before(s.First) {
			s.First = first
		}
		if last.After(s.Last) {
			s.Last = last
		}
		return
	}
	if len(graph.edges) >= MaxEdges {
		evict(last)
	}
	e = Edge{Src: clonePeer(e.Src), Dst: clonePeer(e.Dst), Port: e.Port, Protocol: strings.Clone(e.Protocol)}
	graph.edges[e] = &Stat{Edge: e, Count: count, First: first, Last: last}
	graph.version++
}

// evict makes room: edges past Retention go first, then the least recently seen tenth, so
// that a full graph does not pay a scan on every new edge.
func evict(now time.Time) {
	expired := now.Add(-Retention)
	for e, s := range graph.edges {
		if s.Last.Before(expired) {
			delete(graph.edges, e)
		}
	}
	if len(graph.edges) < MaxEdges {
		return
	}
	lasts := make([]time.Time, 0, len(graph.edges))
	for _, s := range graph.edges {
		lasts = append(lasts, s.Last)
	}
	slices.SortFunc(lasts, time.Time.Compare)
	cut := lasts[len(lasts)/10]
	for e, s := range graph.edges {
		if !s.Last.After(cut) {
			delete(graph.edges, e)
		}
	}
}

func clonePeer(p Peer) Peer {
	return Peer{Namespace: strings.Clone(p.Namespace), Kind: strings.Clone(p.Kind), Name: strings.Clone(p.Name), Reserved: strings.Clone(p.Reserved)}
}

// Edges returns the edges last seen at or after since, as copies. Edges past Retention
// (measured from now) are dropped on the way.
func Edges(since, now time.Time) []Stat {
	graph.mu.Lock()
	defer graph.mu.Unlock()
	expired := now.Add(-Retention)
	out := make([]Stat, 0, len(graph.edges))
	for e, s := range graph.edges {
		if s.Last.Before(expired) {
			delete(graph.edges, e)
			continue
		}
		if !s.Last.Before(since) {
			out = append(out, *s)
		}
	}
	return out
}

// Version changes whenever an edge is added, so readers can tell that the set of edges may
// have grown without copying it.
func Version() uint64 {
	graph.mu.Lock()
	defer graph.mu.Unlock()
	return graph.version
}

// Reset forgets every edge; for tests that share the process.
func Reset() {
	graph.mu.Lock()
	defer graph.mu.Unlock()
	graph.edges = map[Edge]*Stat{}
	graph.version++
}
