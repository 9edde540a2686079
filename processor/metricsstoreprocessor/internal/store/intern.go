package store

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/workload"
)

// Approximate heap cost of one entry in each intern table (map slot, slice element, headers).
// They feed the max_bytes accounting; measured sizes are in the benchmarks.
const (
	symbolOverhead   = 64
	contextOverhead  = 160
	labelSetOverhead = 96
	familyOverhead   = 192
)

// symbols interns strings. ID 0 is the empty string and is never reference-counted. Every
// other string lives while an interned context, label set or family refers to it.
type symbols struct {
	ids  map[string]uint32
	strs []string
	refs []uint32
	free []uint32
}

func newSymbols() symbols {
	return symbols{ids: map[string]uint32{}, strs: []string{""}, refs: []uint32{0}}
}

// validUTF8 replaces invalid UTF-8, which pdata does not reject but a protobuf string field
// cannot carry: one such label would make every response containing it fail to marshal.
func validUTF8(str string) string {
	if utf8.ValidString(str) {
		return str
	}
	return strings.ToValidUTF8(str, "\uFFFD")
}

func (s *symbols) lookup(str string) (uint32, bool) {
	if str == "" {
		return 0, true
	}
	id, ok := s.ids[validUTF8(str)]
	return id, ok
}

// ref interns str and takes one reference; it returns the bytes newly allocated.
func (s *symbols) ref(str string) (uint32, int64) {
	if str == "" {
		return 0, 0
	}
	str = validUTF8(str)
	if id, ok := s.ids[str]; ok {
		s.refs[id]++
		return id, 0
	}
	str = strings.Clone(str) // never pin a larger buffer the caller's string may point into
	var id uint32
	if n := len(s.free); n > 0 {
		id = s.free[n-1]
		s.free = s.free[:n-1]
		s.strs[id], s.refs[id] = str, 1
	} else {
		id = uint32(len(s.strs))
		s.strs = append(s.strs, str)
		s.refs = append(s.refs, 1)
	}
	s.ids[str] = id
	return id, int64(len(str) + symbolOverhead)
}

// unref drops one reference and returns the bytes freed.
func (s *symbols) unref(id uint32) int64 {
	if id == 0 {
		return 0
	}
	s.refs[id]--
	if s.refs[id] > 0 {
		return 0
	}
	str := s.strs[id]
	delete(s.ids, str)
	s.strs[id] = ""
	s.free = append(s.free, id)
	return int64(len(str) + symbolOverhead)
}

func (s *symbols) str(id uint32) string { return s.strs[id] }

// rawContext is the Kubernetes context of a data point before interning.
type rawContext struct {
	namespace, pod, container, node string
	workload                        podowner.Ref // explicit, from k8s.<kind>.name
}

type contextKey struct {
	namespace, pod, container, node, rawName uint32
	rawKind                                  uint8
}

// k8sContext is an interned Kubernetes context shared by all series of one container (or pod,
// or namespace). The resolved workload is what queries match and what responses report.
type k8sContext struct {
	key          contextKey
	workloadName uint32
	workloadKind uint8 // index into workload.Kinds plus one; 0 when unknown
	series       []uint32
	live         bool
}

func kindIndex(kind string) uint8 {
	for i, k := range workload.Kinds {
		if k == kind {
			return uint8(i + 1)
		}
	}
	return 0
}

func kindName(idx uint8) string {
	if idx == 0 {
		return ""
	}
	return workload.Kinds[idx-1]
}

// labelSet is an interned, key-sorted list of label pairs (symbol IDs: k0, v0, k1, v1, ...).
type labelSet struct {
	pairs []uint32
	key   string
	refs  uint32
	live  bool
}

type familyKey struct {
	name uint32
	typ  pmetric.MetricType
}

// family is one metric name and type; the descriptive fields follow the latest data seen.
type family struct {
	key                                    familyKey
	description, unit, scopeName, scopeVer string
	refs                                   uint32
	live                                   bool
}

// appendLabelKey encodes symbol IDs into the map key of a label set.
func appendLabelKey(dst []byte, pairs []uint32) []byte {
	for _, id := range pairs {
		dst = binary.LittleEndian.AppendUint32(dst, id)
	}
	return dst
}
