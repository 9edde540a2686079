package devcloud

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

var errStreamClosed = errors.New("devcloud: stream is closed")

// streamConn is one open (or finished) stream of an operator.
type streamConn struct {
	op          *operator
	opID        string // op.id, copied so it can be read without Server.mu
	kind        cloudconn.Stream
	st          grpc.ServerStream
	openedAt    time.Time
	tokenExpiry time.Time
	broken      chan struct{} // closed by BreakStream
	breakOnce   sync.Once
	session     string        // delivery session from the request metadata; "" = no acknowledgements
	ackDue      chan struct{} // 1-slot: an acknowledgement is to be sent

	// open and received are guarded by Server.mu.
	open     bool
	received int64

	// sendMu serialises SendMsg (gRPC allows one sender at a time) and guards done,
	// which stops sends once the handler has returned.
	sendMu sync.Mutex
	done   bool
}

func (c *streamConn) deliveryKey() deliveryKey {
	return deliveryKey{operator: c.opID, kind: c.kind, session: c.session}
}

// ackSoon asks the stream's handler to acknowledge; requests made while one is pending
// coalesce, so a busy stream gets one acknowledgement per handler turn, not per message.
func (c *streamConn) ackSoon() {
	select {
	case c.ackDue <- struct{}{}:
	default:
	}
}

func (c *streamConn) send(m any) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.done {
		return errStreamClosed
	}
	return c.st.SendMsg(m)
}

type streamService struct {
	cloudv1.UnimplementedStreamServiceServer
	s *Server
}

func (h streamService) StreamData(st grpc.BidiStreamingServer[cloudv1.StreamDataRequest, cloudv1.StreamDataResponse]) error {
	return h.s.serveStream(st, cloudconn.StreamData)
}

func (h streamService) StreamControl(st grpc.BidiStreamingServer[cloudv1.StreamControlRequest, cloudv1.StreamControlResponse]) error {
	return h.s.serveSideStream(st, cloudconn.StreamControl)
}

func (h streamService) StreamFlows(st grpc.BidiStreamingServer[cloudv1.StreamFlowsRequest, cloudv1.StreamFlowsResponse]) error {
	return h.s.serveSideStream(st, cloudconn.StreamFlows)
}

func (h streamService) StreamEvents(st grpc.BidiStreamingServer[cloudv1.StreamEventsRequest, cloudv1.StreamEventsResponse]) error {
	return h.s.serveSideStream(st, cloudconn.StreamEvents)
}

func (h streamService) StreamLogs(st grpc.BidiStreamingServer[cloudv1.StreamLogsRequest, cloudv1.StreamLogsResponse]) error {
	return h.s.serveSideStream(st, cloudconn.StreamLogs)
}

// serveSideStream plays an old cloud that only knows StreamData
// (docs/protocol.md#side-streams-and-fallback).
func (s *Server) serveSideStream(st grpc.ServerStream, kind cloudconn.Stream) error {
	if s.cfg.OldServer {
		if s.cfg.RefuseAfter > 0 {
			select {
			case <-time.After(s.cfg.RefuseAfter):
			case <-st.Context().Done():
			}
		}
		return status.Errorf(codes.Unimplemented, "method Stream%s not implemented (devcloud old-server mode)", title(kind))
	}
	return s.serveStream(st, kind)
}

func title(kind cloudconn.Stream) string {
	if kind == "" {
		return ""
	}
	return string(kind[0]-'a'+'A') + string(kind[1:])
}

// serveStream authenticates the stream, then receives until the client closes its side,
// sending heartbeats meanwhile. It keeps receiving during a graceful Stop so that a
// draining client loses nothing.
func (s *Server) serveStream(st grpc.ServerStream, kind cloudconn.Stream) error {
	id, err := s.authenticate(st.Context())
	if err != nil {
		s.logger.Warn("stream refused", zap.String("stream", string(kind)), zap.Error(err))
		return err
	}
	// Headers right away tell the operator the stream was accepted. Sent before the
	// stream is registered, so no other goroutine can be writing to it yet. LazyHeaders
	// plays a server whose headers come only with its first message (a heartbeat).
	if !s.cfg.LazyHeaders {
		if err := st.SendHeader(metadata.MD{}); err != nil {
			return err
		}
	}
	c := s.openStream(id, kind, st)
	defer s.closeStream(c)
	log := s.logger.With(zap.String("operator", id.id), zap.String("stream", string(kind)))
	log.Info("stream opened")

	recvErr := make(chan error, 1)
	s.workers.Go(func() { recvErr <- s.recvLoop(c) })
	ticker := time.NewTicker(s.cfg.HeartbeatInterval)
	defer ticker.Stop()
	for {
		select {
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				log.Info("stream closed by operator")
				return nil
			}
			log.Info("stream ended", zap.Error(err))
			return err
		case <-c.broken:
			log.Info("stream broken by test hook")
			return status.Error(codes.Unavailable, "stream broken by devcloud")
		case <-c.ackDue:
			if err := s.sendEnvelope(c, envelope.Ack(kind, s.acknowledged(c))); err != nil {
				log.Info("acknowledgement failed", zap.Error(err))
				return err
			}
		case <-ticker.C:
			if err := s.sendEnvelope(c, heartbeat(kind)); err != nil {
				log.Info("heartbeat failed", zap.Error(err))
				return err
			}
		}
	}
}

