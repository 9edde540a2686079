// Package scrub filters Kubernetes API JSON as it streams from the apiserver to a reader:
// Secret values are replaced by markers, and managedFields and the last-applied
// annotation are removed, at any depth of any document (single objects, lists, Tables,
// PartialObjectMetadata, v1.List, watch event streams, objects embedded in custom
// resources). It is the one place every read of the cloud's tools passes through
// (internal/kubeclient applies it to every response of the apiserver), so no output form
// can bypass it.
package scrub // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/scrub"

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// LastApplied is the annotation kubectl apply keeps the previous configuration in; for a
// Secret it holds the Secret's data in clear text.
const LastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Marker is what a Secret value becomes: its length, never its content. Values of data are
// base64 in the API, so there the marker is base64-encoded too: typed clients (kubectl
// describe) keep decoding the object, and decoding a value yields the marker.
func Marker(n int) string { return "<redacted: " + strconv.Itoa(n) + " bytes>" }

// ErrDuplicateKind fails closed on an object that names its kind twice: the first kind
// may already have let data through that the second would have scrubbed.
var ErrDuplicateKind = errors.New("scrub: object with more than one kind")

var null = []byte("null")

// maxDepth bounds nesting, so a hostile document cannot exhaust the stack.
const maxDepth = 256

// Options say what is known about a document before it is read.
type Options struct {
	// SecretScope treats every object of the document as a Secret: the request was for
	// the secrets resource, so data and stringData are scrubbed wherever they appear,
	// whatever the document's shape (list, Table, watch event, metadata-only).
	SecretScope bool
}

// Copy reads a stream of JSON values (one document, or a watch stream of many) from r,
// filters them and writes them to w. It fails on malformed JSON, leaving w with a prefix
// of the filtered output.
func Copy(w io.Writer, r io.Reader, opts Options) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	f := &filter{dec: json.NewDecoder(r), opts: opts}
	f.dec.UseNumber()
	f.out = bw
	for {
		t, err := f.dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("scrub: %w", err)
		}
		f.last = t
		if err := f.restOfValue(ctx{secret: opts.SecretScope}); err != nil {
			return err
		}
		f.writeByte('\n')
	}
	if f.err != nil {
		return f.err
	}
	return bw.Flush()
}

// Bytes filters one in-memory document; for tests and small inputs.
func Bytes(in []byte, opts Options) ([]byte, error) {
	var out bytes.Buffer
	if err := Copy(&out, bytes.NewReader(in), opts); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// ctx is what the filter knows about the value it is reading.
type ctx struct {
	secret      bool // an object here is a Secret (or the document is in SecretScope)
	metadata    bool // this object is an object's metadata
	annotations bool // this object is metadata.annotations
	depth       int
}

type filter struct {
	dec  *json.Decoder
	out  io.Writer
	opts Options
	err  error // first write error
	// last is the token Token returned most recently; restOfValue starts from it.
	last json.Token
	// scratch is reused to quote strings, one a byte for writeByte: the writes of a large
	// document then allocate nothing of their own.
	scratch []byte
	one     [1]byte
}

func (f *filter) write(b []byte) {
	if f.err == nil {
		_, f.err = f.out.Write(b)
	}
}

func (f *filter) writeByte(c byte) {
	f.one[0] = c
	f.write(f.one[:])
}

// quote returns s as a JSON string in f's scratch buffer, valid until the next call.
func (f *filter) quote(s string) []byte {
	f.scratch = appendString(f.scratch[:0], s)
	return f.scratch
}

func (f *filter) token() (json.Token, error) {
	if f.err != nil {
		return nil, f.err
	}
	t, err := f.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("scrub: %w", err)
	}
	f.last = t
	return t, nil
}

// value reads one whole value and writes it filtered.
func (f *filter) value(c ctx) error {
	if _, err := f.token(); err != nil {
		return err
	}
	return f.restOfValue(c)
}

