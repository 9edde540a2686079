package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/oauth"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/selflog"
)

// drainTimeout bounds how long a closing session waits for the server to finish its
// streams after CloseSend, so buffered messages are delivered before the cancel.
const drainTimeout = 10 * time.Second

var (
	_ extension.Extension                   = (*kestrelCommand)(nil)
	_ extensioncapabilities.PipelineWatcher = (*kestrelCommand)(nil)
	_ cloudconn.Provider                    = (*kestrelCommand)(nil)
	_ cloudconn.Connection                  = (*kestrelCommand)(nil)
)

type kestrelCommand struct {
	cfg     *Config
	set     extension.Settings
	logger  *zap.Logger
	tb      *metadata.TelemetryBuilder
	maxSize int

	tokens     *tokenManager
	dispatcher *dispatcher
	status     statusTracker

	// stopCtx is cancelled when Shutdown begins: sessions drain gracefully.
	stopCtx context.Context
	stop    context.CancelFunc
	// abortCtx is cancelled when Shutdown's deadline passes: draining is cut short.
	abortCtx context.Context
	abort    context.CancelFunc

	// rotate asks the current session to reconnect with the rotated client certificate.
	rotate chan struct{}
	// certSecret, when certificate_renewal::secret is set, receives renewed pairs.
	certSecret *secretStore

	mu        sync.Mutex
	host      component.Host
	started   bool
	running   bool // the connect loop was started
	snapshots []snapshotProvider
	nextSnap  uint64

	session atomic.Pointer[session]

	// carried holds payloads of a refused side stream that could not be re-sent before
	// the connection ended (Send had reported them sent): the next session sends them
	// first. Bounded by carryLimit bytes.
	carryMu      sync.Mutex
	carried      []heldPayload
	carriedBytes int

	// selfLogs sends the collector's own warnings and errors; nil when the distribution's
	// logger does not capture them or self_logs is disabled.
	selfLogs *selfLogs

	// deliverySession names this process's sequence spaces to the server; outboxes hold
	// them per stream kind, across sessions; sawAcks is set by the first acknowledgement.
	deliverySession string
	outboxes        map[cloudconn.Stream]*outbox
	sawAcks         atomic.Bool

	// Totals for OperatorStats, over all sessions.
	messagesSent   atomic.Int64
	messagesFailed atomic.Int64

	state   atomic.Int64
	stateMu sync.Mutex // serialises state changes so subscribers see them in order
	subsMu  sync.Mutex
	subs    []subscriber
	nextSub uint64

	wg sync.WaitGroup
}

type subscriber struct {
	id uint64
	fn func(cloudconn.State)
}

type snapshotProvider struct {
	id uint64
	fn cloudconn.SnapshotFunc
}

func newExtension(cfg *Config, set extension.Settings) (*kestrelCommand, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &kestrelCommand{
		cfg:     cfg,
		set:     set,
		logger:  set.Logger,
		tb:      tb,
		maxSize: cfg.MaxMessageSizeMiB << 20,
		rotate:  make(chan struct{}, 1),

		deliverySession: newSessionID(),
		outboxes:        map[cloudconn.Stream]*outbox{},
	}
	for _, k := range append([]cloudconn.Stream{cloudconn.StreamData, cloudconn.StreamControl}, sideStreams...) {
		e.outboxes[k] = &outbox{}
	}
	e.stopCtx, e.stop = context.WithCancel(context.Background())
	e.abortCtx, e.abort = context.WithCancel(context.Background())
	e.tokens = newTokenManager(cfg.Token, set.Logger, tb)
	e.tokens.dial = e.dial
	e.dispatcher = newDispatcher(e.stopCtx, cfg.MaxConcurrentRequests, set.Logger, tb, e.reply)
	return e, nil
}

// Start checks the TLS files and loads the token (failing if either is missing; a
// persisted token that cannot be read is only logged) and starts token renewal and the
// TLS file watch. The connection itself starts in Ready, once every pipeline component
// has started, so that all snapshot providers are registered before the first
// InventoryCommit.
func (e *kestrelCommand) Start(ctx context.Context, host component.Host) error {
	// Validate checked the files too, but they may have gone since (or validation was
	// skipped): without them no connection can ever be made.
	if err := e.checkTLS(); err != nil {
		return err
	}
	if ts := e.cfg.Token.PersistSecret; ts.enabled() {
		store, err := newSecretStore(ts.SecretRef, "token::persist_secret", e.cfg.Kubernetes)
		if err != nil {
			return err
		}
		e.tokens.secret = store
	}
	if err := e.tokens.load(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	e.host = host
	e.started = true
	e.mu.Unlock()
	e.status.setHost(host)
	e.tb.KestrelCommandConnected.Record(context.Background(), 0)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.tokens.run(e.stopCtx)
	}()
	if e.cfg.CertificateRenewal.Enabled {
		if sc := e.cfg.CertificateRenewal.Secret; sc.enabled() {
			w, err := newSecretStore(sc.SecretRef, "certificate_renewal::secret", e.cfg.Kubernetes)
			if err != nil {
				return err
			}
			e.certSecret = w
		}
		if _, err := e.dispatcher.register(&cloudv1.CertificateRenewalRequest{}, e.renewCertificate); err != nil {
			return err
		}
	}
	if buf := selflog.Lookup(e.set.Resource); buf != nil {
		switch {
		case !e.cfg.SelfLogs.Enabled:
			if buf.Claim() {
				buf.SetLimits(0, 0, 0) // capture nothing
			}
		case !buf.Claim():
			e.logger.Info("The collector's own logs already go to Kestrel Cloud through another kestrel_command")
		default:
			e.selfLogs = newSelfLogs(e, buf)
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				e.selfLogs.run(e.stopCtx)
			}()
		}
	}
	if files := e.tlsFiles(); len(files) > 0 {
		w := newCertWatcher(files, e.logger, e.checkTLS, e.requestRotation, e.status.certificate)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			w.run(e.stopCtx)
		}()
	}
	return nil
}

