package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

const tenantHeader = "autonp-tenantid"

// streamSpec opens one of the five streams and allocates its inbound envelope.
type streamSpec struct {
	open    func(context.Context, cloudv1.StreamServiceClient) (grpc.ClientStream, error)
	inbound func() proto.Message
}

var streamSpecs = map[cloudconn.Stream]streamSpec{
	cloudconn.StreamData: {
		open: func(ctx context.Context, c cloudv1.StreamServiceClient) (grpc.ClientStream, error) {
			return c.StreamData(ctx)
		},
		inbound: func() proto.Message { return &cloudv1.StreamDataResponse{} },
	},
	cloudconn.StreamControl: {
		open: func(ctx context.Context, c cloudv1.StreamServiceClient) (grpc.ClientStream, error) {
			return c.StreamControl(ctx)
		},
		inbound: func() proto.Message { return &cloudv1.StreamControlResponse{} },
	},
	cloudconn.StreamFlows: {
		open: func(ctx context.Context, c cloudv1.StreamServiceClient) (grpc.ClientStream, error) {
			return c.StreamFlows(ctx)
		},
		inbound: func() proto.Message { return &cloudv1.StreamFlowsResponse{} },
	},
	cloudconn.StreamEvents: {
		open: func(ctx context.Context, c cloudv1.StreamServiceClient) (grpc.ClientStream, error) {
			return c.StreamEvents(ctx)
		},
		inbound: func() proto.Message { return &cloudv1.StreamEventsResponse{} },
	},
	cloudconn.StreamLogs: {
		open: func(ctx context.Context, c cloudv1.StreamServiceClient) (grpc.ClientStream, error) {
			return c.StreamLogs(ctx)
		},
		inbound: func() proto.Message { return &cloudv1.StreamLogsResponse{} },
	},
}

var errStreamClosed = errors.New("stream is closing")

// stream is one open gRPC stream. lock is a one-slot semaphore rather than a mutex so
// that a sender waiting for its turn can give up when its context ends.
type stream struct {
	kind   cloudconn.Stream
	attrs  metric.MeasurementOption // stream=<kind>, built once for the per-message counters
	token  string                   // the bearer token current when the stream was opened
	cs     grpc.ClientStream
	cancel context.CancelFunc
	lock   chan struct{}
	closed bool          // guarded by lock: CloseSend was called
	done   chan struct{} // closed when the receive loop has returned
	err    error         // the receive loop's result, readable after done

	// sendingSince is when the write in progress began (UnixNano), 0 when none is: a write
	// blocked for long means the server stopped reading.
	sendingSince atomic.Int64

	// accepted is closed once the server is known to have accepted the stream: its
	// headers or first message arrived, or acceptQuiet passed without a refusal.
	accepted chan struct{}
	// resent is closed once what a refused stream held has been re-sent on StreamData:
	// later payloads of its kind wait for it, so that they do not overtake the re-sent ones.
	resent chan struct{}
	// acceptMu guards the acceptance state and the replay buffer: payloads written on a
	// side stream before it was accepted, re-sent on StreamData if it is refused.
	acceptMu     sync.Mutex
	acceptState  int // acceptPending, acceptAccepted or acceptRefused
	acceptedAt   time.Time
	replay       []heldPayload
	replayBytes  int
	replayNextID uint64

	// Acknowledged delivery (delivery.go): the kind's sequence space, and whether this
	// stream's server acknowledges, decided by its first acknowledgement or by quiet.
	outbox    *outbox
	quiet     time.Duration
	modeMu    sync.Mutex
	mode      ackMode
	quietOnce sync.Once
}

const (
	acceptPending = iota
	acceptAccepted
	acceptRefused
)

// heldPayload is one payload in a stream's replay buffer.
type heldPayload struct {
	id      uint64
	payload proto.Message
	size    int
}

// errReplayFull and errRefused make a sender fall back to StreamData.
var (
	errReplayFull = errors.New("replay buffer of a stream not yet accepted is full")
	errRefused    = errors.New("stream refused by the server")
)

