// Package devcloud is a reference Kestrel Cloud: it serves cloud.v1.StreamService and
// server.v1.AutonpServerService/RenewClusterToken over mTLS, records everything operators
// send, and can send tool requests to them. kestrel-devcloud runs it as a program; tests
// run it in-process.
package devcloud

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	serverv1 "github.com/kestrelai/otelcol-kestrel/api/server/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

// ErrUnknownOperator is returned when the named operator (or, for "", any operator) has
// no open stream to send on.
var ErrUnknownOperator = errors.New("unknown or disconnected operator")

// Config configures a Server. CertsDir is required; unset fields with a default take it
// from DefaultConfig.
type Config struct {
	Listen            string        // gRPC listen address
	Listener          net.Listener  // optional: serve gRPC on this listener instead of Listen; Stop and Kill close it
	CertsDir          string        // dir produced by GenerateCerts (server cert, CA for client certs, token.key)
	RecordDir         string        // optional: one JSON-lines file per stream (data.jsonl, control.jsonl, ...)
	AdminListen       string        // optional loopback HTTP admin API address
	HeartbeatInterval time.Duration // interval of heartbeats on every stream
	OldServer         bool          // side streams answer codes.Unimplemented
	LazyHeaders       bool          // response headers go out only with a stream's first message, as grpc-go does by default
	NoAcks            bool          // neither acknowledge nor filter numbered messages, as a server built before acknowledged delivery
	RefuseAfter       time.Duration // with OldServer: the side streams' Unimplemented comes this late (test hook)
	TokenTTL          time.Duration // TTL of tokens minted by RenewClusterToken
	MaxMessageSize    int           // bytes, send and receive
	DrainTimeout      time.Duration // how long Stop lets clients drain before closing
}

// DefaultConfig returns the defaults of Config: a fresh loopback port, heartbeats every
// 30s, 24h tokens, 10 MiB messages and a 5s drain.
func DefaultConfig() Config {
	return Config{
		Listen:            "127.0.0.1:0",
		HeartbeatInterval: 30 * time.Second,
		TokenTTL:          defaultTokenTTL,
		MaxMessageSize:    10 << 20,
		DrainTimeout:      5 * time.Second,
	}
}

// Record is one message received from an operator.
type Record struct {
	Time     time.Time
	Operator string           // operator id: client certificate subject CN + "/" + tenant
	Stream   cloudconn.Stream // cloudconn.StreamData, StreamControl, ...
	Message  proto.Message    // the envelope as received: *cloudv1.StreamDataRequest, ...
	Payload  proto.Message    // the message set in the envelope's oneof, e.g. *cloudv1.Flow; nil if none
	Session  string           // the stream's delivery session, "" if the operator sent none
	Sequence uint64           // the envelope's sequence, 0 when not numbered (or no session)
}

// StreamStatus describes the latest stream of one kind an operator opened.
type StreamStatus struct {
	Open        bool      `json:"open"`
	OpenedAt    time.Time `json:"opened_at"`
	Received    int64     `json:"received"`
	TokenExpiry time.Time `json:"token_expiry"`
	// Acknowledged delivery (docs/protocol.md#acknowledged-delivery) of the stream's
	// session: the highest sequence recorded and the duplicates filtered.
	Session      string `json:"session,omitempty"`
	Acknowledged uint64 `json:"acknowledged,omitempty"`
	Duplicates   int64  `json:"duplicates,omitempty"`
}

// OperatorStatus describes one operator (client certificate CN + tenant).
type OperatorStatus struct {
	ID          string                            `json:"id"`
	Tenant      string                            `json:"tenant"`
	CertSubject string                            `json:"cert_subject"`
	CertSerial  string                            `json:"cert_serial"`
	Streams     map[cloudconn.Stream]StreamStatus `json:"streams"`
	Committed   bool                              `json:"committed"` // an InventoryCommit arrived on the current StreamData
}

// Status is a snapshot of everything the server knows about its operators.
type Status struct {
	Operators []OperatorStatus `json:"operators"`
	Renewals  int              `json:"renewals"`
	// Duplicates counts numbered messages received again after they were recorded, and not
	// recorded a second time, over every operator, stream and session.
	Duplicates int64 `json:"duplicates"`
}