// restOfValue writes the value whose first token was just read.
func (f *filter) restOfValue(c ctx) error {
	t := f.last
	if c.depth > maxDepth {
		return fmt.Errorf("scrub: nesting deeper than %d", maxDepth)
	}
	switch v := t.(type) {
	case json.Delim:
		switch v {
		case '{':
			return f.object(c)
		case '[':
			return f.array(c)
		}
		return fmt.Errorf("scrub: unexpected %q", v)
	default:
		f.scalar(t)
		return nil
	}
}

func (f *filter) scalar(t json.Token) {
	switch v := t.(type) {
	case string:
		f.write(f.quote(v))
	case json.Number:
		f.write([]byte(v))
	case bool:
		f.write(strconv.AppendBool(f.scratch[:0], v))
	case nil:
		f.write(null)
	}
}

func (f *filter) array(c ctx) error {
	f.writeByte('[')
	child := ctx{secret: c.secret, depth: c.depth + 1}
	for n := 0; f.dec.More(); n++ {
		if n > 0 {
			f.writeByte(',')
		}
		if err := f.value(child); err != nil {
			return err
		}
	}
	if _, err := f.token(); err != nil { // ']'
		return err
	}
	f.writeByte(']')
	return nil
}

// deferred is a data or stringData field met before the object's kind: it is written at
// the end of the object, raw or scrubbed depending on the kind that followed.
type deferred struct {
	key           string
	raw, scrubbed []byte
}

func (f *filter) object(c ctx) error {
	f.writeByte('{')
	var (
		kindSeen bool
		secret   = c.secret
		list     bool // kind SecretList: its items are Secrets
		n        int
		pending  []deferred
	)
	key := func(k string) {
		if n > 0 {
			f.writeByte(',')
		}
		n++
		f.write(f.quote(k))
		f.writeByte(':')
	}
	child := ctx{secret: c.secret, depth: c.depth + 1}
	for f.dec.More() {
		t, err := f.token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		switch {
		case k == "kind":
			if kindSeen {
				return ErrDuplicateKind
			}
			kindSeen = true
			t, err := f.token()
			if err != nil {
				return err
			}
			if s, ok := t.(string); ok {
				secret = secret || strings.EqualFold(s, "Secret")
				list = strings.EqualFold(s, "SecretList")
			}
			key(k)
			if err := f.restOfValue(child); err != nil {
				return err
			}
		case c.metadata && k == "managedFields", c.annotations && k == LastApplied:
			if err := f.skip(); err != nil {
				return err
			}
		case k == "data" || k == "stringData":
			switch {
			case secret:
				key(k)
				if err := f.secretData(k == "data"); err != nil {
					return err
				}
			case kindSeen:
				key(k)
				if err := f.value(child); err != nil {
					return err
				}
			default:
				d, err := f.capture(k, child)
				if err != nil {
					return err
				}
				pending = append(pending, d)
			}
		case k == "metadata":
			key(k)
			if err := f.value(ctx{secret: c.secret, metadata: true, depth: c.depth + 1}); err != nil {
				return err
			}
		case c.metadata && k == "annotations":
			key(k)
			if err := f.value(ctx{secret: c.secret, annotations: true, depth: c.depth + 1}); err != nil {
				return err
			}
		case k == "items" && list:
			key(k)
			if err := f.value(ctx{secret: true, depth: c.depth + 1}); err != nil {
				return err
			}
		default:
			key(k)
			if err := f.value(child); err != nil {
				return err
			}
		}
	}
	if _, err := f.token(); err != nil { // '}'
		return err
	}
	for _, d := range pending {
		key(d.key)
		if secret {
			f.write(d.scrubbed)
		} else {
			f.write(d.raw)
		}
	}
	f.writeByte('}')
	return nil
}

