package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/metadata"
)

// disableEnv is the Kestrel operator's switch, kept so existing deployments behave the same.
const disableEnv = "DISABLE_CILIUM_FLOWS"

// flowFields are the flow fields the receiver uses. Relay sends only these (field_mask), which
// saves bandwidth and decoding: real flows also carry node labels, Ethernet addresses,
// interfaces, service and DNS names and more. A Relay without field-mask support sends
// everything, which works the same.
var flowFields = []string{
	"time", "uuid", "verdict", "drop_reason_desc", "IP", "l4", "traffic_direction", "is_reply",
	"source.identity", "source.namespace", "source.labels", "source.pod_name", "source.workloads",
	"destination.identity", "destination.namespace", "destination.labels", "destination.pod_name", "destination.workloads",
	"ingress_allowed_by", "egress_allowed_by", "ingress_denied_by", "egress_denied_by",
}

type hubbleReceiver struct {
	cfg         *Config
	set         receiver.Settings
	next        consumer.Logs
	telemetry   *metadata.TelemetryBuilder
	obs         *receiverhelper.ObsReport
	allow, deny []*flowpb.FlowFilter
	fieldMask   *fieldmaskpb.FieldMask
	window      *flowagg.Window[flowKey, flowAgg]
	now         func() time.Time

	outAggregated, outReply, outDuplicate, outDropped, outInvalid metric.AddOption

	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan struct{}

	unregisterEdges func() // from flowgraph.Register, set by Start

	// Owned by the goroutine that reads from Relay.
	resume resumeState
	view   flowView
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*hubbleReceiver, error) {
	allow, err := parseFilters("allowlist", cfg.Allowlist)
	if err != nil {
		return nil, err
	}
	deny, err := parseFilters("denylist", cfg.Denylist)
	if err != nil {
		return nil, err
	}
	mask, err := fieldmaskpb.New(&flowpb.Flow{}, flowFields...)
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "grpc",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	outcome := func(v string) metric.AddOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", v)))
	}
	r := &hubbleReceiver{
		cfg:           cfg,
		set:           set,
		next:          next,
		telemetry:     tb,
		obs:           obs,
		allow:         allow,
		deny:          deny,
		fieldMask:     mask,
		now:           time.Now,
		outAggregated: outcome("aggregated"),
		outReply:      outcome("reply"),
		outDuplicate:  outcome("duplicate"),
		outDropped:    outcome("dropped"),
		outInvalid:    outcome("invalid"),
		resume:        resumeState{overlap: int64(cfg.ResumeOverlap), seed: maphash.MakeSeed()},
	}
	r.window = r.newWindow()
	return r, nil
}

func (r *hubbleReceiver) newWindow() *flowagg.Window[flowKey, flowAgg] {
	sink := flowagg.Sink{Next: r.next, Obs: r.obs, Logger: r.set.Logger, Scope: metadata.ScopeName, Format: "hubble"}
	emit := flowagg.Emitter(sink, toRecord)
	flush := func(ctx context.Context, aggs map[flowKey]*flowAgg) {
		observeEdges(aggs)
		emit(ctx, aggs)
	}
	return flowagg.New(r.cfg.Aggregation, flush, func() {
		r.telemetry.HubbleReceiverFlows.Add(context.Background(), 1, r.outDropped)
	})
}

func (r *hubbleReceiver) enabled() bool {
	if !r.cfg.Enabled {
		return false
	}
	v := os.Getenv(disableEnv)
	if v == "" {
		return true
	}
	off, err := strconv.ParseBool(v)
	if err != nil {
		r.set.Logger.Warn("Ignoring a "+disableEnv+" value that is not a boolean", zap.String("value", v))
		return true
	}
	return !off
}

func (r *hubbleReceiver) Start(_ context.Context, host component.Host) error {
	if !r.enabled() {
		r.set.Logger.Info("Cilium flow collection is disabled (enabled: false or " + disableEnv + "=true)")
		return nil
	}
	// The connection outlives Start's context, which ends when Start returns.
	conn, err := r.cfg.ToClientConn(context.Background(), host.GetExtensions(), r.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("hubble relay client: %w", err)
	}
	r.conn = conn
	r.unregisterEdges = flowgraph.Register()
	r.resume.start = r.now().UnixNano()
	r.window.Start()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go r.run(ctx, host, conn)
	return nil
}