// accept marks the stream accepted and empties its replay buffer; a refused stream stays refused.
func (st *stream) accept() {
	st.acceptMu.Lock()
	defer st.acceptMu.Unlock()
	if st.acceptState != acceptPending {
		return
	}
	st.acceptState = acceptAccepted
	st.acceptedAt = time.Now()
	st.replay, st.replayBytes = nil, 0
	close(st.accepted)
}

// refused reports a stream that ended before it was accepted.
func (st *stream) refused() bool {
	st.acceptMu.Lock()
	defer st.acceptMu.Unlock()
	return st.acceptState == acceptRefused
}

// acceptedTime is when the stream was accepted, zero if it was not.
func (st *stream) acceptedTime() time.Time {
	st.acceptMu.Lock()
	defer st.acceptMu.Unlock()
	return st.acceptedAt
}

// refuse marks a stream that ended before it was accepted and returns the payloads
// written on it, to be re-sent elsewhere.
func (st *stream) refuse() []heldPayload {
	st.acceptMu.Lock()
	defer st.acceptMu.Unlock()
	if st.acceptState != acceptPending {
		return nil
	}
	st.acceptState = acceptRefused
	held := st.replay
	st.replay, st.replayBytes = nil, 0
	return held
}

// hold keeps payload in the replay buffer while the stream is not accepted yet. It
// returns the entry's id (0 when the stream is accepted and nothing is held).
func (st *stream) hold(payload proto.Message, size, limit int) (uint64, error) {
	st.acceptMu.Lock()
	defer st.acceptMu.Unlock()
	switch st.acceptState {
	case acceptAccepted:
		return 0, nil
	case acceptRefused:
		return 0, errRefused
	}
	if st.replayBytes+size > limit {
		return 0, errReplayFull
	}
	st.replayNextID++
	st.replay = append(st.replay, heldPayload{id: st.replayNextID, payload: payload, size: size})
	st.replayBytes += size
	return st.replayNextID, nil
}

// release is called when the write of a held payload failed. It reports whether the
// payload is still the sender's to deliver: false when a refusal already took it for
// re-sending.
func (st *stream) release(id uint64) bool {
	st.acceptMu.Lock()
	defer st.acceptMu.Unlock()
	if st.acceptState == acceptRefused {
		return false
	}
	for i, h := range st.replay {
		if h.id == id {
			st.replay = append(st.replay[:i:i], st.replay[i+1:]...)
			st.replayBytes -= h.size
			break
		}
	}
	return true
}

// send numbers msg, a request envelope, in its kind's sequence and writes it.
func (st *stream) send(ctx context.Context, msg proto.Message) (uint64, error) {
	var seq uint64
	err := st.locked(ctx, func() error {
		seq = st.outbox.number(msg)
		return st.cs.SendMsg(msg)
	})
	return seq, err
}

// write writes msg as it is: a message written before, with its number.
func (st *stream) write(ctx context.Context, msg proto.Message) error {
	return st.locked(ctx, func() error { return st.cs.SendMsg(msg) })
}

func (st *stream) locked(ctx context.Context, write func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case st.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-st.lock }()
	if st.closed {
		return errStreamClosed
	}
	st.sendingSince.Store(time.Now().UnixNano())
	defer st.sendingSince.Store(0)
	st.wrote(st.quiet)
	return write()
}

// blockedFor is how long the write in progress has been blocked, 0 if there is none.
func (st *stream) blockedFor(now time.Time) time.Duration {
	since := st.sendingSince.Load()
	if since == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, since))
}

// closeSend half-closes the stream after any send in progress, so everything sent so far
// reaches the server before it sees the end of the stream.
func (st *stream) closeSend() {
	st.lock <- struct{}{}
	defer func() { <-st.lock }()
	if !st.closed {
		st.closed = true
		_ = st.cs.CloseSend()
	}
}

