// Package hubble answers `hubble observe` with one non-follow GetFlows call to Hubble
// Relay, printed like the hubble CLI prints flows (compact lines, or one JSON object per
// line).
package hubble // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/hubble"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/shell"
)

// defaultLast is how many flows `hubble observe` shows without --last or --since, as the
// hubble CLI does.
const defaultLast = 20

// maxLast bounds --last; the output is bounded anyway, this bounds Relay's work.
const maxLast = 100_000

// Runner runs hubble observe against one Relay connection (nil: no Relay configured).
type Runner struct {
	conn *grpc.ClientConn
	now  func() time.Time
}

// New returns a runner; conn is the connection to Hubble Relay, or nil.
func New(conn *grpc.ClientConn) *Runner {
	return &Runner{conn: conn, now: time.Now}
}

// ErrNoRelay is the answer when no Relay is configured.
var ErrNoRelay = errors.New("hubble observe: no Hubble Relay is configured in this collector (the kestrel_tools receiver's shell::hubble_relay)")

// Run answers one validated `hubble observe` command.
func (r *Runner) Run(ctx context.Context, cmd shell.Command, stdout, stderr io.Writer) int {
	if r.conn == nil {
		fmt.Fprintln(stderr, ErrNoRelay)
		return 1
	}
	req, out, err := r.request(cmd.Args[1:])
	if err != nil {
		fmt.Fprintf(stderr, "hubble observe: %v\n", err)
		return 2
	}
	stream, err := observerpb.NewObserverClient(r.conn).GetFlows(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "hubble observe: calling Hubble Relay: %v\n", err)
		return 1
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "hubble observe: %v\n", err)
			return 1
		}
		if resp.GetFlow() == nil {
			continue // node status and lost-events notices
		}
		if err := out(stdout, resp); err != nil {
			fmt.Fprintf(stderr, "hubble observe: printing: %v\n", err)
			return 1
		}
	}
}

