package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// ctlIntegration sends a DatadogQueryRequest (the integrations envelope) and prints the
// answers as they come (a write's pending answer, then its final one): status and
// response_data, or each whole response with --raw.
func ctlIntegration(ctx context.Context, a adminClient, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl integration", stderr)
	typ := fs.String("type", "", "query_type: its number (1-35) or name, e.g. 22 or ROLLOUTS_LIST")
	var req cloudv1.DatadogQueryRequest
	fs.StringVar(&req.Filter, "filter", "", "the request's filter (e.g. ns/name, kind/ns/name)")
	body := fs.String("json", "", "the request's json_body; @FILE reads it from a file, - from stdin")
	fs.StringVar(&req.Query, "query", "", "the request's query (Datadog)")
	fs.StringVar(&req.Sort, "sort", "", "the request's sort (Datadog)")
	from := fs.Int64("from", 0, "from_ts, unix seconds")
	to := fs.Int64("to", 0, "to_ts, unix seconds")
	maxResults := fs.Int("max-results", 0, "max_results (0: no limit)")
	timeoutSeconds := fs.Int("timeout-seconds", 0, "the request's timeout_seconds (0: the operator's default)")
	raw := fs.Bool("raw", false, "print each response as one line of JSON")
	operator := fs.String("operator", "", "operator id (see 'ctl status'); empty = the first connected operator")
	timeout := fs.Duration("timeout", 30*time.Minute, "how long to wait for the operator's answers (a write waits for approval)")
	if err := parse(fs, args); err != nil {
		return err
	}
	qt, err := queryType(*typ)
	if err != nil {
		return err
	}
	if *maxResults < 0 || *timeoutSeconds < 0 || *timeout <= 0 {
		return fmt.Errorf("%w: --max-results and --timeout-seconds must not be negative, --timeout must be positive", errUsage)
	}
	req.QueryType, req.FromTs, req.ToTs = qt, *from, *to
	req.MaxResults = int32(min(*maxResults, math.MaxInt32))
	req.TimeoutSeconds = int32(min(*timeoutSeconds, math.MaxInt32))
	if *body != "" {
		b, err := readPayload(*body)
		if err != nil {
			return err
		}
		req.JsonBody = string(b)
	}
	payload, err := protojson.Marshal(&req)
	if err != nil {
		return err
	}
	// follow: a write is answered twice, pending (the ChangeRequest to approve) and final.
	q := url.Values{"type": {"DatadogQueryRequest"}, "timeout": {timeout.String()}, "follow": {"true"}}
	if *operator != "" {
		q.Set("operator", *operator)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout+10*time.Second)
	defer cancel()
	return a.stream(ctx, "/v1/requests?"+q.Encode(), payload, func(line []byte) error {
		if *raw {
			_, err := fmt.Fprintf(stdout, "%s\n", line)
			return err
		}
		var resp cloudv1.DatadogQueryResponse
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(line, &resp); err != nil {
			return fmt.Errorf("admin API returned an unreadable DatadogQueryResponse: %w", err)
		}
		fmt.Fprintf(stdout, "== %s → %d\n", qt, resp.GetStatusCode())
		if cr := resp.GetChangeRequest(); cr != "" {
			fmt.Fprintf(stdout, "ChangeRequest %s (pending: %v)\n", cr, resp.GetPending())
		}
		if m := resp.GetErrorMessage(); m != "" {
			fmt.Fprintf(stdout, "error: %s\n", m)
		}
		printData(stdout, resp.GetResponseData())
		return nil
	})
}

// queryType reads --type: a DatadogQueryType number or name.
func queryType(s string) (cloudv1.DatadogQueryType, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: integration needs --type (a query_type number or name)", errUsage)
	}
	if n, err := strconv.ParseInt(s, 10, 32); err == nil {
		return cloudv1.DatadogQueryType(n), nil
	}
	if v, ok := cloudv1.DatadogQueryType_value[s]; ok {
		return cloudv1.DatadogQueryType(v), nil
	}
	return 0, fmt.Errorf("%w: --type %q is neither a number nor a DatadogQueryType name", errUsage, s)
}