// capture reads a data or stringData value of an object whose kind is not known yet into
// two buffers: filtered as it is, and scrubbed as a Secret's.
func (f *filter) capture(k string, c ctx) (deferred, error) {
	var raw, scrubbed bytes.Buffer
	out := f.out
	f.out = &raw
	t, err := f.token()
	if err == nil {
		if obj, ok := t.(json.Delim); ok && obj == '{' {
			err = f.dualObject(&raw, &scrubbed, k == "data", c)
		} else {
			err = f.restOfValue(c)
			scrubbed.Write(f.quote(valueMarker(t, k == "data")))
		}
	}
	f.out = out
	return deferred{key: k, raw: raw.Bytes(), scrubbed: scrubbed.Bytes()}, err
}

// dualObject writes the members of a data map both as they are (to raw, through the
// filter) and with their values replaced by markers (to scrubbed).
func (f *filter) dualObject(raw, scrubbed *bytes.Buffer, base64Values bool, c ctx) error {
	raw.WriteByte('{')
	scrubbed.WriteByte('{')
	child := ctx{secret: c.secret, depth: c.depth + 1}
	for n := 0; f.dec.More(); n++ {
		t, err := f.token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		if n > 0 {
			raw.WriteByte(',')
			scrubbed.WriteByte(',')
		}
		raw.Write(f.quote(k))
		raw.WriteByte(':')
		scrubbed.Write(f.quote(k))
		scrubbed.WriteByte(':')
		first, err := f.token()
		if err != nil {
			return err
		}
		if err := f.restOfValue(child); err != nil {
			return err
		}
		scrubbed.Write(f.quote(valueMarker(first, base64Values)))
	}
	if _, err := f.token(); err != nil {
		return err
	}
	raw.WriteByte('}')
	scrubbed.WriteByte('}')
	return nil
}

// secretData writes a Secret's data (base64 values) or stringData: the keys, each value
// replaced by a marker. A value that is not a map is replaced as a whole.
func (f *filter) secretData(base64Values bool) error {
	t, err := f.token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		if ok {
			if err := f.skipRest(d); err != nil {
				return err
			}
		}
		f.write(f.quote(valueMarker(t, base64Values)))
		return nil
	}
	f.writeByte('{')
	for n := 0; f.dec.More(); n++ {
		t, err := f.token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		if n > 0 {
			f.writeByte(',')
		}
		f.write(f.quote(k))
		f.writeByte(':')
		v, err := f.token()
		if err != nil {
			return err
		}
		if d, ok := v.(json.Delim); ok {
			if err := f.skipRest(d); err != nil {
				return err
			}
		}
		f.write(f.quote(valueMarker(v, base64Values)))
	}
	if _, err := f.token(); err != nil {
		return err
	}
	f.writeByte('}')
	return nil
}

// valueMarker is the marker for a value whose first token is t.
func valueMarker(t json.Token, base64Value bool) string {
	s, isString := t.(string)
	if !isString {
		m := "<redacted>"
		if base64Value {
			return base64.StdEncoding.EncodeToString([]byte(m))
		}
		return m
	}
	if base64Value {
		return base64.StdEncoding.EncodeToString([]byte(Marker(decodedLen(s))))
	}
	return Marker(len(s))
}

// decodedLen is the number of bytes a base64 value holds (its string length when it is
// not padded base64: the value is redacted either way).
func decodedLen(s string) int {
	if len(s)%4 != 0 {
		return len(s)
	}
	return base64.StdEncoding.DecodedLen(len(s)) - strings.Count(s[max(0, len(s)-2):], "=")
}

// skip reads one value and writes nothing.
func (f *filter) skip() error {
	t, err := f.token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); ok {
		return f.skipRest(d)
	}
	return nil
}

// skipRest reads to the end of the object or array that d opened.
func (f *filter) skipRest(d json.Delim) error {
	if d != '{' && d != '[' {
		return fmt.Errorf("scrub: unexpected %q", d)
	}
	for depth := 1; depth > 0; {
		t, err := f.token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = slices.Grow(b, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