// Server is a running (or startable) devcloud.
type Server struct {
	cfg      Config
	logger   *zap.Logger
	tokenKey []byte
	grpc     *grpc.Server
	admin    *http.Server
	recorder *recorder

	lis      net.Listener
	adminLis net.Listener
	// workers are the receive loops, which outlive their handlers by a moment.
	workers   sync.WaitGroup
	startOnce sync.Once
	stopOnce  sync.Once

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change of records or status
	records   []Record
	operators map[string]*operator
	pending   map[string]*waiter                              // request_id → waiter
	policies  map[string]chan *cloudv1.NetworkPolicyWithError // policy_id → waiter of a push
	renewals  int
	stopped   bool
	// deliveries holds the acknowledged sequence per operator, stream kind and session,
	// rebuilt from RecordDir at start.
	deliveries map[deliveryKey]*delivery
	duplicates int64
	// paused, when not nil, holds every receive loop until it is closed (PauseReading).
	paused chan struct{}
	// withholdAcks: messages are recorded but not acknowledged (WithholdAcks).
	withholdAcks bool
}

type operator struct {
	identity
	streams   map[cloudconn.Stream]*streamConn // latest stream per kind, open or not
	committed bool
}

// New loads the certificates and token key from cfg.CertsDir and builds the server.
func New(cfg Config, logger *zap.Logger) (*Server, error) {
	if cfg.CertsDir == "" {
		return nil, errors.New("devcloud: CertsDir is required")
	}
	def := DefaultConfig()
	if cfg.Listen == "" {
		cfg.Listen = def.Listen
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = def.HeartbeatInterval
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = def.TokenTTL
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = def.MaxMessageSize
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = def.DrainTimeout
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if cfg.AdminListen != "" {
		if err := checkLoopback(cfg.AdminListen); err != nil {
			return nil, err
		}
	}
	tlsCfg, err := loadTLS(cfg.CertsDir)
	if err != nil {
		return nil, err
	}
	tokenKey, err := os.ReadFile(filepath.Join(cfg.CertsDir, TokenKeyFile))
	if err != nil {
		return nil, fmt.Errorf("devcloud: reading token key: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		logger:    logger,
		tokenKey:  tokenKey,
		changed:   make(chan struct{}),
		operators: map[string]*operator{},
		pending:   map[string]*waiter{},
		policies:  map[string]chan *cloudv1.NetworkPolicyWithError{},
	}
	s.deliveries = map[deliveryKey]*delivery{}
	if cfg.RecordDir != "" {
		if err := os.MkdirAll(cfg.RecordDir, 0o700); err != nil {
			return nil, fmt.Errorf("devcloud: record dir: %w", err)
		}
		if s.deliveries, err = loadDeliveries(cfg.RecordDir); err != nil {
			return nil, err
		}
		s.recorder = newRecorder(cfg.RecordDir)
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.ForceServerCodecV2(newCodec()),
		grpc.MaxRecvMsgSize(cfg.MaxMessageSize),
		// The send limit is enforced by sendEnvelope instead, so that Inject can exceed
		// the client's limit on purpose.
		grpc.MaxSendMsgSize(math.MaxInt32),
		// Operators ping every 5 min even without streams (docs/protocol.md#transport);
		// the default policy would answer that with GOAWAY too_many_pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Stop and Kill return only once every handler has: a handler still starting a
		// receive loop (workers.Go) would race finish's workers.Wait.
		grpc.WaitForHandlers(true),
	)
	cloudv1.RegisterStreamServiceServer(s.grpc, streamService{s: s})
	serverv1.RegisterAutonpServerServiceServer(s.grpc, tokenService{s: s})
	if cfg.AdminListen != "" {
		s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	}
	return s, nil
}

func loadTLS(dir string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		return nil, fmt.Errorf("devcloud: loading server certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CACertFile)) //nolint:gosec // dir is the certificates directory from the devcloud configuration
	if err != nil {
		return nil, fmt.Errorf("devcloud: reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("devcloud: no certificate in %s", filepath.Join(dir, CACertFile))
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// checkLoopback refuses admin addresses reachable from other hosts: the admin API can
// run commands on operators and has no authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("devcloud: admin address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("devcloud: admin address %q is not a loopback address", addr)
}

// Start listens on the gRPC (and admin) address and returns once both accept connections.
func (s *Server) Start() error {
	err := errors.New("devcloud: Start called twice")
	s.startOnce.Do(func() { err = s.start() })
	return err
}

func (s *Server) start() error {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return errors.New("devcloud: server was stopped")
	}
	lis := s.cfg.Listener
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("devcloud: listen: %w", err)
		}
	}
	if s.admin != nil {
		adminLis, err := net.Listen("tcp", s.cfg.AdminListen)
		if err != nil {
			lis.Close()
			return fmt.Errorf("devcloud: admin listen: %w", err)
		}
		s.adminLis = adminLis
		s.workers.Go(func() {
			if err := s.admin.Serve(adminLis); !errors.Is(err, http.ErrServerClosed) {
				s.logger.Error("admin API stopped", zap.Error(err))
			}
		})
	}
	s.lis = lis
	s.workers.Go(func() {
		if err := s.grpc.Serve(lis); err != nil {
			s.logger.Error("gRPC server stopped", zap.Error(err))
		}
	})
	s.logger.Info("devcloud serving", zap.String("grpc", s.Addr()), zap.String("admin", s.AdminAddr()))
	return nil
}

// Addr is the actual gRPC address (host:port); "" before Start.
func (s *Server) Addr() string {
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// AdminAddr is the actual admin API address; "" if there is none.
func (s *Server) AdminAddr() string {
	if s.adminLis == nil {
		return ""
	}
	return s.adminLis.Addr().String()
}

// Stop shuts down gracefully: new streams are refused (GOAWAY) and open streams keep
// receiving until their clients close them, for at most Config.DrainTimeout.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.markStopped()
		drained := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(drained)
		}()
		timer := time.NewTimer(s.cfg.DrainTimeout)
		select {
		case <-drained:
			timer.Stop()
		case <-timer.C:
			s.logger.Warn("clients did not drain in time; closing connections", zap.Duration("timeout", s.cfg.DrainTimeout))
			s.grpc.Stop()
			<-drained
		}
		if s.admin != nil {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
			if err := s.admin.Shutdown(ctx); err != nil {
				s.admin.Close()
			}
			cancel()
		}
		s.finish()
	})
}