// session is one connection attempt: one ClientConn and the streams opened on it.
type session struct {
	e      *kestrelCommand
	conn   *grpc.ClientConn
	client cloudv1.StreamServiceClient
	ctx    context.Context
	cancel context.CancelFunc

	data *stream
	// open holds the control and side streams while they can be written to; nil means
	// "use StreamData".
	open map[cloudconn.Stream]*atomic.Pointer[stream]

	draining atomic.Bool
	stalled  atomic.Bool // a stream stopped making progress: drain without waiting for it
	failOnce sync.Once
	failed   chan struct{}
	failErr  error

	wg sync.WaitGroup
}

func newSession(e *kestrelCommand, conn *grpc.ClientConn) *session {
	s := &session{
		e:      e,
		conn:   conn,
		client: cloudv1.NewStreamServiceClient(conn),
		open:   map[cloudconn.Stream]*atomic.Pointer[stream]{},
		failed: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, k := range append([]cloudconn.Stream{cloudconn.StreamControl}, sideStreams...) {
		s.open[k] = &atomic.Pointer[stream]{}
	}
	return s
}

// fail ends the session; the first reason wins.
func (s *session) fail(err error) {
	s.failOnce.Do(func() {
		s.failErr = err
		close(s.failed)
	})
}

func (s *session) openStream(kind cloudconn.Stream) (*stream, error) {
	ctx, cancel := context.WithCancel(s.ctx)
	token := s.e.tokens.current()
	ctx = metadata.AppendToOutgoingContext(ctx, tenantHeader, token.tenant, envelope.SessionHeader, s.e.deliverySession)
	cs, err := streamSpecs[kind].open(ctx, s.client)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("opening %s: %w", kind, err)
	}
	st := &stream{
		kind: kind, attrs: metric.WithAttributes(attribute.String("stream", string(kind))),
		token: token.raw, cs: cs, cancel: cancel, lock: make(chan struct{}, 1), done: make(chan struct{}),
		accepted: make(chan struct{}), resent: make(chan struct{}),
		outbox: s.e.outboxes[kind], quiet: ackQuiet,
	}
	if s.e.sawAcks.Load() {
		st.quiet = ackQuietKnown
	}
	// Writes start at once; acceptance is learnt on the side. grpc-go servers send headers
	// with their first message unless the handler sends them earlier, and Kestrel Cloud's
	// first message may be a heartbeat 30 s later, so a quiet period without a refusal
	// (which arrives within a round trip) counts as acceptance too.
	go func() {
		if md, _ := cs.Header(); md != nil {
			st.accept()
		}
	}()
	quiet := time.AfterFunc(acceptQuiet, st.accept)
	context.AfterFunc(ctx, func() { quiet.Stop() })
	// What an earlier stream of this kind wrote without an acknowledgement goes first, with
	// its numbers; if this write fails, the next stream tries again.
	if err := st.rewrite(ctx); err != nil {
		s.e.logger.Debug("Re-sending unacknowledged messages failed", zap.String("stream", string(kind)), zap.Error(err))
	}
	return st, nil
}

// receive reads st until it fails, counting heartbeats and dispatching requests.
func (s *session) receive(st *stream) {
	defer close(st.done)
	ctx := st.cs.Context()
	for {
		env := streamSpecs[st.kind].inbound()
		if err := st.cs.RecvMsg(env); err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("server ended %s", st.kind)
			}
			st.err = err
			return
		}
		st.accept()
		acked := envelope.Acknowledged(env)
		if acked > 0 {
			s.e.sawAcks.Store(true)
			st.acknowledged(acked)
		}
		req := envelope.Unwrap(env)
		switch {
		case req == nil && acked > 0: // an acknowledgement alone
		case req == nil:
			s.e.logger.Debug("Ignoring an empty or unknown message", zap.String("stream", string(st.kind)))
		case isLiveness(req.ProtoReflect().Descriptor().FullName()):
			if req.ProtoReflect().Descriptor().FullName() == heartbeatName {
				s.e.tb.KestrelCommandHeartbeats.Add(ctx, 1, st.attrs)
			}
		default:
			s.e.dispatcher.dispatch(ctx, st.kind, req)
		}
	}
}

