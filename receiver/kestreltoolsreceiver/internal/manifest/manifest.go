// Package manifest decodes the YAML the cloud sends for dry-runs and applies into
// Kubernetes objects, with bounds checked before any work: the size before parsing, then
// the number of documents and the number of nodes each document has once its aliases are
// expanded, before anything is expanded. A "billion laughs" document is refused by
// counting, never by running out of memory.
package manifest // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Limits bound one YAML text.
type Limits struct {
	// MaxBytes is the largest text accepted; larger ones are refused unparsed.
	MaxBytes int
	// MaxDocuments bounds the YAML documents of one text.
	MaxDocuments int
	// MaxNodes bounds the nodes of one document counted with every alias expanded.
	MaxNodes int
}

// DefaultLimits are generous for real manifests and small enough to keep a request's
// memory bounded.
var DefaultLimits = Limits{MaxBytes: 1 << 20, MaxDocuments: 32, MaxNodes: 100_000}

// Error is a manifest that cannot be used; it is the client's fault (HTTP 400).
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// Errorf returns an Error: a manifest the operator cannot use.
func Errorf(format string, args ...any) error { return &Error{msg: fmt.Sprintf(format, args...)} }

// Decode returns the objects of a (multi-document) YAML text, in order. Empty documents are
// skipped; a text without any object is an error. Every object has apiVersion, kind and
// metadata.name (or metadata.generateName is refused: an apply needs a name).
func Decode(text string, l Limits) ([]*unstructured.Unstructured, error) {
	if len(text) > l.MaxBytes {
		return nil, Errorf("manifest is %d bytes; at most %d are accepted", len(text), l.MaxBytes)
	}
	dec := yaml.NewDecoder(strings.NewReader(text))
	var objs []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Errorf("document %d: invalid YAML: %v", doc, err)
		}
		if doc > l.MaxDocuments {
			return nil, Errorf("more than %d YAML documents in one manifest", l.MaxDocuments)
		}
		if empty(&n) {
			continue
		}
		if c := count(&n, l.MaxNodes, map[*yaml.Node]int{}); c > l.MaxNodes {
			return nil, Errorf("document %d expands to more than %d YAML nodes (aliases counted expanded); refused", doc, l.MaxNodes)
		}
		obj, err := object(&n)
		if err != nil {
			return nil, Errorf("document %d: %v", doc, err)
		}
		objs = append(objs, obj)
	}
	if len(objs) == 0 {
		return nil, Errorf("manifest contains no object")
	}
	return objs, nil
}

// empty reports a document with nothing but comments or an explicit null.
func empty(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode {
		return len(n.Content) == 0 || empty(n.Content[0])
	}
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// count returns the number of nodes of n with aliases expanded, stopping once it passes
// limit. memo holds the counts of anchored nodes so that each is walked once: the walk is
// linear in the parsed text even when the expansion is exponential.
func count(n *yaml.Node, limit int, memo map[*yaml.Node]int) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.AliasNode {
		if c, ok := memo[n.Alias]; ok {
			return c
		}
		// An alias to a node still being counted is a cycle; yaml.v3 refuses those, count
		// it as over the limit all the same.
		memo[n.Alias] = limit + 1
		c := count(n.Alias, limit, memo)
		memo[n.Alias] = c
		return c
	}
	total := 1
	for _, c := range n.Content {
		total += count(c, limit, memo)
		if total > limit {
			return total
		}
	}
	if n.Anchor != "" {
		memo[n] = total
	}
	return total
}

// object converts a bounded document into an unstructured object.
func object(n *yaml.Node) (*unstructured.Unstructured, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a Kubernetes object (a YAML mapping with apiVersion and kind), got %T", v)
	}
	clean, err := jsonable(m)
	if err != nil {
		return nil, err
	}
	// Through JSON so that numbers become int64/float64, as unstructured objects need.
	b, err := json.Marshal(clean)
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %w", err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	switch {
	case obj.GetAPIVersion() == "":
		return nil, errors.New("apiVersion is missing")
	case obj.GetName() == "":
		return nil, fmt.Errorf("%s has no metadata.name (generateName cannot be applied)", obj.GetKind())
	}
	return obj, nil
}

// jsonable turns YAML's mapping keys into strings and refuses what JSON cannot hold.
func jsonable(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("mapping key %v is not a string", k)
			}
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			m[ks] = c
		}
		return m, nil
	case []any:
		for i, e := range t {
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	default:
		return t, nil
	}
}

// Name describes an object for people: "networking.k8s.io/v1 NetworkPolicy shop/allow-web".
func Name(obj *unstructured.Unstructured) string {
	var b bytes.Buffer
	b.WriteString(obj.GetAPIVersion() + " " + obj.GetKind() + " ")
	if ns := obj.GetNamespace(); ns != "" {
		b.WriteString(ns + "/")
	}
	b.WriteString(obj.GetName())
	return b.String()
}