// Kill closes the listeners and every connection at once, like a crashed server.
func (s *Server) Kill() {
	s.stopOnce.Do(func() {
		s.markStopped()
		s.grpc.Stop()
		if s.admin != nil {
			s.admin.Close()
		}
		s.finish()
	})
}

func (s *Server) markStopped() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

func (s *Server) finish() {
	s.workers.Wait()
	if s.recorder != nil {
		if err := s.recorder.close(); err != nil {
			s.logger.Warn("closing record files", zap.Error(err))
		}
	}
}

// notifyLocked wakes WaitFor/WaitStatus callers; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Records returns a copy of every message received so far.
func (s *Server) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

// WaitFor returns nil once pred(all records) is true, or ctx's error. pred runs with the
// server's lock held, so it must be quick and must not call the Server; it may keep the
// slice it is given.
func (s *Server) WaitFor(ctx context.Context, pred func([]Record) bool) error {
	return s.wait(ctx, func() bool { return pred(slices.Clip(s.records)) })
}

// WaitStatus returns nil once pred(Status()) is true, or ctx's error.
func (s *Server) WaitStatus(ctx context.Context, pred func(Status) bool) error {
	return s.wait(ctx, func() bool { return pred(s.statusLocked()) })
}

func (s *Server) wait(ctx context.Context, done func() bool) error {
	for {
		s.mu.Lock()
		ok := done()
		changed := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Status returns a snapshot of the operators, their streams and the renewal count.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Server) statusLocked() Status {
	st := Status{Operators: []OperatorStatus{}, Renewals: s.renewals, Duplicates: s.duplicates}
	for _, op := range s.operators {
		o := OperatorStatus{
			ID:          op.id,
			Tenant:      op.tenant,
			CertSubject: op.certSubject,
			CertSerial:  op.certSerial,
			Streams:     map[cloudconn.Stream]StreamStatus{},
			Committed:   op.committed,
		}
		for kind, c := range op.streams {
			ss := StreamStatus{Open: c.open, OpenedAt: c.openedAt, Received: c.received, TokenExpiry: c.tokenExpiry, Session: c.session}
			if d := s.deliveries[c.deliveryKey()]; d != nil && c.session != "" {
				ss.Acknowledged, ss.Duplicates = d.acked, d.duplicates
			}
			o.Streams[kind] = ss
		}
		st.Operators = append(st.Operators, o)
	}
	slices.SortFunc(st.Operators, func(a, b OperatorStatus) int { return strings.Compare(a.ID, b.ID) })
	return st
}

// connLocked returns the open stream of kind for operator ("" = the first connected
// operator by id); s.mu must be held.
func (s *Server) connLocked(operator string, kinds ...cloudconn.Stream) (*streamConn, error) {
	ids := []string{operator}
	if operator == "" {
		ids = slices.Sorted(maps.Keys(s.operators))
	}
	for _, id := range ids {
		op := s.operators[id]
		if op == nil {
			continue
		}
		for _, kind := range kinds {
			if c := op.streams[kind]; c != nil && c.open {
				return c, nil
			}
		}
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	if operator == "" {
		return nil, fmt.Errorf("%w: no operator has an open %s stream", ErrUnknownOperator, strings.Join(names, " or "))
	}
	return nil, fmt.Errorf("%w %q: no open %s stream", ErrUnknownOperator, operator, strings.Join(names, " or "))
}

// waiter receives the responses to one request: the first one, or with follow every one
// until a final one.
type waiter struct {
	ch     chan proto.Message
	follow bool
}

// SendRequest sends a tool request (e.g. *cloudv1.KubernetesAPIRequest) to an operator
// on StreamControl when open (else StreamData) and returns the response carrying the same
// request_id. req is not modified; an empty request_id is filled in on a copy.
func (s *Server) SendRequest(ctx context.Context, operator string, req proto.Message) (proto.Message, error) {
	var resp proto.Message
	err := s.send(ctx, operator, req, false, func(m proto.Message) error {
		resp = m
		return nil
	})
	return resp, err
}

// SendRequestFollow is SendRequest for requests answered more than once: each is called
// with every response carrying the request_id until one that is not pending (whose
// "pending" field is false or absent), which ends the wait.
func (s *Server) SendRequestFollow(ctx context.Context, operator string, req proto.Message, each func(proto.Message) error) error {
	return s.send(ctx, operator, req, true, each)
}

func (s *Server) send(ctx context.Context, operator string, req proto.Message, follow bool, each func(proto.Message) error) error {
	req = proto.Clone(req)
	m := req.ProtoReflect()
	idField := requestIDField(m.Descriptor())
	if idField == nil {
		return fmt.Errorf("devcloud: %s has no request_id field", m.Descriptor().FullName())
	}
	reqID := m.Get(idField).String()
	if reqID == "" {
		reqID = newRequestID()
		m.Set(idField, protoreflect.ValueOfString(reqID))
	}

	s.mu.Lock()
	c, err := s.connLocked(operator, cloudconn.StreamControl, cloudconn.StreamData)
	if err == nil {
		if _, dup := s.pending[reqID]; dup {
			err = fmt.Errorf("devcloud: request_id %q is already in flight", reqID)
		}
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	w := &waiter{ch: make(chan proto.Message, 8), follow: follow}
	s.pending[reqID] = w
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, reqID)
		s.mu.Unlock()
	}()

	env, err := envelope.Response(c.kind).Wrap(req)
	if err != nil {
		return err
	}
	if err := s.sendEnvelope(c, env); err != nil {
		return err
	}
	s.logger.Debug("request sent", zap.String("operator", c.opID), zap.String("stream", string(c.kind)),
		zap.String("type", string(m.Descriptor().Name())), zap.String("request_id", reqID))
	for {
		select {
		case resp := <-w.ch:
			if err := each(resp); err != nil {
				return err
			}
			if !follow || !pending(resp) {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("devcloud: waiting for response to %s: %w", reqID, ctx.Err())
		}
	}
}

// pending reports a response that announces a later, final one (YamlApplyResponse.pending).
func pending(m proto.Message) bool {
	fd := m.ProtoReflect().Descriptor().Fields().ByName("pending")
	return fd != nil && fd.Kind() == protoreflect.BoolKind && m.ProtoReflect().Get(fd).Bool()
}

// PushPolicy pushes a recommended NetworkPolicy to an operator on stream (StreamData or
// StreamControl) and returns the operator's answer for its policy_id: the element of the
// NetworkPoliciesWithErrors it sends once the policy is decided (empty error_message:
// applied).
func (s *Server) PushPolicy(ctx context.Context, operator string, stream cloudconn.Stream, policy *cloudv1.NetworkPolicyWithError) (*cloudv1.NetworkPolicyWithError, error) {
	policy = proto.Clone(policy).(*cloudv1.NetworkPolicyWithError)
	if policy.GetPolicyId() == "" {
		policy.PolicyId = newRequestID()
	}
	if stream != cloudconn.StreamData && stream != cloudconn.StreamControl {
		return nil, fmt.Errorf("devcloud: policies are pushed on %s or %s, not %s", cloudconn.StreamData, cloudconn.StreamControl, stream)
	}
	s.mu.Lock()
	c, err := s.connLocked(operator, stream)
	if err == nil {
		if _, dup := s.policies[policy.GetPolicyId()]; dup {
			err = fmt.Errorf("devcloud: policy_id %q is already in flight", policy.GetPolicyId())
		}
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	reply := make(chan *cloudv1.NetworkPolicyWithError, 1)
	s.policies[policy.GetPolicyId()] = reply
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.policies, policy.GetPolicyId())
		s.mu.Unlock()
	}()
	env, err := envelope.Response(stream).Wrap(policy)
	if err != nil {
		return nil, err
	}
	if err := s.sendEnvelope(c, env); err != nil {
		return nil, err
	}
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("devcloud: waiting for the answer to policy %s: %w", policy.GetPolicyId(), ctx.Err())
	}
}