// acceptQuiet is how long a stream without headers or messages must go unrefused to count
// as accepted: a refusal (Unauthenticated, Unimplemented) arrives within a round trip.
const acceptQuiet = time.Second

// replayLimit bounds the bytes a side stream keeps for re-sending until it is accepted;
// beyond it, payloads go on StreamData.
const replayLimit = 4 << 20

// run performs the protocol's connection sequence (docs/protocol.md#connection-sequence)
// and blocks until the session ends, then drains it. StreamData opens first; snapshots
// replay on it; InventoryCommit follows; only then StreamControl and the side streams open.
func (s *session) run() attemptResult {
	defer s.cancel()
	// A stop must be able to interrupt the open, which waits while the channel connects.
	stopOpen := context.AfterFunc(s.e.stopCtx, s.cancel)
	data, err := s.openStream(cloudconn.StreamData)
	stopOpen()
	if err != nil {
		return attemptResult{err: err}
	}
	s.data = data
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.receive(data)
		data.ended(false)
		s.fail(fmt.Errorf("StreamData failed: %w", data.err))
	}()

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watchConnection()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watchProgress()
	}()

	// The snapshot and commit are written at once: a refused StreamData replays them on
	// the next connection anyway. Other payloads wait for acceptance (see send).
	s.e.session.Store(s)
	s.e.setState(cloudconn.Syncing)
	var readyAt time.Time
	if err := s.replay(); err != nil {
		s.fail(err)
	} else {
		readyAt = time.Now()
		s.e.setState(cloudconn.Ready)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.reportAccepted(data.accepted)
		}()
		s.startControl()
		if s.e.cfg.StatsInterval > 0 {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.reportStats()
			}()
		}
		for _, k := range sideStreams {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.runSideStream(k)
			}()
		}
	}

	res := attemptResult{readyAt: readyAt}
	select {
	case <-s.failed:
		res.err = s.failErr
	case <-s.e.stopCtx.Done():
		res.err = errShutdown
	case <-s.e.rotate:
		res.err, res.immediate = errRotated, true
	}
	s.e.session.CompareAndSwap(s, nil)
	s.e.setState(cloudconn.Disconnected)
	s.drain()
	return res
}

// reportAccepted reports the connection healthy once the server has accepted
// StreamData, so that a refused stream does not flash StatusOK before it fails.
func (s *session) reportAccepted(accepted <-chan struct{}) {
	select {
	case <-accepted:
		s.e.status.connected()
		s.e.logger.Info("Connected to Kestrel Cloud", zap.String("endpoint", s.e.cfg.Endpoint))
	case <-s.failed:
	case <-s.ctx.Done():
	}
}

// replay runs every snapshot provider in order on StreamData, then sends the
// InventoryCommit with the providers' flags ORed together.
func (s *session) replay() error {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// Snapshot providers may do slow work; a stop or a failed StreamData interrupts them.
	defer context.AfterFunc(s.e.stopCtx, cancel)()
	go func() {
		select {
		case <-s.failed:
			cancel()
		case <-ctx.Done():
		}
	}()
	send := func(m proto.Message) error {
		if m == nil {
			return errors.New("nil snapshot message")
		}
		_, err := s.sendOn(ctx, s.data, m, false)
		return err
	}
	commit := &cloudv1.InventoryCommit{}
	for i, fn := range s.e.snapshotFuncs() {
		flags, err := fn(ctx, send)
		if err != nil {
			return fmt.Errorf("snapshot provider %d failed: %w", i, err)
		}
		commit.HasDatadog = commit.HasDatadog || flags.GetHasDatadog()
		commit.HasArgocd = commit.HasArgocd || flags.GetHasArgocd()
		commit.HasRollouts = commit.HasRollouts || flags.GetHasRollouts()
		commit.HasFlux = commit.HasFlux || flags.GetHasFlux()
		commit.HasKarpenter = commit.HasKarpenter || flags.GetHasKarpenter()
	}
	if _, err := s.sendOn(ctx, s.data, commit, false); err != nil {
		return fmt.Errorf("sending InventoryCommit: %w", err)
	}
	return s.sendCarried(ctx)
}

