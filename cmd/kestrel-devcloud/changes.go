package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

// seconds is a non-negative flag value as a request's int32 seconds.
func seconds(n int) int32 {
	return int32(min(max(n, 0), math.MaxInt32))
}

// manifests reads each file as one YamlManifest named by the file's base name.
func manifests(files []string, ns string) ([]*cloudv1.YamlManifest, error) {
	out := make([]*cloudv1.YamlManifest, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(filepath.Clean(f))
		if err != nil {
			return nil, err
		}
		out = append(out, &cloudv1.YamlManifest{ManifestId: filepath.Base(f), YamlContent: string(b), Namespace: ns})
	}
	return out, nil
}

type changeFlags struct {
	toolFlags
	namespace string
}

func parseChangeFlags(name string, args []string, stderr io.Writer, wait time.Duration) (changeFlags, []string, error) {
	fs := newFlagSet(name, stderr)
	var f changeFlags
	fs.StringVar(&f.namespace, "namespace", "", "namespace for manifests that name none")
	fs.IntVar(&f.timeoutSeconds, "timeout-seconds", 0, "the request's timeout_seconds (0: the operator's default)")
	fs.BoolVar(&f.asJSON, "json", false, "print the raw responses as JSON, one per line")
	fs.StringVar(&f.operator, "operator", "", "operator id (see 'ctl status'); empty = the first connected operator")
	fs.DurationVar(&f.timeout, "timeout", wait, "how long to wait for the operator's (final) response")
	if err := fs.Parse(args); err != nil {
		return f, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() == 0 {
		return f, nil, fmt.Errorf("%w: %s needs at least one FILE", errUsage, name)
	}
	if f.timeoutSeconds < 0 || f.timeout <= 0 {
		return f, nil, fmt.Errorf("%w: --timeout-seconds must not be negative, --timeout must be positive", errUsage)
	}
	return f, fs.Args(), nil
}

// ctlDryRun sends the files as a YamlDryRunRequest and prints each result with its diff.
func ctlDryRun(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	f, files, err := parseChangeFlags("ctl dry-run", args, stderr, 90*time.Second)
	if err != nil {
		return err
	}
	ms, err := manifests(files, f.namespace)
	if err != nil {
		return err
	}
	req := &cloudv1.YamlDryRunRequest{YamlManifests: ms, TimeoutSeconds: seconds(f.timeoutSeconds)}
	var resp cloudv1.YamlDryRunResponse
	raw, err := roundTrip(ctx, a, "YamlDryRunRequest", req, &resp, f.toolFlags)
	if err != nil || f.asJSON {
		return printRaw(stdout, raw, err)
	}
	if resp.GetGlobalErrorMessage() != "" {
		fmt.Fprintf(stdout, "error: %s\n", resp.GetGlobalErrorMessage())
	}
	for _, r := range resp.GetResults() {
		verdict := "valid"
		if !r.GetValid() {
			verdict = "invalid"
		}
		fmt.Fprintf(stdout, "== %s: %s (%d)\n", r.GetManifestId(), verdict, r.GetStatusCode())
		if e := r.GetErrorMessage(); e != "" {
			fmt.Fprintln(stdout, e)
		}
		if d := r.GetDiff(); d != "" {
			fmt.Fprint(stdout, strings.TrimSuffix(d, "\n")+"\n")
		}
	}
	return nil
}

// ctlApply sends the files as a YamlApplyRequest and prints the answers as they come: the
// pending one naming the ChangeRequest, then the final result once someone decided.
func ctlApply(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	f, files, err := parseChangeFlags("ctl apply", args, stderr, 30*time.Minute)
	if err != nil {
		return err
	}
	ms, err := manifests(files, f.namespace)
	if err != nil {
		return err
	}
	payload, err := protojson.Marshal(&cloudv1.YamlApplyRequest{YamlManifests: ms, TimeoutSeconds: seconds(f.timeoutSeconds)})
	if err != nil {
		return err
	}
	q := url.Values{"type": {"YamlApplyRequest"}, "timeout": {f.timeout.String()}, "follow": {"true"}}
	if f.operator != "" {
		q.Set("operator", f.operator)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout+10*time.Second)
	defer cancel()
	return a.stream(ctx, "/v1/requests?"+q.Encode(), payload, func(line []byte) error {
		if f.asJSON {
			_, err := fmt.Fprintf(stdout, "%s\n", line)
			return err
		}
		var resp cloudv1.YamlApplyResponse
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(line, &resp); err != nil {
			return fmt.Errorf("admin API returned an unreadable YamlApplyResponse: %w", err)
		}
		printApply(stdout, &resp)
		return nil
	})
}

func printApply(w io.Writer, resp *cloudv1.YamlApplyResponse) {
	state := "final"
	if resp.GetPending() {
		state = "pending"
	}
	fmt.Fprintf(w, "== YamlApplyResponse %s (%s)", resp.GetRequestId(), state)
	if cr := resp.GetChangeRequest(); cr != "" {
		fmt.Fprintf(w, " ChangeRequest %s", cr)
	}
	fmt.Fprintln(w)
	if e := resp.GetGlobalErrorMessage(); e != "" {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	for _, r := range resp.GetResults() {
		fmt.Fprintf(w, "%s: %d", r.GetManifestId(), r.GetStatusCode())
		if info := r.GetAppliedResourceInfo(); info != "" {
			fmt.Fprintf(w, " %s", info)
		}
		if e := r.GetErrorMessage(); e != "" {
			fmt.Fprintf(w, " %s", e)
		}
		fmt.Fprintln(w)
	}
}

// ctlPushPolicy pushes one NetworkPolicy and prints the operator's answer, which comes once
// the policy was decided in the cluster.
func ctlPushPolicy(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl push-policy", stderr)
	stream := fs.String("stream", "data", "push on the data or the control stream")
	id := fs.String("policy-id", "", "the policy_id (empty: a random one)")
	asJSON := fs.Bool("json", false, "print the raw answer as JSON")
	operator := fs.String("operator", "", "operator id (see 'ctl status'); empty = the first connected operator")
	timeout := fs.Duration("timeout", 30*time.Minute, "how long to wait for the decision")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() != 1 || (*stream != "data" && *stream != "control") || *timeout <= 0 {
		return fmt.Errorf("%w: ctl push-policy [--stream data|control] FILE", errUsage)
	}
	b, err := os.ReadFile(filepath.Clean(fs.Arg(0)))
	if err != nil {
		return err
	}
	payload, err := protojson.Marshal(&cloudv1.NetworkPolicyWithError{NetworkPolicy: string(b), PolicyId: *id})
	if err != nil {
		return err
	}
	q := url.Values{"stream": {*stream}, "timeout": {timeout.String()}}
	if *operator != "" {
		q.Set("operator", *operator)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout+10*time.Second)
	defer cancel()
	fmt.Fprintf(stderr, "pushed on %s; waiting for the decision in the cluster...\n", *stream)
	raw, err := a.call(ctx, http.MethodPost, "/v1/policies?"+q.Encode(), payload)
	if err != nil || *asJSON {
		return printRaw(stdout, raw, err)
	}
	var ack cloudv1.NetworkPolicyWithError
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &ack); err != nil {
		return err
	}
	if ack.GetErrorMessage() == "" {
		fmt.Fprintf(stdout, "policy %s: applied\n", ack.GetPolicyId())
	} else {
		fmt.Fprintf(stdout, "policy %s: not applied: %s\n", ack.GetPolicyId(), ack.GetErrorMessage())
	}
	return nil
}

// ctlRenewCert sends a CertificateRenewalRequest with the files (PEM, base64-encoded as
// the protocol wants) and, when accepted, waits until the operator connects with the new
// certificate.
func ctlRenewCert(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl renew-cert", stderr)
	certFile := fs.String("cert", "", "the new client certificate (PEM)")
	keyFile := fs.String("key", "", "its private key (PEM)")
	caFile := fs.String("ca", "", "the CA certificate (PEM)")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the operator to reconnect with the new certificate (0: do not wait)")
	var f toolFlags
	fs.BoolVar(&f.asJSON, "json", false, "print the raw response as JSON")
	fs.StringVar(&f.operator, "operator", "", "operator id (see 'ctl status'); empty = the first connected operator")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for the operator's response")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *certFile == "" || *keyFile == "" || *caFile == "" {
		return fmt.Errorf("%w: ctl renew-cert needs --cert, --key and --ca", errUsage)
	}
	blobs := map[string]string{}
	for name, path := range map[string]string{"cert": *certFile, "key": *keyFile, "ca": *caFile} {
		b, err := os.ReadFile(filepath.Clean(path))
		if err != nil {
			return err
		}
		blobs[name] = string(b)
	}
	serial := ""
	if block, _ := pem.Decode([]byte(blobs["cert"])); block != nil {
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			serial = c.SerialNumber.Text(16)
		}
	}
	enc := base64.StdEncoding.EncodeToString
	req := &cloudv1.CertificateRenewalRequest{ClientCert: enc([]byte(blobs["cert"])), ClientKey: enc([]byte(blobs["key"])),
		CaCert: enc([]byte(blobs["ca"])), SerialNumber: serial}
	var resp cloudv1.CertificateRenewalResponse
	raw, err := roundTrip(ctx, a, "CertificateRenewalRequest", req, &resp, f)
	if err != nil {
		return err
	}
	switch {
	case f.asJSON:
		if err := writeIndented(stdout, raw); err != nil {
			return err
		}
	case resp.GetSuccess():
		fmt.Fprintf(stdout, "accepted: certificate serial %s applied at %s\n", serial, resp.GetAppliedAt().AsTime().Format(time.RFC3339))
	default:
		fmt.Fprintf(stdout, "refused: %s\n", resp.GetErrorMessage())
	}
	if !resp.GetSuccess() || *wait <= 0 || serial == "" {
		return nil
	}
	return waitSerial(ctx, a, f.operator, serial, *wait, stdout)
}