// sendEnvelope enforces Config.MaxMessageSize, which the gRPC server itself does not.
func (s *Server) sendEnvelope(c *streamConn, env proto.Message) error {
	if n := proto.Size(env); n > s.cfg.MaxMessageSize {
		return fmt.Errorf("devcloud: message of %d bytes exceeds the %d byte limit", n, s.cfg.MaxMessageSize)
	}
	return c.send(env)
}

// deliverResponse hands a tool response to its SendRequest waiter, and policy answers to
// their PushPolicy waiters, if any.
func (s *Server) deliverResponse(payload proto.Message) {
	if acks, ok := payload.(*cloudv1.NetworkPoliciesWithErrors); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range acks.GetPolicies() {
			if reply, ok := s.policies[p.GetPolicyId()]; ok {
				delete(s.policies, p.GetPolicyId())
				reply <- p
			}
		}
		return
	}
	fd := requestIDField(payload.ProtoReflect().Descriptor())
	if fd == nil || !strings.HasSuffix(string(payload.ProtoReflect().Descriptor().Name()), "Response") {
		return
	}
	id := payload.ProtoReflect().Get(fd).String()
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.pending[id]
	if !ok {
		return
	}
	if !w.follow {
		delete(s.pending, id)
	}
	select {
	case w.ch <- payload:
	default: // a waiter that stopped reading; the record keeps the message
	}
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// BreakStream ends the operator's current stream of that kind with codes.Unavailable
// (test hook; operator "" = the first connected one).
func (s *Server) BreakStream(operator string, stream cloudconn.Stream) {
	s.mu.Lock()
	c, err := s.connLocked(operator, stream)
	s.mu.Unlock()
	if err == nil {
		c.breakOnce.Do(func() { close(c.broken) })
	}
}

