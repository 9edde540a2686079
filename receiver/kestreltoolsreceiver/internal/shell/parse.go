package shell

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Command is a validated command string: the program, the verb it runs (e.g. "get",
// "auth can-i", "observe") and its arguments after the program name.
type Command struct {
	Program string
	Verb    string
	Args    []string
}

// String is the allowlist entry of the command, e.g. "kubectl auth can-i".
func (c Command) String() string { return c.Program + " " + c.Verb }

// ErrRefused marks a command that was not run; its message says why.
var ErrRefused = errors.New("refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// Parse checks one command string against the shell grammar and the allowlist. Shell
// syntax is parsed with mvdan.cc/sh, and only a single simple command whose words are
// plain or quoted literals passes: pipes, redirections, command and process substitution,
// parameter and arithmetic expansion, globs and brace expansion, command lists (;, &&, ||),
// background jobs, subshells and blocks, and environment assignments are refused, each
// with its own reason. Nothing is ever handed to a shell: the words become the argument
// vector of an in-process implementation.
func Parse(s string, maxBytes int, allowed []string) (Command, error) {
	if len(s) > maxBytes {
		return Command{}, refuse("the command is %d bytes long; at most %d are accepted", len(s), maxBytes)
	}
	if strings.TrimSpace(s) == "" {
		return Command{}, refuse("empty command")
	}
	if strings.ContainsRune(s, 0) {
		return Command{}, refuse("NUL bytes are not allowed")
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(s), "")
	if err != nil {
		return Command{}, refuse("not a valid command line: %v", err)
	}
	if len(f.Stmts) != 1 {
		return Command{}, refuse("one command per entry: command lists (;, newlines) are not allowed")
	}
	st := f.Stmts[0]
	switch {
	case st.Background:
		return Command{}, refuse("background jobs (&) are not allowed")
	case st.Coprocess || st.Disown:
		return Command{}, refuse("coprocesses are not allowed")
	case st.Negated:
		return Command{}, refuse("negation (!) is not allowed")
	case len(st.Redirs) > 0:
		return Command{}, refuse("redirections (<, >, here-documents) are not allowed")
	}
	var call *syntax.CallExpr
	switch c := st.Cmd.(type) {
	case *syntax.CallExpr:
		call = c
	case *syntax.BinaryCmd:
		if c.Op == syntax.Pipe || c.Op == syntax.PipeAll {
			return Command{}, refuse("pipes (|) are not allowed: the output comes back whole, filter it with -o jsonpath or custom-columns")
		}
		return Command{}, refuse("command lists (&&, ||) are not allowed: send each command as its own entry")
	case *syntax.Subshell:
		return Command{}, refuse("subshells are not allowed")
	case *syntax.Block:
		return Command{}, refuse("command blocks ({ ... }) are not allowed")
	default:
		return Command{}, refuse("only simple commands are allowed (no %s)", nodeName(st.Cmd))
	}
	if len(call.Assigns) > 0 {
		return Command{}, refuse("environment assignments (%s=...) are not allowed", call.Assigns[0].Name.Value)
	}
	argv := make([]string, 0, len(call.Args))
	for _, w := range call.Args {
		a, err := literal(w)
		if err != nil {
			return Command{}, err
		}
		argv = append(argv, a)
	}
	if len(argv) == 0 {
		return Command{}, refuse("empty command")
	}
	return validate(argv, allowed)
}

// literal returns the value of a word made of plain and quoted literals only.
func literal(w *syntax.Word) (string, error) {
	var b strings.Builder
	for _, p := range w.Parts {
		switch x := p.(type) {
		case *syntax.Lit:
			if err := plain(x.Value); err != nil {
				return "", err
			}
			b.WriteString(x.Value)
		case *syntax.SglQuoted:
			if x.Dollar {
				return "", refuse("$'...' strings are not allowed; use plain single quotes")
			}
			b.WriteString(x.Value)
		case *syntax.DblQuoted:
			if x.Dollar {
				return "", refuse("$\"...\" strings are not allowed")
			}
			for _, q := range x.Parts {
				l, ok := q.(*syntax.Lit)
				if !ok {
					return "", refuse("%s inside double quotes is not allowed: nothing is expanded; use single quotes", nodeName(q))
				}
				if strings.ContainsAny(l.Value, "\\`$") {
					return "", refuse("escapes and $ inside double quotes are not allowed; use single quotes")
				}
				b.WriteString(l.Value)
			}
		default:
			return "", refuse("%s is not allowed", nodeName(p))
		}
	}
	return b.String(), nil
}

// plain refuses what the shell would expand in an unquoted literal.
func plain(s string) error {
	switch {
	case strings.ContainsAny(s, "*?["):
		return refuse("unquoted glob characters (*, ?, [) in %q: quote the argument", s)
	case strings.HasPrefix(s, "~"):
		return refuse("tilde expansion (~) is not allowed")
	case strings.Contains(s, "\\"):
		return refuse("backslash escapes are not allowed; use single quotes")
	case strings.Contains(s, "{") && strings.Contains(s, ","), strings.Contains(s, "{") && strings.Contains(s, ".."):
		return refuse("brace expansion in %q: quote the argument", s)
	}
	return nil
}

// nodeName names a shell construct for a refusal message.
func nodeName(n syntax.Node) string {
	switch n.(type) {
	case *syntax.CmdSubst:
		return "command substitution ($(...) or backticks)"
	case *syntax.ProcSubst:
		return "process substitution (<(...), >(...))"
	case *syntax.ParamExp:
		return "parameter expansion ($VAR)"
	case *syntax.ArithmExp, *syntax.ArithmCmd:
		return "arithmetic expansion"
	case *syntax.ExtGlob:
		return "extended glob"
	case *syntax.BraceExp:
		return "brace expansion"
	case *syntax.IfClause, *syntax.WhileClause, *syntax.ForClause, *syntax.CaseClause:
		return "control flow"
	case *syntax.FuncDecl:
		return "function definitions"
	case *syntax.TestClause:
		return "test expressions ([[ ]])"
	case *syntax.DeclClause, *syntax.LetClause:
		return "declarations"
	case *syntax.TimeClause:
		return "time"
	case *syntax.CoprocClause:
		return "coprocesses"
	default:
		return fmt.Sprintf("%T", n)
	}
}

// validate checks the argument vector against the programs and verbs this collector
// implements and the configured allowlist.
func validate(argv []string, allowed []string) (Command, error) {
	prog := argv[0]
	var specs map[string]*verbSpec
	switch prog {
	case "kubectl":
		specs = kubectlVerbs
	case "hubble":
		specs = hubbleVerbs
	default:
		return Command{}, refuse("%q is not allowed; allowed: %s", prog, strings.Join(allowed, ", "))
	}
	verb, rest, err := findVerb(prog, argv[1:], specs, allowed)
	if err != nil {
		return Command{}, err
	}
	if err := checkFlags(prog, verb, rest, specs[verb]); err != nil {
		return Command{}, err
	}
	return Command{Program: prog, Verb: verb, Args: argv[1:]}, nil
}

// findVerb finds the verb: the first one or two positional words (global flags such as
// -n may come before it).
func findVerb(prog string, args []string, specs map[string]*verbSpec, allowed []string) (string, []string, error) {
	var words []int
	for i := 0; i < len(args) && len(words) < 2; i++ {
		switch a := args[i]; {
		case a == "-n" || a == "--namespace":
			i++ // its value
		case strings.HasPrefix(a, "-"):
		default:
			words = append(words, i)
		}
	}
	notAllowed := func(what string) error {
		return refuse("%q is not allowed; allowed: %s", what, strings.Join(allowed, ", "))
	}
	if len(words) == 0 {
		return "", nil, notAllowed(prog)
	}
	one := args[words[0]]
	cands := []string{one}
	if len(words) == 2 {
		cands = []string{one + " " + args[words[1]], one}
	}
	for _, v := range cands {
		if _, ok := specs[v]; !ok {
			continue
		}
		if !slices.Contains(allowed, prog+" "+v) {
			return "", nil, notAllowed(prog + " " + v)
		}
		rest := slices.Delete(slices.Clone(args), words[0], words[0]+1)
		if strings.Contains(v, " ") {
			rest = slices.Delete(rest, words[1]-1, words[1])
		}
		return v, rest, nil
	}
	return "", nil, notAllowed(prog + " " + one)
}
