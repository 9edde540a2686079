package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

// replyFunc sends a response to the cloud, preferring the stream the request came in on.
type replyFunc func(ctx context.Context, arrival cloudconn.Stream, resp proto.Message) error

// dispatcher runs registered handlers for requests from the cloud.
type dispatcher struct {
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	// ctx is the handlers' context; it is cancelled on shutdown.
	ctx   context.Context
	sem   chan struct{}
	reply replyFunc

	wg sync.WaitGroup

	mu       sync.RWMutex
	handlers map[protoreflect.FullName]*registration

	// unsupported remembers the request types already logged as unhandled.
	unsupported sync.Map
}

func newDispatcher(ctx context.Context, maxConcurrent int, logger *zap.Logger, tb *metadata.TelemetryBuilder, reply replyFunc) *dispatcher {
	return &dispatcher{
		logger:   logger,
		tb:       tb,
		ctx:      ctx,
		sem:      make(chan struct{}, maxConcurrent),
		reply:    reply,
		handlers: map[protoreflect.FullName]*registration{},
	}
}

// registration is one Handle call; unregistering removes only that one, not a later
// registration of the same type.
type registration struct {
	h cloudconn.Handler
}

func (d *dispatcher) register(requestType proto.Message, h cloudconn.Handler) (unregister func(), err error) {
	if requestType == nil || h == nil {
		return nil, errors.New("request type and handler must not be nil")
	}
	name := requestType.ProtoReflect().Descriptor().FullName()
	if !isRequestType(name) {
		return nil, fmt.Errorf("%s is not a request the cloud sends (no field in StreamControlResponse or StreamDataResponse)", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.handlers[name]; dup {
		return nil, fmt.Errorf("a handler for %s is already registered", name)
	}
	reg := &registration{h: h}
	d.handlers[name] = reg
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.handlers[name] == reg {
			delete(d.handlers, name)
		}
	}, nil
}

// dispatch starts the handler for one request that arrived on a stream. It blocks while
// max_concurrent_requests handlers are running, which holds back reading the stream
// instead of piling up goroutines; ctx (the stream's) ends the wait.
func (d *dispatcher) dispatch(ctx context.Context, arrival cloudconn.Stream, req proto.Message) {
	name := req.ProtoReflect().Descriptor().FullName()
	d.mu.RLock()
	reg := d.handlers[name]
	d.mu.RUnlock()
	if reg == nil {
		if _, seen := d.unsupported.LoadOrStore(name, struct{}{}); !seen {
			d.logger.Warn("No handler for a request from Kestrel Cloud; answering with an error", zap.String("type", string(name)))
		}
		d.respond(arrival, name, errorResponse(req, "not supported by this operator: "+string(name)), "unsupported")
		return
	}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return
	case <-d.ctx.Done():
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() { <-d.sem }()
		resp, err := d.call(reg.h, req)
		switch {
		case err != nil:
			d.logger.Error("Request handler failed", zap.String("type", string(name)), zap.Error(err))
			d.respond(arrival, name, errorResponse(req, err.Error()), "handler_failed")
		case resp == nil:
			d.count(name, "no_response")
		default:
			d.respond(arrival, name, resp, "ok")
		}
	}()
}

// call runs a handler; a panic becomes an error so that a request from the cloud cannot
// crash the collector.
func (d *dispatcher) call(h cloudconn.Handler, req proto.Message) (resp proto.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h(d.ctx, req), nil
}

func (d *dispatcher) respond(arrival cloudconn.Stream, name protoreflect.FullName, resp proto.Message, outcome string) {
	if resp == nil {
		d.count(name, outcome)
		return
	}
	if err := d.reply(d.ctx, arrival, resp); err != nil {
		d.logger.Warn("Could not send the response to Kestrel Cloud",
			zap.String("type", string(resp.ProtoReflect().Descriptor().FullName())), zap.Error(err))
		outcome = "send_failed"
	}
	d.count(name, outcome)
}

func (d *dispatcher) count(name protoreflect.FullName, outcome string) {
	d.tb.KestrelCommandRequests.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("type", string(name)), attribute.String("outcome", outcome)))
}

// wait blocks until all running handlers have returned.
func (d *dispatcher) wait() {
	d.wg.Wait()
}

// errorResponse builds the response the cloud expects for req, carrying msg as the
// error: by convention <Name>Request is answered by <Name>Response with request_id
// echoed and error_message (or global_error_message) set. A pushed network policy is
// nacked with NetworkPoliciesWithErrors, as the protocol prescribes. It returns nil for
// types without a known response.
func errorResponse(req proto.Message, msg string) proto.Message {
	if p, ok := req.(*cloudv1.NetworkPolicyWithError); ok {
		return &cloudv1.NetworkPoliciesWithErrors{Policies: []*cloudv1.NetworkPolicyWithError{{
			NetworkPolicy: p.GetNetworkPolicy(),
			PolicyId:      p.GetPolicyId(),
			ErrorMessage:  msg,
		}}}
	}
	rm := req.ProtoReflect()
	name := rm.Descriptor().FullName()
	base, ok := strings.CutSuffix(string(name.Name()), "Request")
	if !ok {
		return nil
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name.Parent().Append(protoreflect.Name(base + "Response")))
	if err != nil {
		return nil
	}
	resp := mt.New()
	fields := resp.Descriptor().Fields()
	if in, out := stringField(rm.Descriptor().Fields(), "request_id"), stringField(fields, "request_id"); in != nil && out != nil {
		resp.Set(out, rm.Get(in))
	}
	for _, f := range []protoreflect.Name{"error_message", "global_error_message"} {
		if fd := stringField(fields, f); fd != nil {
			resp.Set(fd, protoreflect.ValueOfString(msg))
			break
		}
	}
	return resp.Interface()
}

func stringField(fields protoreflect.FieldDescriptors, name protoreflect.Name) protoreflect.FieldDescriptor {
	fd := fields.ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.Cardinality() == protoreflect.Repeated {
		return nil
	}
	return fd
}

// replyStream picks the stream for a response: the stream the request came in on when
// its envelope carries the response type (e.g. MetricsQueryResponse on StreamControl),
// otherwise StreamData (e.g. NetworkPoliciesWithErrors).
func replyStream(arrival cloudconn.Stream, resp proto.Message) cloudconn.Stream {
	if e := envelope.Request(arrival); e != nil && e.Has(resp.ProtoReflect().Descriptor().FullName()) {
		return arrival
	}
	return cloudconn.StreamData
}