func (s *Server) recvLoop(c *streamConn) error {
	recv := envelope.Request(c.kind)
	for {
		if gate := s.readGate(); gate != nil {
			select {
			case <-gate:
			case <-c.st.Context().Done():
				return c.st.Context().Err()
			}
		}
		env := recv.New()
		if err := c.st.RecvMsg(env); err != nil {
			return err
		}
		payload := envelope.Unwrap(env)
		var seq uint64
		if c.session != "" {
			seq = envelope.Sequence(env)
		}
		rec := Record{Time: time.Now(), Operator: c.opID, Stream: c.kind, Message: env, Payload: payload, Session: c.session, Sequence: seq}
		s.mu.Lock()
		// Decided with the record, so that a test that saw the record knows about its ack.
		ack := seq != 0 && !s.withholdAcks
		if seq != 0 && s.duplicateLocked(c, seq) {
			s.mu.Unlock()
			if ack {
				c.ackSoon()
			}
			continue
		}
		s.records = append(s.records, rec)
		c.received++
		if _, ok := payload.(*cloudv1.InventoryCommit); ok && c.op.streams[c.kind] == c {
			c.op.committed = true
		}
		if seq != 0 && s.recorder == nil {
			s.deliveryLocked(c).acked = seq
		}
		s.notifyLocked()
		s.mu.Unlock()
		if s.recorder != nil {
			if err := s.recorder.write(rec); err != nil {
				s.logger.Warn("recording message failed", zap.Error(err))
				if seq != 0 {
					// Acknowledgements are cumulative: acknowledging a later message would
					// acknowledge this one too. Ending the stream makes the operator re-send.
					return fmt.Errorf("recording message %d: %w", seq, err)
				}
			} else if seq != 0 {
				s.mu.Lock()
				s.deliveryLocked(c).acked = seq
				s.mu.Unlock()
			}
		}
		if ack {
			c.ackSoon()
		}
		if payload != nil {
			s.deliverResponse(payload)
		}
	}
}

func (s *Server) openStream(id identity, kind cloudconn.Stream, st grpc.ServerStream) *streamConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	op := s.operators[id.id]
	if op == nil {
		op = &operator{streams: map[cloudconn.Stream]*streamConn{}}
		s.operators[id.id] = op
	}
	// The latest certificate and token describe the operator now.
	op.identity = id
	c := &streamConn{
		op:          op,
		opID:        id.id,
		kind:        kind,
		st:          st,
		openedAt:    time.Now(),
		tokenExpiry: id.tokenExpiry,
		broken:      make(chan struct{}),
		open:        true,
		session:     s.sessionOf(st),
		ackDue:      make(chan struct{}, 1),
	}
	op.streams[kind] = c
	if kind == cloudconn.StreamData {
		// A new StreamData starts a new snapshot, which is staged until its commit.
		op.committed = false
	}
	s.notifyLocked()
	return c
}

func (s *Server) closeStream(c *streamConn) {
	c.sendMu.Lock()
	c.done = true
	c.sendMu.Unlock()
	s.mu.Lock()
	c.open = false
	s.notifyLocked()
	s.mu.Unlock()
}

// deliveryLocked returns the sequence space of c's stream kind and session; s.mu must be held.
func (s *Server) deliveryLocked(c *streamConn) *delivery {
	k := c.deliveryKey()
	d := s.deliveries[k]
	if d == nil {
		d = &delivery{}
		s.deliveries[k] = d
	}
	return d
}

// duplicateLocked reports, and counts, a numbered message that was already recorded: the
// operator re-sends what it wrote before a reconnect and saw no acknowledgement for.
func (s *Server) duplicateLocked(c *streamConn, seq uint64) bool {
	d := s.deliveryLocked(c)
	if seq > d.acked {
		return false
	}
	d.duplicates++
	s.duplicates++
	s.notifyLocked()
	return true
}

// acknowledged is the highest sequence recorded of c's stream kind and session.
func (s *Server) acknowledged(c *streamConn) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deliveryLocked(c).acked
}