func (r *hubbleReceiver) Shutdown(ctx context.Context) error {
	var err error
	if r.cancel != nil {
		r.cancel()
		<-r.done
		// The reader has stopped, so this flushes everything that was received.
		r.window.Shutdown(ctx)
		r.unregisterEdges()
		err = r.conn.Close()
	}
	r.telemetry.Shutdown()
	return err
}

// run follows Relay until ctx ends, reconnecting with a jittered exponential backoff.
func (r *hubbleReceiver) run(ctx context.Context, host component.Host, conn grpc.ClientConnInterface) {
	defer close(r.done)
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     r.cfg.Reconnect.InitialInterval,
		RandomizationFactor: r.cfg.Reconnect.RandomizationFactor,
		Multiplier:          r.cfg.Reconnect.Multiplier,
		MaxInterval:         r.cfg.Reconnect.MaxInterval,
	}
	bo.Reset()
	for {
		err := r.follow(ctx, host, conn, bo.Reset)
		if ctx.Err() != nil {
			return
		}
		r.telemetry.HubbleReceiverReconnects.Add(ctx, 1)
		err = fmt.Errorf("hubble relay %s: %w", r.cfg.Endpoint, err)
		componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(err))
		delay := bo.NextBackOff()
		r.set.Logger.Warn("GetFlows stream failed; reconnecting", zap.Error(err), zap.Duration("backoff", delay))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// follow runs one GetFlows stream until it fails. It asks Relay to resume from shortly before
// the last flow received (or from Start, the first time) so that nothing is skipped, and
// drops the flows it had already received.
func (r *hubbleReceiver) follow(ctx context.Context, host component.Host, conn grpc.ClientConnInterface, connected func()) error {
	since := r.resume.reconnect()
	req := &observerpb.GetFlowsRequest{
		Follow:    true,
		Whitelist: r.allow,
		Blacklist: r.deny,
		Since:     timestamppb.New(time.Unix(0, since)),
		FieldMask: r.fieldMask,
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := conn.NewStream(ctx, &observerpb.Observer_ServiceDesc.Streams[0], observerpb.Observer_GetFlows_FullMethodName,
		grpc.ForceCodecV2(newFrameCodec()))
	if err != nil {
		return err
	}
	if err := st.SendMsg(req); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	first := true
	for {
		var f frame
		err := st.RecvMsg(&f)
		if errors.Is(err, io.EOF) {
			return errors.New("relay ended the stream")
		}
		if err != nil {
			return err
		}
		if first {
			first = false
			connected()
			componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusOK))
			r.set.Logger.Info("Following flows from Hubble Relay", zap.String("endpoint", r.cfg.Endpoint), zap.Time("since", time.Unix(0, since)))
		}
		r.handle(ctx, f)
	}
}

// handle processes one GetFlowsResponse.
func (r *hubbleReceiver) handle(ctx context.Context, f frame) {
	var resp response
	if err := r.view.parse(f, &resp); err != nil {
		r.telemetry.HubbleReceiverFlows.Add(ctx, 1, r.outInvalid)
		r.set.Logger.Debug("Skipping a malformed GetFlowsResponse", zap.Error(err))
		return
	}
	switch {
	case resp.isFlow:
		r.handleFlow(ctx, &r.view)
	case resp.lostEvents != nil:
		le := &flowpb.LostEvent{}
		if err := proto.Unmarshal(resp.lostEvents, le); err != nil {
			r.set.Logger.Debug("Skipping a malformed LostEvent", zap.Error(err))
			return
		}
		// Relay may send a lost-event notice again after a reconnect, like a flow.
		t := r.view.respTime
		if !r.view.hasResp {
			t = flowagg.EventTime(le.Last)
		}
		if !r.resume.admit(t, r.resume.contentID(f)) {
			return
		}
		n := int64(min(le.GetNumEventsLost(), 1<<63-1))
		r.telemetry.HubbleReceiverLostEvents.Add(ctx, n, metric.WithAttributes(attribute.String("source", le.GetSource().String())))
		r.set.Logger.Warn("Hubble lost events",
			zap.String("source", le.GetSource().String()),
			zap.Int64("lost", n),
			zap.String("node", validUTF8(resp.nodeName)))
	case resp.nodeStatus != nil:
		ns := &relaypb.NodeStatusEvent{}
		if err := proto.Unmarshal(resp.nodeStatus, ns); err == nil {
			r.set.Logger.Debug("Hubble Relay node status",
				zap.String("state", ns.GetStateChange().String()),
				zap.Strings("nodes", ns.GetNodeNames()),
				zap.String("message", ns.GetMessage()))
		}
	}
}