// startControl opens StreamControl. Unimplemented means an old server: tool requests
// then arrive on StreamData. Any other failure ends the session.
func (s *session) startControl() {
	st, err := s.openStream(cloudconn.StreamControl)
	if err != nil {
		s.fail(err)
		return
	}
	slot := s.open[cloudconn.StreamControl]
	slot.Store(st)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer st.cancel()
		s.receive(st)
		st.ended(false)
		slot.CompareAndSwap(st, nil)
		switch {
		case status.Code(st.err) == codes.Unimplemented:
			s.e.logger.Info("Kestrel Cloud does not implement StreamControl; requests arrive on StreamData")
		case !s.draining.Load():
			s.fail(fmt.Errorf("StreamControl failed: %w", st.err))
		}
	}()
}

// runSideStream keeps one of the flows/events/logs streams open, reconnecting it on its
// own with backoff; meanwhile its payloads go on StreamData. Unimplemented makes the
// fallback permanent for this session.
func (s *session) runSideStream(kind cloudconn.Stream) {
	bo := newBackoff(s.e.cfg.Reconnect)
	slot := s.open[kind]
	reconnects := metric.WithAttributes(attribute.String("stream", string(kind)))
	for {
		var openedAt time.Time
		st, err := s.openStream(kind)
		if err == nil {
			// Payloads go on the stream at once and stay in its replay buffer until it is
			// accepted: an Unimplemented answer arrives as a headers-less status, and what
			// was written before it is then re-sent on StreamData.
			slot.Store(st)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				select {
				case <-st.accepted:
					s.e.status.sideStream(kind, nil)
				case <-st.done:
				}
			}()
			s.receive(st)
			// Re-sent before the slot is cleared: until then, later payloads of this kind
			// find the refused stream and wait for the re-send instead of overtaking it.
			held := st.refuse()
			st.ended(st.refused())
			if len(held) > 0 {
				s.resend(kind, held)
			}
			close(st.resent)
			slot.CompareAndSwap(st, nil)
			st.cancel()
			err = st.err
			openedAt = st.acceptedTime()
		}
		if s.draining.Load() || s.ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.Unimplemented:
			s.e.logger.Info("Kestrel Cloud does not implement this stream; its payloads go on StreamData", zap.String("stream", string(kind)))
			return
		case codes.Unauthenticated:
			if st != nil {
				s.e.tokens.renewSoon(st.token)
			}
		}
		if !openedAt.IsZero() && time.Since(openedAt) >= s.e.cfg.Reconnect.ResetAfter {
			bo.Reset()
		}
		wait := bo.NextBackOff()
		s.e.logger.Warn("Side stream failed; its payloads go on StreamData while it reconnects",
			zap.String("stream", string(kind)), zap.Error(err), zap.Duration("backoff", wait))
		s.e.status.sideStream(kind, err)
		timer := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		s.e.tb.KestrelCommandReconnects.Add(s.ctx, 1, reconnects)
	}
}

// resend writes on StreamData what a side stream took before it was refused, in order.
// Send already reported these payloads as sent: what cannot be written because the
// connection is ending is carried over to the next session.
func (s *session) resend(kind cloudconn.Stream, held []heldPayload) {
	s.e.logger.Info("Stream refused before it was accepted; re-sending what was written on it on StreamData",
		zap.String("stream", string(kind)), zap.Int("messages", len(held)))
	for i, h := range held {
		err := s.dataAccepted(s.ctx)
		if err == nil {
			_, err = s.sendOn(s.ctx, s.data, h.payload, false)
		}
		if err != nil {
			s.e.carry(held[i:])
			return
		}
	}
}

// carryLimit bounds the bytes carried over to the next session; beyond it payloads are
// lost, counted in messages.failed and logged.
const carryLimit = 3 * replayLimit

