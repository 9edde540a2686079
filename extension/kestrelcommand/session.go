package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	// sendingSince is when the write in progress began (UnixNano), 0 when none is: a write
	// blocked for long means the server stopped reading.
	sendingSince atomic.Int64
	done   chan struct{} // closed when the receive loop has returned
	err    error         // the receive loop's result, readable after done
}

func (st *stream) send(ctx context.Context, msg proto.Message) error {
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
	return st.cs.SendMsg(msg)
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
	ctx = metadata.AppendToOutgoingContext(ctx, tenantHeader, token.tenant)
	cs, err := streamSpecs[kind].open(ctx, s.client)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("opening %s: %w", kind, err)
	}
	return &stream{
		kind: kind, attrs: metric.WithAttributes(attribute.String("stream", string(kind))),
		token: token.raw, cs: cs, cancel: cancel, lock: make(chan struct{}, 1), done: make(chan struct{}),
	}, nil
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
		req := envelope.Unwrap(env)
		switch {
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

// acceptWait bounds how long a new StreamData waits for the server's headers before
// data is sent on it anyway (the real cloud may send headers only with its first heartbeat).
const acceptWait = 2 * time.Second

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
	// The server accepted StreamData once it sends headers (at the latest with its first
	// heartbeat); a refusal (e.g. Unauthenticated) arrives as a status without headers.
	accepted := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if md, _ := data.cs.Header(); md != nil {
			close(accepted)
		}
		s.receive(data)
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

	// Nothing is handed to StreamData before the server accepted it, or refused it: what
	// was written before a refusal would be lost although Send reported success. A server
	// that sends headers only with its first message is waited for at most acceptWait.
	select {
	case <-accepted:
	case <-s.failed:
	case <-s.e.stopCtx.Done():
	case <-time.After(acceptWait):
	}

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
			s.reportAccepted(accepted)
		}()
		s.startControl()
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
		return s.sendOn(ctx, s.data, m)
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
	if err := s.sendOn(ctx, s.data, commit); err != nil {
		return fmt.Errorf("sending InventoryCommit: %w", err)
	}
	return nil
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
			// Payloads go on the stream only once the server has accepted it (sent its
			// headers): an Unimplemented answer arrives as a headers-less status, and any
			// message sent before it would be lost although Send reported success.
			if md, _ := st.cs.Header(); md != nil {
				openedAt = time.Now()
				slot.Store(st)
				s.e.status.sideStream(kind, nil)
			}
			s.receive(st)
			slot.CompareAndSwap(st, nil)
			st.cancel()
			err = st.err
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
				if d := st.blockedFor(now); d >= limit {
					err := fmt.Errorf("stream %s made no progress for %v (Kestrel Cloud stopped reading); connection recycled", st.kind, d.Round(time.Millisecond))
					s.e.logger.Warn("Kestrel Cloud stopped reading; recycling the connection",
						zap.String("stream", string(st.kind)), zap.Duration("blocked", d), zap.Duration("stall_timeout", limit))
					s.e.tb.KestrelCommandStalls.Add(context.Background(), 1, st.attrs)
					s.e.status.stalled(err)
					s.stalled.Store(true)
					s.fail(err)
					return
				}
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
func (s *session) send(ctx context.Context, preferred cloudconn.Stream, payload proto.Message) error {
	if preferred != cloudconn.StreamData {
		if st := s.open[preferred].Load(); st != nil {
			err := s.sendOn(ctx, st, payload)
			if err == nil || ctx.Err() != nil || status.Code(err) == codes.InvalidArgument {
				return err
			}
		}
	}
	err := s.sendOn(ctx, s.data, payload)
	if errors.Is(err, errStreamClosed) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: StreamData is closing", cloudconn.ErrNotConnected)
	}
	return err
}

// sendOn wraps payload in st's envelope and writes it. Oversized messages are refused
// before they reach gRPC, which would otherwise fail the whole stream.
func (s *session) sendOn(ctx context.Context, st *stream, payload proto.Message) error {
	env, err := envelope.Request(st.kind).Wrap(payload)
	if err != nil {
		return err
	}
	if n := proto.Size(env); n > s.e.maxSize {
		return status.Errorf(codes.InvalidArgument, "%s of %d bytes exceeds max_message_size_mib (%d bytes)",
			payload.ProtoReflect().Descriptor().FullName(), n, s.e.maxSize)
	}
	if err := st.send(ctx, env); err != nil {
		s.e.tb.KestrelCommandMessagesFailed.Add(context.Background(), 1, st.attrs)
		return err
	}
	s.e.tb.KestrelCommandMessagesSent.Add(context.Background(), 1, st.attrs)
	return nil
}
