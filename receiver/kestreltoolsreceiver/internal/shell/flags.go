package shell

import (
	"slices"
	"sort"
	"strings"
)

// flag is one allowed flag: its long name, an optional one-letter short name, whether it
// takes a value, and a check of that value.
type flag struct {
	long, short string
	value       bool
	check       func(string) error
}

// verbSpec is what one verb accepts.
type verbSpec struct {
	flags []flag
	// positional checks the positional arguments (nil: any).
	positional func([]string) error
	// Why, for verbs that are left out on purpose, is not needed: only allowed verbs are listed.
}

var (
	namespace     = flag{long: "namespace", short: "n", value: true}
	output        = flag{long: "output", short: "o", value: true, check: checkOutput}
	selector      = flag{long: "selector", short: "l", value: true}
	allNamespaces = flag{long: "all-namespaces", short: "A"}
	fieldSelector = flag{long: "field-selector", value: true}
	noHeaders     = flag{long: "no-headers"}
	sortBy        = flag{long: "sort-by", value: true}
	chunkSize     = flag{long: "chunk-size", value: true}
)

// kubectlVerbs are the read-only kubectl commands this collector runs in-process. Anything
// that writes, opens a stream into a container, reads local files (-f, -k, *-file outputs)
// or follows changes until the deadline (-w, -f) has no entry and is refused.
var kubectlVerbs = map[string]*verbSpec{
	"get": {flags: []flag{namespace, output, selector, allNamespaces, fieldSelector, noHeaders, sortBy, chunkSize,
		{long: "show-labels"}, {long: "label-columns", short: "L", value: true}, {long: "ignore-not-found"},
		{long: "show-kind"}, {long: "server-print"}, {long: "show-managed-fields"},
		{long: "subresource", value: true, check: oneOf("status", "scale")}}},
	"describe": {flags: []flag{namespace, selector, allNamespaces, chunkSize, {long: "show-events"}}},
	"logs": {flags: []flag{namespace, selector, {long: "container", short: "c", value: true}, {long: "previous", short: "p"},
		{long: "tail", value: true}, {long: "since", value: true}, {long: "since-time", value: true},
		{long: "timestamps"}, {long: "limit-bytes", value: true}, {long: "all-containers"}, {long: "prefix"},
		{long: "ignore-errors"}, {long: "pod-running-timeout", value: true}}},
	"top": {flags: []flag{namespace, selector, allNamespaces, fieldSelector, noHeaders, sortBy,
		{long: "containers"}, {long: "sum"}, {long: "show-capacity"}},
		positional: func(a []string) error {
			if len(a) == 0 || !slices.Contains([]string{"pod", "pods", "po", "node", "nodes", "no"}, a[0]) {
				return refuse("kubectl top needs pod or node")
			}
			return nil
		}},
	"events":          {flags: []flag{namespace, output, allNamespaces, noHeaders, chunkSize, {long: "for", value: true}, {long: "types", value: true}}},
	"explain":         {flags: []flag{namespace, {long: "recursive"}, {long: "api-version", value: true}, {long: "output", short: "o", value: true, check: oneOf("plaintext", "plaintext-openapiv2")}}},
	"api-resources":   {flags: []flag{namespace, noHeaders, sortBy, {long: "namespaced", value: true, check: oneOf("true", "false")}, {long: "api-group", value: true}, {long: "verbs", value: true}, {long: "output", short: "o", value: true, check: oneOf("wide", "name")}}},
	"api-versions":    {flags: []flag{namespace}},
	"version":         {flags: []flag{namespace, {long: "output", short: "o", value: true, check: oneOf("json", "yaml")}}},
	"auth can-i":      {flags: []flag{namespace, allNamespaces, noHeaders, {long: "list"}, {long: "subresource", value: true}, {long: "quiet", short: "q"}}},
	"rollout status":  {flags: []flag{namespace, selector, {long: "watch", short: "w"}, {long: "timeout", value: true}, {long: "revision", value: true}}},
	"rollout history": {flags: []flag{namespace, selector, output, {long: "revision", value: true}}},
	"cluster-info": {flags: []flag{namespace}, positional: func(a []string) error {
		if len(a) > 0 {
			return refuse("kubectl cluster-info %s is not allowed (dump writes the whole cluster's state)", a[0])
		}
		return nil
	}},
}

