package schema

import (
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Table is the one list of the attributes of one kind of record: for each attribute its
// key, the value that the source object S gives it, and the field of the cloud.v1 message M
// it becomes. The receiver writes records with Put and logmap reads them with Read, so an
// attribute is added, renamed or retyped in one row.
type Table[S, M any] []Field[S, M]

// Field is one row of a Table; the constructors below make them.
type Field[S, M any] interface {
	put(attrs pcommon.Map, src *S)
	read(r Reader, msg *M)
	// equal reports whether a and b give the same attribute.
	equal(a, b *S) bool
}

// Put writes the attributes of src.
func (t Table[S, M]) Put(attrs pcommon.Map, src *S) {
	for _, f := range t {
		f.put(attrs, src)
	}
}

// Equal reports whether a and b give the same attributes, without building them: the
// receiver asks this on every informer update, and most updates change nothing a record
// carries. A nil a or b equals only another nil.
func (t Table[S, M]) Equal(a, b *S) bool {
	if a == nil || b == nil {
		return a == b
	}
	for _, f := range t {
		if !f.equal(a, b) {
			return false
		}
	}
	return true
}

// Read fills msg from the attributes r reads.
func (t Table[S, M]) Read(r Reader, msg *M) {
	for _, f := range t {
		f.read(r, msg)
	}
}

// Reader reads the attributes of one record, or of one map of a list attribute, for
// Table.Read. logmap implements it: it checks types, repairs UTF-8 and keeps the first
// problem, so that a row only says what to read and where it goes.
type Reader interface {
	// Str returns a string attribute, "" when absent; Required also reports it missing then.
	Str(key string) string
	Required(key string) string
	// Bool returns a bool attribute, false when absent.
	Bool(key string) bool
	// Int32 returns a non-negative int attribute that fits an int32, 0 when absent.
	Int32(key string) int32
	// Strs returns a string-slice attribute, nil when absent.
	Strs(key string) []string
	// Prefixed collects the string attributes under prefix into a map keyed by the rest of
	// their names, nil when there are none.
	Prefixed(prefix string) map[string]string
	// Time parses a timestamp attribute, nil when absent.
	Time(key string) *timestamppb.Timestamp
	// Maps returns the length of a list-of-maps attribute, 0 when absent; MapAt returns a
	// Reader of its i-th map, nil when that is not a map.
	Maps(key string) int
	MapAt(key string, i int) Reader
}

// Presence says whether a record must carry a string attribute: a record without a
// Required one (or with it empty) maps to no message; an empty Optional one is left out.
type Presence bool

const (
	Required Presence = true
	Optional Presence = false
)

// Str is a string attribute. A nil set writes the attribute without reading it: cloud.v1
// has no field for it.
func Str[S, M any](key string, p Presence, get func(*S) string, set func(*M, string)) Field[S, M] {
	return strField[S, M]{key, p, get, set}
}

type strField[S, M any] struct {
	key string
	p   Presence
	get func(*S) string
	set func(*M, string)
}

func (f strField[S, M]) put(attrs pcommon.Map, src *S) {
	if v := f.get(src); v != "" || f.p == Required {
		attrs.PutStr(f.key, v)
	}
}

func (f strField[S, M]) equal(a, b *S) bool { return f.get(a) == f.get(b) }

func (f strField[S, M]) read(r Reader, msg *M) {
	switch {
	case f.set == nil:
	case f.p == Required:
		f.set(msg, r.Required(f.key))
	default:
		f.set(msg, r.Str(f.key))
	}
}

// Bool is a bool attribute, always written.
func Bool[S, M any](key string, get func(*S) bool, set func(*M, bool)) Field[S, M] {
	return boolField[S, M]{key, get, set}
}

type boolField[S, M any] struct {
	key string
	get func(*S) bool
	set func(*M, bool)
}

func (f boolField[S, M]) put(attrs pcommon.Map, src *S) { attrs.PutBool(f.key, f.get(src)) }
func (f boolField[S, M]) read(r Reader, msg *M)         { f.set(msg, r.Bool(f.key)) }
func (f boolField[S, M]) equal(a, b *S) bool            { return f.get(a) == f.get(b) }

// Int32 is an int attribute, left out when zero.
func Int32[S, M any](key string, get func(*S) int32, set func(*M, int32)) Field[S, M] {
	return int32Field[S, M]{key, get, set}
}

type int32Field[S, M any] struct {
	key string
	get func(*S) int32
	set func(*M, int32)
}

func (f int32Field[S, M]) put(attrs pcommon.Map, src *S) {
	if v := f.get(src); v != 0 {
		attrs.PutInt(f.key, int64(v))
	}
}

func (f int32Field[S, M]) read(r Reader, msg *M) { f.set(msg, r.Int32(f.key)) }
func (f int32Field[S, M]) equal(a, b *S) bool    { return f.get(a) == f.get(b) }

// Strs is a string-slice attribute, left out when empty.
func Strs[S, M any](key string, get func(*S) []string, set func(*M, []string)) Field[S, M] {
	return strsField[S, M]{key, get, set}
}

type strsField[S, M any] struct {
	key string
	get func(*S) []string
	set func(*M, []string)
}

func (f strsField[S, M]) put(attrs pcommon.Map, src *S) {
	vs := f.get(src)
	if len(vs) == 0 {
		return
	}
	s := attrs.PutEmptySlice(f.key)
	s.EnsureCapacity(len(vs))
	for _, v := range vs {
		s.AppendEmpty().SetStr(v)
	}
}

func (f strsField[S, M]) read(r Reader, msg *M) { f.set(msg, r.Strs(f.key)) }
func (f strsField[S, M]) equal(a, b *S) bool    { return slices.Equal(f.get(a), f.get(b)) }

// Prefixed is a string map written as one attribute per entry, named prefix + key: labels,
// annotations and selectors (e.g. k8s.pod.label.app).
func Prefixed[S, M any](prefix string, get func(*S) map[string]string, set func(*M, map[string]string)) Field[S, M] {
	return prefixedField[S, M]{prefix, get, set}
}

type prefixedField[S, M any] struct {
	prefix string
	get    func(*S) map[string]string
	set    func(*M, map[string]string)
}

func (f prefixedField[S, M]) put(attrs pcommon.Map, src *S) {
	for k, v := range f.get(src) {
		attrs.PutStr(f.prefix+k, v)
	}
}

func (f prefixedField[S, M]) read(r Reader, msg *M) { f.set(msg, r.Prefixed(f.prefix)) }
func (f prefixedField[S, M]) equal(a, b *S) bool    { return maps.Equal(f.get(a), f.get(b)) }

// Time is a time written as an RFC 3339 string in UTC, left out when zero.
func Time[S, M any](key string, get func(*S) time.Time, set func(*M, *timestamppb.Timestamp)) Field[S, M] {
	return timeField[S, M]{key, get, set}
}

type timeField[S, M any] struct {
	key string
	get func(*S) time.Time
	set func(*M, *timestamppb.Timestamp)
}

func (f timeField[S, M]) put(attrs pcommon.Map, src *S) {
	if t := f.get(src); !t.IsZero() {
		attrs.PutStr(f.key, t.UTC().Format(time.RFC3339))
	}
}

func (f timeField[S, M]) read(r Reader, msg *M) { f.set(msg, r.Time(f.key)) }

// equal compares what put writes: whole seconds, or nothing for the zero time.
func (f timeField[S, M]) equal(a, b *S) bool {
	ta, tb := f.get(a), f.get(b)
	return ta.IsZero() == tb.IsZero() && ta.Unix() == tb.Unix()
}

// Maps is a list of maps, one per element of a list of E, each map written and read with
// elems; left out when empty.
func Maps[S, M, E, N any](key string, elems Table[E, N], get func(*S) []E, set func(*M, []*N)) Field[S, M] {
	return mapsField[S, M, E, N]{key, elems, get, set}
}

type mapsField[S, M, E, N any] struct {
	key   string
	elems Table[E, N]
	get   func(*S) []E
	set   func(*M, []*N)
}

func (f mapsField[S, M, E, N]) put(attrs pcommon.Map, src *S) {
	list := f.get(src)
	if len(list) == 0 {
		return
	}
	s := attrs.PutEmptySlice(f.key)
	s.EnsureCapacity(len(list))
	for i := range list {
		f.elems.Put(s.AppendEmpty().SetEmptyMap(), &list[i])
	}
}

func (f mapsField[S, M, E, N]) equal(a, b *S) bool {
	la, lb := f.get(a), f.get(b)
	if len(la) != len(lb) {
		return false
	}
	for i := range la {
		if !f.elems.Equal(&la[i], &lb[i]) {
			return false
		}
	}
	return true
}

func (f mapsField[S, M, E, N]) read(r Reader, msg *M) { f.set(msg, ReadMaps(r, f.key, f.elems)) }

// ReadMaps reads a list-of-maps attribute with elems, one N per map; nil when it is absent
// or not all maps.
func ReadMaps[E, N any](r Reader, key string, elems Table[E, N]) []*N {
	n := r.Maps(key)
	if n == 0 {
		return nil
	}
	out := make([]*N, n)
	for i := range out {
		er := r.MapAt(key, i)
		if er == nil {
			return nil
		}
		out[i] = new(N)
		elems.Read(er, out[i])
	}
	return out
}