// Ready starts connecting to Kestrel Cloud.
func (e *kestrelCommand) Ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.running || e.stopCtx.Err() != nil {
		return nil
	}
	e.running = true
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.connectLoop()
	}()
	return nil
}

// NotReady keeps the connection: exporters still flush through it while pipelines stop.
// It stops the status reports, though: the collector is shutting down and reports each
// extension's stopping itself, and a report from a stream's goroutine could reach an
// extension (health_check) that the collector has already shut down, in whichever order it
// stops extensions that do not depend on each other.
func (e *kestrelCommand) NotReady() error {
	e.status.setHost(nil)
	return nil
}

// Shutdown drains the streams (so messages already handed to Send are delivered) and
// stops all goroutines; when ctx ends first, draining is cut short.
func (e *kestrelCommand) Shutdown(ctx context.Context) error {
	// The pipelines have stopped: what they logged while stopping goes out first.
	if e.selfLogs != nil {
		e.selfLogs.flush(ctx)
	}
	// Under mu so that a concurrent Ready either sees the stop or is waited for.
	e.mu.Lock()
	e.stop()
	e.mu.Unlock()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		e.dispatcher.wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		e.abort()
		<-done
	}
	e.abort()
	e.tb.Shutdown()
	return nil
}

// Connection implements cloudconn.Provider.
func (e *kestrelCommand) Connection() cloudconn.Connection { return e }

// Send implements cloudconn.Connection.
func (e *kestrelCommand) Send(ctx context.Context, payload proto.Message) error {
	_, err := e.send(ctx, payload, false)
	return err
}

// SendAcknowledged implements cloudconn.Connection.
func (e *kestrelCommand) SendAcknowledged(ctx context.Context, payload proto.Message) (cloudconn.Acknowledgement, error) {
	r, err := e.send(ctx, payload, true)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return acknowledgedAlready, nil
	}
	return r.wait, nil
}

func acknowledgedAlready(context.Context) error { return nil }

func (e *kestrelCommand) send(ctx context.Context, payload proto.Message, track bool) (*receipt, error) {
	if payload == nil {
		return nil, status.Error(codes.InvalidArgument, "nil payload")
	}
	preferred, err := preferredStream(payload.ProtoReflect().Descriptor().FullName())
	if err != nil {
		return nil, err
	}
	s := e.session.Load()
	if s == nil {
		return nil, cloudconn.ErrNotConnected
	}
	return s.send(ctx, preferred, payload, track)
}

// Handle implements cloudconn.Connection.
func (e *kestrelCommand) Handle(requestType proto.Message, h cloudconn.Handler) (func(), error) {
	return e.dispatcher.register(requestType, h)
}

// MaxMessageBytes implements cloudconn.Connection.
func (e *kestrelCommand) MaxMessageBytes() int { return e.maxSize }

// RegisterSnapshot implements cloudconn.Connection. A replay in progress when the provider
// is unregistered still finishes with it.
func (e *kestrelCommand) RegisterSnapshot(fn cloudconn.SnapshotFunc) func() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nextSnap++
	id := e.nextSnap
	e.snapshots = append(e.snapshots, snapshotProvider{id: id, fn: fn})
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.snapshots = slices.DeleteFunc(e.snapshots, func(p snapshotProvider) bool { return p.id == id })
	}
}

func (e *kestrelCommand) snapshotFuncs() []cloudconn.SnapshotFunc {
	e.mu.Lock()
	defer e.mu.Unlock()
	fns := make([]cloudconn.SnapshotFunc, len(e.snapshots))
	for i, p := range e.snapshots {
		fns[i] = p.fn
	}
	return fns
}

// State implements cloudconn.Connection.
func (e *kestrelCommand) State() cloudconn.State { return cloudconn.State(e.state.Load()) }

