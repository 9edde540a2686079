package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"iter"
	"os"
	"strconv"
	"sync/atomic"
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

// relayWindow is the HTTP/2 flow-control window of the Relay connection and its stream. A
// fixed window turns off gRPC's bandwidth estimation, which pings Relay on every burst of
// flows and enlarges the window from there; 1 MiB (several thousand flows) is more than a
// stream of flows needs in flight, and bounds what the transport buffers unread.
const relayWindow = 1 << 20

type hubbleReceiver struct {
	cfg         *Config
	set         receiver.Settings
	next        consumer.Logs
	telemetry   *metadata.TelemetryBuilder
	obs         *receiverhelper.ObsReport
	allow, deny []*flowpb.FlowFilter
	fieldMask   *fieldmaskpb.FieldMask
	window      *flowagg.Window[aggKey, flowAgg]
	keys        keyHasher
	now         func() time.Time

	// flows counts the flows of each outcome for the flows metric, which reads them when it
	// is collected.
	flows [numOutcomes]atomic.Int64

	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan struct{}

	unregisterEdges func() // from flowgraph.Register, set by Start

	// Owned by the goroutine that reads from Relay.
	resume      resumeState
	view        flowView
	packer      packer // builds the packed lists of new aggregates (flowAgg.add)
	carriedSeed maphash.Seed
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
	r := &hubbleReceiver{
		cfg:         cfg,
		set:         set,
		next:        next,
		telemetry:   tb,
		obs:         obs,
		allow:       allow,
		deny:        deny,
		fieldMask:   mask,
		now:         time.Now,
		resume:      resumeState{overlap: int64(cfg.ResumeOverlap), seed: maphash.MakeSeed()},
		carriedSeed: maphash.MakeSeed(),
		keys:        newKeyHasher(),
	}
	r.window = r.newWindow()
	err = tb.RegisterHubbleReceiverFlowsCallback(func(_ context.Context, o metric.Int64Observer) error {
		for i := range r.flows {
			if n := r.flows[i].Load(); n > 0 {
				o.Observe(n, outcomeAttrs[i])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// flowOutcome is what happened to a flow, the attribute of the flows metric.
type flowOutcome int

const (
	outAggregated flowOutcome = iota
	outReply
	outDuplicate
	outDropped
	outInvalid
	numOutcomes
)

var outcomeAttrs = func() (a [numOutcomes]metric.ObserveOption) {
	for i, v := range [numOutcomes]string{"aggregated", "reply", "duplicate", "dropped", "invalid"} {
		a[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", v)))
	}
	return a
}()

func (r *hubbleReceiver) count(o flowOutcome) { r.flows[o].Add(1) }

func (r *hubbleReceiver) newWindow() *flowagg.Window[aggKey, flowAgg] {
	sink := flowagg.Sink{Next: r.next, Obs: r.obs, Logger: r.set.Logger, Scope: metadata.ScopeName, Format: "hubble"}
	emit := flowagg.Emitter(sink, toRecord)
	flush := func(ctx context.Context, aggs map[aggKey]*flowAgg) {
		if flowgraph.Reading() {
			observeEdges(aggs)
		}
		emit(ctx, aggs)
	}
	return flowagg.New(r.cfg.Aggregation, flush, func() {
		r.count(outDropped)
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
	conn, err := dialRelay(context.Background(), r.cfg, host.GetExtensions())
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
	var f frame // the receive buffer, reused for every message (frameCodec)
	for {
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
		r.count(outInvalid)
		r.set.Logger.Debug("Skipping a malformed GetFlowsResponse", zap.Error(err))
		return
	}
	switch {
	case resp.isFlow:
		r.handleFlow(&r.view)
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
func (r *hubbleReceiver) handleFlow(v *flowView) {
	t := v.time
	switch {
	case v.hasTime:
	case v.hasResp:
		t = v.respTime
	default:
		t = time.Now().UnixNano()
	}
	var id uint64
	if v.uuid != "" {
		id = r.resume.uuidID(v.uuid)
	} else {
		id = r.resume.flowID(v, t)
	}
	if !r.resume.admit(t, id) {
		r.count(outDuplicate)
		return
	}
	if v.isReply {
		r.count(outReply)
		return
	}
	k := keyOf(v)
	carried := v.carriedHash(r.carriedSeed)
	if r.window.Update(r.keys.of(&k), func(a *flowAgg, fresh bool) { a.add(&k, v, t, carried, fresh, &r.packer) }) {
		r.count(outAggregated)
	}
}

// seenFlow is an event received recently, kept to recognise it when Relay sends it again.
// The event is kept as a 64-bit hash of its identity, not as its UUID: a string would have
// to be copied out of the receive buffer for every flow. Two of the flows within one resume
// overlap colliding, and one of them being skipped as a repeat, has a probability of about
// n²/2⁶⁵ (n = flows in the overlap): below 10⁻⁹ for 100,000.
type seenFlow struct {
	t  int64
	id uint64
}

// seenBlock is how many seenFlows one block of resumeState.recent holds. Blocks let the
// flows of the resume overlap grow and shrink with the rate without doubling a slice and
// copying it (at 260,000 flows/s the overlap holds half a million, and a doubled slice 16 MB)
// or keeping a burst's capacity.
const seenBlock = 1024

// resumeState tracks what was received, so that a reconnect neither skips nor repeats flows.
type resumeState struct {
	start   int64 // Unix nanoseconds; the first request's since
	overlap int64 // nanoseconds
	seed    maphash.Seed

	last int64 // latest event time received; 0 before the first flow
	// recent holds the flows received within overlap of last, roughly oldest first, in
	// blocks of seenBlock; recent[0][head:] is the oldest that is kept.
	recent [][]seenFlow
	head   int
	spare  []seenFlow // the last block pruned, reused for the next one

	// After a reconnect: flows at or after since that were received before it.
	dups     map[uint64]struct{}
	prevLast int64
}

// reconnect prepares for a new stream and returns its since (Unix nanoseconds).
func (s *resumeState) reconnect() int64 {
	if s.last == 0 {
		return s.start
	}
	since := s.last - s.overlap
	s.dups = make(map[uint64]struct{})
	for e := range s.kept() {
		if e.t >= since {
			s.dups[e.id] = struct{}{}
		}
	}
	s.prevLast = s.last
	return since
}

// kept yields the flows kept, oldest first.
func (s *resumeState) kept() iter.Seq[seenFlow] {
	return func(yield func(seenFlow) bool) {
		for i, b := range s.recent {
			if i == 0 {
				b = b[s.head:]
			}
			for _, e := range b {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// admit records an event (a flow or lost-event notice) with identity id received at t, and
// reports whether it is new.
func (s *resumeState) admit(t int64, id uint64) bool {
	if s.dups != nil && t <= s.prevLast {
		if _, ok := s.dups[id]; ok {
			return false
		}
	}
	s.push(seenFlow{t: t, id: id})
	if t > s.last {
		s.last = t
		s.prune(t - s.overlap)
	}
	return true
}

// push appends e to the last block, starting a new one when it is full.
func (s *resumeState) push(e seenFlow) {
	n := len(s.recent)
	if n == 0 || len(s.recent[n-1]) == seenBlock {
		b := s.spare
		if b == nil {
			b = make([]seenFlow, 0, seenBlock)
		}
		s.spare = nil
		s.recent = append(s.recent, b)
		n++
	}
	s.recent[n-1] = append(s.recent[n-1], e)
}

// prune forgets the oldest flows received before cutoff, up to the first that is not.
func (s *resumeState) prune(cutoff int64) {
	for len(s.recent) > 0 {
		b := s.recent[0]
		for s.head < len(b) && b[s.head].t < cutoff {
			s.head++
		}
		if s.head < len(b) {
			return
		}
		// Every flow of the oldest block is forgotten: it is emptied if it is the only one,
		// else it becomes the spare (only blocks before the last are full).
		s.head = 0
		if len(s.recent) == 1 {
			s.recent[0] = b[:0]
			return
		}
		s.spare = b[:0]
		// Moved down rather than resliced, so that appending never reallocates the list.
		n := copy(s.recent, s.recent[1:])
		s.recent[n] = nil
		s.recent = s.recent[:n]
	}
}

// uuidID identifies a flow by its UUID.
func (s *resumeState) uuidID(uuid string) uint64 {
	return maphash.String(s.seed, uuid)
}

// contentID identifies an event without a UUID (a lost-event notice) by its bytes.
func (s *resumeState) contentID(b []byte) uint64 {
	return maphash.Bytes(s.seed, b)
}

// flowID identifies a flow without a UUID (Cilium before 1.12) by what the receiver reads
// of it.
func (s *resumeState) flowID(v *flowView, t int64) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	for _, str := range []string{v.srcIP, v.dstIP, v.src.podName, v.dst.podName} {
		h.WriteString(str)
		h.WriteByte(0)
	}
	var b [8]byte
	for _, x := range []uint64{uint64(v.verdict), uint64(v.direction), uint64(v.port), uint64(t)} { //nolint:gosec // hashed bits, not quantities
		binary.LittleEndian.PutUint64(b[:], x)
		h.Write(b[:])
	}
	return h.Sum64()
}