// request turns the flags (already checked by shell.Parse) into a GetFlowsRequest the way
// the hubble CLI does: --namespace, --pod, --label and --port match either end of a flow
// (two filters, ORed), --from-*/--to-* one end, --verdict and --protocol both.
func (r *Runner) request(args []string) (*observerpb.GetFlowsRequest, formatter, error) {
	fs := pflag.NewFlagSet("observe", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		ns, pods, fromPods, toPods, fromNS, toNS []string
		labels, fromLabels, toLabels, verdicts   []string
		protocols, ports, fromPorts, toPorts     []string
		last                                     uint64
		since, output                            string
	)
	fs.StringArrayVarP(&ns, "namespace", "n", nil, "")
	fs.StringArrayVar(&pods, "pod", nil, "")
	fs.StringArrayVar(&fromPods, "from-pod", nil, "")
	fs.StringArrayVar(&toPods, "to-pod", nil, "")
	fs.StringArrayVar(&fromNS, "from-namespace", nil, "")
	fs.StringArrayVar(&toNS, "to-namespace", nil, "")
	fs.StringArrayVarP(&labels, "label", "l", nil, "")
	fs.StringArrayVar(&fromLabels, "from-label", nil, "")
	fs.StringArrayVar(&toLabels, "to-label", nil, "")
	fs.StringArrayVar(&verdicts, "verdict", nil, "")
	fs.StringArrayVar(&protocols, "protocol", nil, "")
	fs.StringArrayVar(&ports, "port", nil, "")
	fs.StringArrayVar(&fromPorts, "from-port", nil, "")
	fs.StringArrayVar(&toPorts, "to-port", nil, "")
	fs.Uint64Var(&last, "last", 0, "")
	fs.StringVar(&since, "since", "", "")
	fs.StringVarP(&output, "output", "o", "compact", "")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	req := &observerpb.GetFlowsRequest{Number: min(last, maxLast)}
	if since != "" {
		t, err := r.parseSince(since)
		if err != nil {
			return nil, nil, err
		}
		req.Since = timestamppb.New(t)
	}
	if req.Number == 0 && req.Since == nil {
		req.Number = defaultLast
	}
	var vs []flowpb.Verdict
	for _, v := range verdicts {
		n, ok := flowpb.Verdict_value[strings.ToUpper(v)]
		if !ok {
			return nil, nil, fmt.Errorf("unknown verdict %q", v)
		}
		vs = append(vs, flowpb.Verdict(n))
	}
	withNS := func(ns []string, pod string) []string {
		if strings.Contains(pod, "/") || len(ns) == 0 {
			return []string{pod}
		}
		var out []string
		for _, n := range ns {
			out = append(out, n+"/"+pod)
		}
		return out
	}
	base := func() *flowpb.FlowFilter {
		f := &flowpb.FlowFilter{Verdict: vs, Protocol: protocols, SourceLabel: fromLabels, DestinationLabel: toLabels,
			SourcePort: fromPorts, DestinationPort: toPorts}
		for _, p := range fromPods {
			f.SourcePod = append(f.SourcePod, withNS(ns, p)...)
		}
		for _, p := range toPods {
			f.DestinationPod = append(f.DestinationPod, withNS(ns, p)...)
		}
		for _, n := range fromNS {
			f.SourcePod = append(f.SourcePod, n+"/")
		}
		for _, n := range toNS {
			f.DestinationPod = append(f.DestinationPod, n+"/")
		}
		return f
	}
	// Either end: --pod (namespaced by --namespace), else --namespace alone; --label; --port.
	var either []string
	for _, p := range pods {
		either = append(either, withNS(ns, p)...)
	}
	if len(pods) == 0 && len(fromPods)+len(toPods) == 0 {
		for _, n := range ns {
			either = append(either, n+"/")
		}
	}
	if len(either)+len(labels)+len(ports) > 0 {
		src, dst := base(), base()
		src.SourcePod = append(src.SourcePod, either...)
		src.SourceLabel = append(src.SourceLabel, labels...)
		src.SourcePort = append(src.SourcePort, ports...)
		dst.DestinationPod = append(dst.DestinationPod, either...)
		dst.DestinationLabel = append(dst.DestinationLabel, labels...)
		dst.DestinationPort = append(dst.DestinationPort, ports...)
		req.Whitelist = []*flowpb.FlowFilter{src, dst}
	} else if f := base(); !isEmpty(f) {
		req.Whitelist = []*flowpb.FlowFilter{f}
	}
	var out formatter
	switch output {
	case "compact":
		out = compact
	case "json", "jsonpb":
		out = jsonLine
	case "dict":
		out = dict
	default:
		return nil, nil, fmt.Errorf("unknown output %q", output)
	}
	return req, out, nil
}

func isEmpty(f *flowpb.FlowFilter) bool {
	return len(f.Verdict)+len(f.Protocol)+len(f.SourceLabel)+len(f.DestinationLabel)+len(f.SourcePort)+
		len(f.DestinationPort)+len(f.SourcePod)+len(f.DestinationPod) == 0
}

// parseSince reads a duration ("5m") or an RFC 3339 time.
func (r *Runner) parseSince(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: negative duration", s)
		}
		return r.now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration (5m) or an RFC 3339 time", s)
	}
	return t, nil
}

// formatter writes one flow.
type formatter func(w io.Writer, resp *observerpb.GetFlowsResponse) error

var jsonOpts = protojson.MarshalOptions{UseProtoNames: false}

