package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// toolFlags are the flags of ctl k8s-api and ctl shell.
type toolFlags struct {
	timeoutSeconds int
	asJSON         bool
	operator       string
	timeout        time.Duration
}

func parseToolFlags(name string, args []string, stderr io.Writer) (toolFlags, []string, error) {
	fs := newFlagSet(name, stderr)
	var f toolFlags
	fs.IntVar(&f.timeoutSeconds, "timeout-seconds", 0, "the request's timeout_seconds (0: the operator's default)")
	fs.BoolVar(&f.asJSON, "json", false, "print the raw response as JSON")
	fs.StringVar(&f.operator, "operator", "", "operator id (see 'ctl status'); empty = the first connected operator")
	fs.DurationVar(&f.timeout, "timeout", 90*time.Second, "how long to wait for the operator's response")
	if err := fs.Parse(args); err != nil {
		return f, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() == 0 {
		return f, nil, fmt.Errorf("%w: %s needs at least one argument", errUsage, name)
	}
	if f.timeoutSeconds < 0 || f.timeout <= 0 {
		return f, nil, fmt.Errorf("%w: --timeout-seconds must not be negative, --timeout must be positive", errUsage)
	}
	return f, fs.Args(), nil
}

// ctlK8sAPI sends a KubernetesAPIRequest with the given paths and prints each result.
func ctlK8sAPI(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	f, paths, err := parseToolFlags("ctl k8s-api", args, stderr)
	if err != nil {
		return err
	}
	req := &cloudv1.KubernetesAPIRequest{ApiPaths: paths, TimeoutSeconds: int32(min(f.timeoutSeconds, math.MaxInt32))} //nolint:gosec // G115: capped above
	var resp cloudv1.KubernetesAPIResponse
	raw, err := roundTrip(ctx, a, "KubernetesAPIRequest", req, &resp, f)
	if err != nil || f.asJSON {
		return printRaw(stdout, raw, err)
	}
	if resp.GetGlobalErrorMessage() != "" {
		fmt.Fprintf(stdout, "error: %s\n", resp.GetGlobalErrorMessage())
	}
	for _, r := range resp.GetResults() {
		fmt.Fprintf(stdout, "== GET %s → %d (%d bytes)\n", r.GetApiPath(), r.GetStatusCode(), len(r.GetResponseData()))
		if r.GetErrorMessage() != "" {
			fmt.Fprintf(stdout, "error: %s\n", r.GetErrorMessage())
		}
		printData(stdout, r.GetResponseData())
	}
	return nil
}

// ctlShell sends a ShellCommandRequest with the given commands and prints each result.
func ctlShell(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	f, cmds, err := parseToolFlags("ctl shell", args, stderr)
	if err != nil {
		return err
	}
	req := &cloudv1.ShellCommandRequest{Commands: cmds, TimeoutSeconds: int32(min(f.timeoutSeconds, math.MaxInt32))} //nolint:gosec // G115: capped above
	var resp cloudv1.ShellCommandResponse
	raw, err := roundTrip(ctx, a, "ShellCommandRequest", req, &resp, f)
	if err != nil || f.asJSON {
		return printRaw(stdout, raw, err)
	}
	if resp.GetGlobalErrorMessage() != "" {
		fmt.Fprintf(stdout, "error: %s\n", resp.GetGlobalErrorMessage())
	}
	for _, r := range resp.GetResults() {
		fmt.Fprintf(stdout, "$ %s\n", r.GetCommand())
		if out := r.GetStdout(); out != "" {
			fmt.Fprint(stdout, strings.TrimSuffix(out, "\n")+"\n")
		}
		if e := r.GetStderr(); e != "" {
			fmt.Fprintf(stdout, "[stderr] %s\n", strings.ReplaceAll(strings.TrimSuffix(e, "\n"), "\n", "\n[stderr] "))
		}
		fmt.Fprintf(stdout, "[exit %d]\n", r.GetExitCode())
	}
	return nil
}

func roundTrip(ctx context.Context, a adminClient, typ string, req, resp proto.Message, f toolFlags) ([]byte, error) {
	payload, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	raw, err := sendRequest(ctx, a, typ, payload, f.operator, f.timeout)
	if err != nil {
		return nil, err
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, resp); err != nil {
		return nil, fmt.Errorf("admin API returned an unreadable %s response: %w", typ, err)
	}
	return raw, nil
}

func printRaw(w io.Writer, raw []byte, err error) error {
	if err != nil {
		return err
	}
	return writeIndented(w, raw)
}

// printData prints a response body: indented when it is JSON, as it is otherwise.
func printData(w io.Writer, data string) {
	if data == "" {
		return
	}
	var buf bytes.Buffer
	if json.Valid([]byte(data)) && json.Indent(&buf, []byte(data), "", "  ") == nil {
		buf.WriteByte('\n')
		_, _ = buf.WriteTo(w)
		return
	}
	fmt.Fprint(w, strings.TrimSuffix(data, "\n")+"\n")
}