// carry keeps held payloads for the next session.
func (e *kestrelCommand) carry(held []heldPayload) {
	e.carryMu.Lock()
	defer e.carryMu.Unlock()
	lost := 0
	for _, h := range held {
		if e.carriedBytes+h.size > carryLimit {
			lost++
			continue
		}
		e.carried = append(e.carried, h)
		e.carriedBytes += h.size
	}
	if lost > 0 {
		e.tb.KestrelCommandMessagesFailed.Add(context.Background(), int64(lost))
		e.messagesFailed.Add(int64(lost))
		e.logger.Error("Lost messages of a refused stream: the carry-over to the next connection is full", zap.Int("messages", lost))
	}
}

// sendCarried writes what earlier sessions carried over, on StreamData and in order,
// before the side streams open; what fails is carried again.
func (s *session) sendCarried(ctx context.Context) error {
	s.e.carryMu.Lock()
	held := s.e.carried
	s.e.carried, s.e.carriedBytes = nil, 0
	s.e.carryMu.Unlock()
	if len(held) == 0 {
		return nil
	}
	// Unlike the snapshot, these are not repeated by the next connection.
	if err := s.dataAccepted(ctx); err != nil {
		s.e.carry(held)
		return err
	}
	for i, h := range held {
		if _, err := s.sendOn(ctx, s.data, h.payload, false); err != nil {
			s.e.carry(held[i:])
			return fmt.Errorf("re-sending payloads carried over from the previous connection: %w", err)
		}
	}
	return nil
}