// PauseReading makes every stream stop reading (true) or read again (false), as a cloud
// that accepts connections but no longer processes them: HTTP/2 flow control then blocks
// the operator's writes once the windows are full (test hook).
func (s *Server) PauseReading(pause bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case pause && s.paused == nil:
		s.paused = make(chan struct{})
	case !pause && s.paused != nil:
		close(s.paused)
		s.paused = nil
	}
}

// WithholdAcks makes the server record numbered messages without acknowledging them (true),
// as a server that dies between recording and acknowledging, or one that never acknowledges;
// false acknowledges again, from the next message on (test hook).
func (s *Server) WithholdAcks(withhold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.withholdAcks = withhold
}

// readGate returns the channel a receive loop waits on while reading is paused, or nil.
func (s *Server) readGate() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// Inject writes raw as one gRPC message on the operator's stream, bypassing proto
// marshalling and the size limit (test hook for garbage and oversized messages).
func (s *Server) Inject(operator string, stream cloudconn.Stream, raw []byte) error {
	s.mu.Lock()
	c, err := s.connLocked(operator, stream)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return c.send(rawMessage(raw))
}

// tokenService implements RenewClusterToken.
type tokenService struct {
	serverv1.UnimplementedAutonpServerServiceServer
	s *Server
}

// RenewClusterToken accepts an expired token as long as devcloud signed it: operators
// renew with the token they have, which may have run out (docs/protocol.md#token-renewal).
func (t tokenService) RenewClusterToken(_ context.Context, req *serverv1.RenewClusterTokenRequest) (*serverv1.RenewClusterTokenResponse, error) {
	claims, err := parseToken(t.s.tokenKey, req.GetCurrentToken(), true)
	if err != nil {
		t.s.logger.Warn("token renewal refused", zap.Error(err))
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	token, err := signToken(t.s.tokenKey, claims.tenant, t.s.cfg.TokenTTL, time.Now())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	t.s.mu.Lock()
	t.s.renewals++
	t.s.notifyLocked()
	t.s.mu.Unlock()
	t.s.logger.Info("token renewed", zap.String("tenant", claims.tenant))
	return &serverv1.RenewClusterTokenResponse{
		AccessToken: token,
		ExpiresIn:   int64(t.s.cfg.TokenTTL / time.Second),
		TokenType:   "Bearer",
	}, nil
}