// jsonLine writes the GetFlowsResponse as one JSON object per line (hubble -o json).
func jsonLine(w io.Writer, resp *observerpb.GetFlowsResponse) error {
	b, err := jsonOpts.Marshal(resp)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// compact writes "TIME: SRC -> DST TYPE VERDICT SUMMARY" (hubble -o compact).
func compact(w io.Writer, resp *observerpb.GetFlowsResponse) error {
	f := resp.GetFlow()
	ts := f.GetTime().AsTime().Local().Format(time.StampMilli)
	verdict := f.GetVerdict().String()
	if f.GetVerdict() == flowpb.Verdict_DROPPED && f.GetDropReasonDesc() != flowpb.DropReason_DROP_REASON_UNKNOWN {
		verdict += " (" + f.GetDropReasonDesc().String() + ")"
	}
	src, dst := endpoints(f)
	_, err := fmt.Fprintf(w, "%s: %s %s %s %s %s\n", ts, src, arrow(f), dst, flowType(f), verdict+summary(f))
	return err
}

// dict writes the main fields as KEY: value blocks (hubble -o dict).
func dict(w io.Writer, resp *observerpb.GetFlowsResponse) error {
	f := resp.GetFlow()
	src, dst := endpoints(f)
	_, err := fmt.Fprintf(w, "  TIMESTAMP: %s\n     SOURCE: %s\nDESTINATION: %s\n       TYPE: %s\n    VERDICT: %s\n    SUMMARY: %s\n------------\n",
		f.GetTime().AsTime().Format(time.RFC3339Nano), src, dst, flowType(f), f.GetVerdict(), strings.TrimSpace(summary(f)))
	return err
}

func endpoints(f *flowpb.Flow) (string, string) {
	sport, dport := "", ""
	if tcp := f.GetL4().GetTCP(); tcp != nil {
		sport, dport = fmt.Sprint(tcp.GetSourcePort()), fmt.Sprint(tcp.GetDestinationPort())
	} else if udp := f.GetL4().GetUDP(); udp != nil {
		sport, dport = fmt.Sprint(udp.GetSourcePort()), fmt.Sprint(udp.GetDestinationPort())
	}
	name := func(ep *flowpb.Endpoint, ip, port string, names []string) string {
		host := ip
		switch {
		case ep.GetPodName() != "":
			host = ep.GetNamespace() + "/" + ep.GetPodName()
		case len(names) > 0:
			host = names[0]
		}
		if port != "" {
			host += ":" + port
		}
		if id := ep.GetIdentity(); id != 0 {
			host += fmt.Sprintf(" (ID:%d)", id)
		}
		return host
	}
	return name(f.GetSource(), f.GetIP().GetSource(), sport, f.GetSourceNames()),
		name(f.GetDestination(), f.GetIP().GetDestination(), dport, f.GetDestinationNames())
}

func arrow(f *flowpb.Flow) string {
	if f.GetIsReply().GetValue() {
		return "<-"
	}
	return "->"
}

func flowType(f *flowpb.Flow) string {
	if f.GetL7() != nil {
		return "l7-" + strings.ToLower(f.GetL7().GetType().String())
	}
	if t := f.GetTraceObservationPoint(); t != flowpb.TraceObservationPoint_UNKNOWN_POINT {
		return strings.ToLower(strings.ReplaceAll(t.String(), "_", "-"))
	}
	return strings.ToLower(f.GetType().String())
}

func summary(f *flowpb.Flow) string {
	switch {
	case f.GetL4().GetTCP() != nil:
		fl := f.GetL4().GetTCP().GetFlags()
		var set []string
		for _, x := range []struct {
			on   bool
			name string
		}{{fl.GetSYN(), "SYN"}, {fl.GetACK(), "ACK"}, {fl.GetFIN(), "FIN"}, {fl.GetRST(), "RST"}, {fl.GetPSH(), "PSH"}} {
			if x.on {
				set = append(set, x.name)
			}
		}
		if len(set) > 0 {
			return " (TCP Flags: " + strings.Join(set, ", ") + ")"
		}
		return " TCP"
	case f.GetL4().GetUDP() != nil:
		return " UDP"
	case f.GetL4().GetICMPv4() != nil, f.GetL4().GetICMPv6() != nil:
		return " ICMP"
	}
	return ""
}