// dataAccepted waits until StreamData is accepted: a payload written before a refusal
// would be lost although Send reported success.
func (s *session) dataAccepted(ctx context.Context) error {
	select {
	case <-s.data.accepted:
		return nil
	case <-s.failed:
		return fmt.Errorf("%w: StreamData failed", cloudconn.ErrNotConnected)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watchConnection ends the session when the ClientConn leaves READY, which is how a
// server GOAWAY (graceful restart) or a lost transport shows: the session then drains
// instead of waiting for the server to cut the streams. It starts once StreamData is
// open; CONNECTING is tolerated until READY is seen because the channel may report
// READY slightly after the first stream got through.
func (s *session) watchConnection() {
	st := s.conn.GetState()
	seenReady := false
	for {
		switch {
		case st == connectivity.Ready:
			seenReady = true
		case seenReady || st != connectivity.Connecting:
			s.fail(fmt.Errorf("connection to %s closed by the server or lost (channel %s)", s.e.cfg.Endpoint, st))
			return
		}
		if !s.conn.WaitForStateChange(s.ctx, st) {
			return
		}
		st = s.conn.GetState()
	}
}

// watchProgress ends the session when a write to any of its streams has been blocked
// for stall_timeout: the server accepted the connection but stopped reading, which neither
// the transport nor keepalive notices while the TCP connection stays up. The stall stays
// in the component status until a session has then run for twice the timeout without one.
func (s *session) watchProgress() {
	limit := s.e.cfg.StallTimeout
	started := time.Now()
	cleared := false
	tick := time.NewTicker(max(limit/10, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.failed:
			return
		case now := <-tick.C:
			for _, st := range s.streams() {
				d := st.blockedFor(now)
				if d < limit {
					continue
				}
				err := fmt.Errorf("stream %s made no progress for %v (Kestrel Cloud stopped reading); connection recycled", st.kind, d.Round(time.Millisecond))
				s.e.logger.Warn("Kestrel Cloud stopped reading; recycling the connection",
					zap.String("stream", string(st.kind)), zap.Duration("blocked", d), zap.Duration("stall_timeout", limit))
				s.e.tb.KestrelCommandStalls.Add(context.Background(), 1, st.attrs)
				s.e.status.stalled(err)
				s.stalled.Store(true)
				s.fail(err)
				return
			}
			if !cleared && now.Sub(started) >= 2*limit {
				cleared = true
				s.e.status.stalled(nil)
			}
		}
	}
}

// streams returns StreamData and whichever other streams are open.
func (s *session) streams() []*stream {
	out := []*stream{s.data}
	for _, slot := range s.open {
		if st := slot.Load(); st != nil {
			out = append(out, st)
		}
	}
	return out
}

// drain half-closes every stream after the sends in progress and waits (bounded) for
// the server to end them, so messages already handed to Send are delivered; then it
// cancels whatever is left.
func (s *session) drain() {
	s.draining.Store(true)
	if s.stalled.Load() {
		// A server that stopped reading will not read what is left either; cancelling
		// unblocks the stuck write, which returns an error so its caller retries.
		s.cancel()
	}
	streams := s.streams()
	var closing sync.WaitGroup
	for _, st := range streams {
		closing.Add(1)
		go func() {
			defer closing.Done()
			st.closeSend()
		}()
	}
	timeout := time.NewTimer(drainTimeout)
	defer timeout.Stop()
wait:
	for _, st := range streams {
		select {
		case <-st.done:
		case <-timeout.C:
			s.e.logger.Warn("Kestrel Cloud did not close the streams in time; cancelling them")
			break wait
		case <-s.e.abortCtx.Done():
			break wait
		}
	}
	s.cancel()
	closing.Wait()
	s.wg.Wait()
}

// send writes payload on its preferred stream when that stream is open, else on
// StreamData. A failed side stream is not retried here: the payload goes on StreamData.
// With track, it returns the receipt to wait on for the acknowledgement (nil: none to wait for).
func (s *session) send(ctx context.Context, preferred cloudconn.Stream, payload proto.Message, track bool) (*receipt, error) {
	if preferred != cloudconn.StreamData {
		if st := s.open[preferred].Load(); st != nil {
			r, err := s.sendOn(ctx, st, payload, track)
			if err == nil || ctx.Err() != nil || status.Code(err) == codes.InvalidArgument {
				return r, err
			}
			if errors.Is(err, errRefused) {
				select {
				case <-st.resent:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
		}
	}
	if err := s.dataAccepted(ctx); err != nil {
		return nil, err
	}
	r, err := s.sendOn(ctx, s.data, payload, track)
	if errors.Is(err, errStreamClosed) || errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: StreamData is closing", cloudconn.ErrNotConnected)
	}
	return r, err
}

// sendOn wraps payload in st's envelope and writes it. Oversized messages are refused
// before they reach gRPC, which would otherwise fail the whole stream.
// With track, it also returns the receipt to wait on for the acknowledgement.
func (s *session) sendOn(ctx context.Context, st *stream, payload proto.Message, track bool) (*receipt, error) {
	env, err := envelope.Request(st.kind).Wrap(payload)
	if err != nil {
		return nil, err
	}
	// The size limit counts the sequence number that send adds: the largest it can take.
	envelope.SetSequence(env, math.MaxUint64)
	n := proto.Size(env)
	if n > s.e.maxSize {
		return nil, status.Errorf(codes.InvalidArgument, "%s of %d bytes exceeds max_message_size_mib (%d bytes)",
			payload.ProtoReflect().Descriptor().FullName(), n, s.e.maxSize)
	}
	// Until a side stream is accepted, what is written on it is also kept for re-sending.
	var held uint64
	if st.kind != cloudconn.StreamData {
		if held, err = st.hold(payload, n, replayLimit); err != nil {
			return nil, err
		}
	}
	seq, err := st.send(ctx, env)
	if err != nil {
		if held != 0 && !st.release(held) {
			return nil, nil // the refusal took it: it is re-sent on StreamData
		}
		s.e.tb.KestrelCommandMessagesFailed.Add(context.Background(), 1, st.attrs)
		s.e.messagesFailed.Add(1)
		return nil, err
	}
	s.e.tb.KestrelCommandMessagesSent.Add(context.Background(), 1, st.attrs)
	s.e.messagesSent.Add(1)
	if !track {
		return nil, nil
	}
	return st.outbox.track(st, seq, env), nil
}