// handleFlow deduplicates and aggregates one flow. Reply flows (is_reply=true) are the
// return direction of a connection already counted by its request; they are counted in the
// receiver's flows metric (outcome=reply) but not aggregated. Flows whose direction Hubble
// could not tell (is_reply unset) are aggregated.
func (r *hubbleReceiver) handleFlow(ctx context.Context, v *flowView) {
	t := v.time
	switch {
	case v.hasTime:
	case v.hasResp:
		t = v.respTime
	default:
		t = time.Now().UnixNano()
	}
	id := v.uuid
	if id == "" {
		id = r.resume.flowID(v, t)
	}
	if !r.resume.admit(t, id) {
		r.telemetry.HubbleReceiverFlows.Add(ctx, 1, r.outDuplicate)
		return
	}
	if v.isReply {
		r.telemetry.HubbleReceiverFlows.Add(ctx, 1, r.outReply)
		return
	}
	if r.window.Update(keyOf(v), func(a *flowAgg, fresh bool) { a.add(v, t, fresh) }) {
		r.telemetry.HubbleReceiverFlows.Add(ctx, 1, r.outAggregated)
	}
}

// seenFlow is an event received recently, kept to recognise it when Relay sends it again.
type seenFlow struct {
	t  int64
	id string
}

// resumeState tracks what was received, so that a reconnect neither skips nor repeats flows.
type resumeState struct {
	start   int64 // Unix nanoseconds; the first request's since
	overlap int64 // nanoseconds
	seed    maphash.Seed

	last   int64      // latest event time received; 0 before the first flow
	recent []seenFlow // flows received within overlap of last, roughly oldest first
	head   int        // recent[:head] have been pruned

	// After a reconnect: flows at or after since that were received before it.
	dups     map[string]struct{}
	prevLast int64
}

// reconnect prepares for a new stream and returns its since (Unix nanoseconds).
func (s *resumeState) reconnect() int64 {
	if s.last == 0 {
		return s.start
	}
	since := s.last - s.overlap
	s.dups = make(map[string]struct{}, len(s.recent)-s.head)
	for _, e := range s.recent[s.head:] {
		if e.t >= since {
			s.dups[e.id] = struct{}{}
		}
	}
	s.prevLast = s.last
	return since
}

// admit records an event (a flow or lost-event notice) with identity id received at t, and
// reports whether it is new.
func (s *resumeState) admit(t int64, id string) bool {
	if s.dups != nil && t <= s.prevLast {
		if _, ok := s.dups[id]; ok {
			return false
		}
	}
	s.recent = append(s.recent, seenFlow{t: t, id: id})
	if t > s.last {
		s.last = t
		for s.head < len(s.recent) && s.recent[s.head].t < t-s.overlap {
			s.recent[s.head] = seenFlow{}
			s.head++
		}
		if s.head > 1024 && s.head > len(s.recent)/2 {
			s.recent = append(s.recent[:0], s.recent[s.head:]...)
			s.head = 0
		}
	}
	return true
}

// contentID identifies an event without a UUID (a lost-event notice) by its bytes.
func (s *resumeState) contentID(b []byte) string {
	return strconv.FormatUint(maphash.Bytes(s.seed, b), 36)
}

// flowID identifies a flow without a UUID (Cilium before 1.12) by what the receiver reads
// of it.
func (s *resumeState) flowID(v *flowView, t int64) string {
	var h maphash.Hash
	h.SetSeed(s.seed)
	for _, str := range []string{v.srcIP, v.dstIP, v.src.podName, v.dst.podName, v.verdict.String(), v.direction.String()} {
		h.WriteString(str)
		h.WriteByte(0)
	}
	// t's bits are mixed into the hash, not read as a quantity: a negative t wrapping is fine.
	return strconv.FormatUint(h.Sum64()^uint64(t)^uint64(v.port)<<48, 36) //nolint:gosec // hash mixing, see above
}