// hubbleVerbs: hubble observe, answered by one non-follow GetFlows to Hubble Relay.
var hubbleVerbs = map[string]*verbSpec{
	"observe": {flags: []flag{namespace,
		{long: "pod", value: true}, {long: "from-pod", value: true}, {long: "to-pod", value: true},
		{long: "from-namespace", value: true}, {long: "to-namespace", value: true},
		{long: "label", short: "l", value: true}, {long: "from-label", value: true}, {long: "to-label", value: true},
		{long: "verdict", value: true}, {long: "protocol", value: true},
		{long: "port", value: true}, {long: "from-port", value: true}, {long: "to-port", value: true},
		{long: "last", value: true}, {long: "since", value: true},
		{long: "output", short: "o", value: true, check: oneOf("json", "jsonpb", "compact", "dict")},
	}, positional: func(a []string) error {
		if len(a) > 0 {
			return refuse("hubble observe takes no positional arguments (got %q); filter with flags", a[0])
		}
		return nil
	}},
}

// Verbs lists every "program verb" this collector implements, sorted; it is the default
// allowlist.
func Verbs() []string {
	var out []string
	for v := range kubectlVerbs {
		out = append(out, "kubectl "+v)
	}
	for v := range hubbleVerbs {
		out = append(out, "hubble "+v)
	}
	sort.Strings(out)
	return out
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(vals, v) {
			return nil
		}
		return refuse("value %q is not allowed; allowed: %s", v, strings.Join(vals, ", "))
	}
}

// checkOutput allows the output formats that read no local file and run no template
// engine beyond JSONPath.
func checkOutput(v string) error {
	name, _, _ := strings.Cut(v, "=")
	switch name {
	case "json", "yaml", "wide", "name":
		return nil
	case "jsonpath", "jsonpath-as-json", "custom-columns":
		if !strings.Contains(v, "=") {
			return refuse("-o %s needs a template: -o %s=...", name, name)
		}
		return nil
	case "jsonpath-file", "custom-columns-file", "go-template-file", "template-file":
		return refuse("-o %s reads a local file; use -o %s=... inline", name, strings.TrimSuffix(name, "-file"))
	default:
		return refuse("-o %s is not allowed; allowed: json, yaml, wide, name, jsonpath=..., jsonpath-as-json=..., custom-columns=...", name)
	}
}

// checkFlags checks every flag of args against spec and hands the positional arguments to
// its check.
func checkFlags(prog, verb string, args []string, spec *verbSpec) error {
	byLong := map[string]flag{}
	byShort := map[string]flag{}
	for _, f := range spec.flags {
		byLong[f.long] = f
		if f.short != "" {
			byShort[f.short] = f
		}
	}
	names := func() string {
		var out []string
		for _, f := range spec.flags {
			n := "--" + f.long
			if f.short != "" {
				n = "-" + f.short + "/" + n
			}
			out = append(out, n)
		}
		return strings.Join(out, ", ")
	}
	unknown := func(name string) error {
		return refuse("flag %s is not allowed for %s %s; allowed: %s", name, prog, verb, names())
	}
	checkValue := func(f flag, v string) error {
		if f.check == nil {
			return nil
		}
		return f.check(v)
	}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return refuse("\"--\" is not allowed")
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			f, ok := byLong[name]
			if !ok {
				return unknown("--" + name)
			}
			if !f.value {
				if hasVal && val != "true" && val != "false" {
					return refuse("flag --%s takes no value", name)
				}
				continue
			}
			if !hasVal {
				if i+1 >= len(args) {
					return refuse("flag --%s needs a value", name)
				}
				i++
				val = args[i]
			}
			if err := checkValue(f, val); err != nil {
				return err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// -A, -oyaml, -o=yaml, -o yaml, -Ap (booleans combined).
			for j := 1; j < len(a); j++ {
				f, ok := byShort[a[j:j+1]]
				if !ok {
					return unknown("-" + a[j:j+1])
				}
				if !f.value {
					continue
				}
				val := strings.TrimPrefix(a[j+1:], "=")
				if val == "" {
					if i+1 >= len(args) {
						return refuse("flag -%s needs a value", f.short)
					}
					i++
					val = args[i]
				}
				if err := checkValue(f, val); err != nil {
					return err
				}
				break
			}
		default:
			positional = append(positional, a)
		}
	}
	if spec.positional != nil {
		return spec.positional(positional)
	}
	return nil
}