// Subscribe implements cloudconn.Connection. fn runs synchronously on each change and
// must not call Subscribe.
func (e *kestrelCommand) Subscribe(fn func(cloudconn.State)) func() {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	e.subsMu.Lock()
	e.nextSub++
	id := e.nextSub
	e.subs = append(e.subs, subscriber{id: id, fn: fn})
	e.subsMu.Unlock()
	fn(e.State())
	return func() {
		e.subsMu.Lock()
		defer e.subsMu.Unlock()
		for i, s := range e.subs {
			if s.id == id {
				e.subs = append(e.subs[:i:i], e.subs[i+1:]...)
				return
			}
		}
	}
}

func (e *kestrelCommand) setState(st cloudconn.State) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	if cloudconn.State(e.state.Swap(int64(st))) == st {
		return
	}
	connected := int64(0)
	if st == cloudconn.Ready {
		connected = 1
	}
	e.tb.KestrelCommandConnected.Record(context.Background(), connected)
	e.subsMu.Lock()
	subs := append([]subscriber(nil), e.subs...)
	e.subsMu.Unlock()
	for _, s := range subs {
		s.fn(st)
	}
}

// reply sends a handler's response on the current session.
func (e *kestrelCommand) reply(ctx context.Context, arrival cloudconn.Stream, resp proto.Message) error {
	s := e.session.Load()
	if s == nil {
		return cloudconn.ErrNotConnected
	}
	_, err := s.send(ctx, replyStream(arrival, resp), resp, false)
	return err
}

// dial creates a new ClientConn. ToClientConn loads the TLS files every time, so each
// connection presents the client certificate currently on disk.
func (e *kestrelCommand) dial(ctx context.Context) (*grpc.ClientConn, error) {
	e.mu.Lock()
	host := e.host
	e.mu.Unlock()
	var exts map[component.ID]component.Component
	if host != nil {
		exts = host.GetExtensions()
	}
	return e.cfg.ToClientConn(ctx, exts, e.set.TelemetrySettings,
		configgrpc.WithGrpcDialOption(grpc.WithPerRPCCredentials(oauth.TokenSource{TokenSource: e.tokens})),
		configgrpc.WithGrpcDialOption(grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(e.maxSize),
			grpc.MaxCallSendMsgSize(e.maxSize),
		)),
	)
}

func (e *kestrelCommand) tlsFiles() []string {
	var files []string
	for _, f := range []string{e.cfg.TLS.CertFile, e.cfg.TLS.KeyFile, e.cfg.TLS.CAFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

func (e *kestrelCommand) checkTLS() error { return e.cfg.checkTLSFiles() }

// requestRotation is called by the certificate watcher with a loadable new set.
func (e *kestrelCommand) requestRotation() {
	e.status.certificate(nil)
	select {
	case e.rotate <- struct{}{}:
	default:
	}
}

// connectLoop keeps one session up until shutdown, with jittered exponential backoff
// between attempts that starts over after reconnect.reset_after of healthy connection.
func (e *kestrelCommand) connectLoop() {
	bo := newBackoff(e.cfg.Reconnect)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			e.tb.KestrelCommandReconnects.Add(context.Background(), 1, metric.WithAttributes(attribute.String("stream", string(cloudconn.StreamData))))
		}
		// Taken before the attempt so a renewal that completes while the attempt fails
		// (Unauthenticated triggers one) cuts the backoff short.
		tokenChanged := e.tokens.changed()
		token := e.tokens.current().raw
		res := e.attempt()
		if e.stopCtx.Err() != nil {
			return
		}
		if !res.readyAt.IsZero() && time.Since(res.readyAt) >= e.cfg.Reconnect.ResetAfter {
			bo.Reset()
		}
		err := res.err
		if status.Code(err) == codes.Unauthenticated {
			e.tokens.renewSoon(token)
			err = e.tokens.authError(err)
		}
		e.status.disconnected(err)
		if res.immediate {
			e.logger.Info("Reconnecting to Kestrel Cloud", zap.Error(err))
			continue
		}
		wait := bo.NextBackOff()
		e.logger.Warn("Disconnected from Kestrel Cloud; reconnecting", zap.Error(err), zap.Duration("backoff", wait))
		timer := time.NewTimer(wait)
		select {
		case <-e.stopCtx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-tokenChanged:
			timer.Stop()
		case <-e.rotate:
			timer.Stop()
		}
	}
}

type attemptResult struct {
	err       error
	readyAt   time.Time // zero if the session never became Ready
	immediate bool      // reconnect without backoff (certificate rotation)
}

func (e *kestrelCommand) attempt() attemptResult {
	conn, err := e.dial(e.stopCtx)
	if err != nil {
		return attemptResult{err: fmt.Errorf("cannot set up the connection to %s: %w", e.cfg.Endpoint, err)}
	}
	defer conn.Close()
	return newSession(e, conn).run()
}

func newBackoff(cfg ReconnectConfig) *backoff.ExponentialBackOff {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     cfg.InitialInterval,
		RandomizationFactor: cfg.RandomizationFactor,
		Multiplier:          cfg.Multiplier,
		MaxInterval:         cfg.MaxInterval,
	}
	bo.Reset()
	return bo
}

var (
	errShutdown = errors.New("shutting down")
	errRotated  = errors.New("client certificate rotated")
)