// waitSerial polls the status until the operator presents the certificate serial.
func waitSerial(ctx context.Context, a adminClient, operator, serial string, wait time.Duration, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		body, err := a.call(ctx, http.MethodGet, "/v1/status", nil)
		if err == nil {
			var st devcloud.Status
			if json.Unmarshal(body, &st) == nil {
				for _, op := range st.Operators {
					if (operator == "" || op.ID == operator) && op.CertSerial == serial {
						fmt.Fprintf(stdout, "operator %s connected with certificate serial %s\n", op.ID, serial)
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the operator did not connect with certificate serial %s within %v", serial, wait)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ctlRestart sends an OperatorRestartRequest and prints the answer.
func ctlRestart(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl restart", stderr)
	delay := fs.Int("delay-seconds", 0, "delay_seconds: wait this long before restarting")
	graceful := fs.Bool("graceful", true, "graceful: a rolling restart rather than an exit")
	reason := fs.String("reason", "requested with kestrel-devcloud ctl restart", "the reason given")
	var f toolFlags
	fs.BoolVar(&f.asJSON, "json", false, "print the raw response as JSON")
	fs.StringVar(&f.operator, "operator", "", "operator id (see 'ctl status'); empty = the first connected operator")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for the operator's response")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *delay < 0 {
		return fmt.Errorf("%w: --delay-seconds must not be negative", errUsage)
	}
	req := &cloudv1.OperatorRestartRequest{DelaySeconds: seconds(*delay), Graceful: *graceful, Reason: *reason}
	var resp cloudv1.OperatorRestartResponse
	raw, err := roundTrip(ctx, a, "OperatorRestartRequest", req, &resp, f)
	if err != nil || f.asJSON {
		return printRaw(stdout, raw, err)
	}
	if resp.GetSuccess() {
		fmt.Fprintf(stdout, "restart scheduled for %s\n", resp.GetInitiatedAt().AsTime().Format(time.RFC3339))
	} else {
		fmt.Fprintf(stdout, "refused: %s\n", resp.GetErrorMessage())
	}
	return nil
}

// stream performs an admin request answered with newline-delimited JSON and calls each
// for every line.
func (a adminClient) stream(ctx context.Context, path string, body []byte, each func([]byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the devcloud admin API at %s (is 'kestrel-devcloud serve' running with --admin?): %w", a.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin API: %s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return fmt.Errorf("admin API: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(out)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 32<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(line, &e) == nil && e.Error != "" {
			return errors.New("admin API: " + e.Error)
		}
		if err := each(line); err != nil {
			return err
		}
	}
	return sc.Err()
}
