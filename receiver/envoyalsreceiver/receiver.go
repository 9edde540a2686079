package envoyalsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver/internal/metadata"
)

type alsReceiver struct {
	alsv3.UnimplementedAccessLogServiceServer

	cfg       *Config
	set       receiver.Settings
	telemetry *metadata.TelemetryBuilder
	// exact resolves pods through the Kubernetes API when the kubernetes section is set.
	exact      syncedResolver
	closeExact func()
	headers    *headerFilter
	window     *flowagg.Window[entryKey, entryAgg]

	typeHTTP, typeTCP, overload metric.AddOption

	server *grpc.Server
	addr   net.Addr
	wg     sync.WaitGroup
}

// newReceiver creates the receiver.
func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*alsReceiver, error) {
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
	attr := func(k, v string) metric.AddOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String(k, v)))
	}
	r := &alsReceiver{
		cfg:       cfg,
		set:       set,
		telemetry: tb,
		headers:   newHeaderFilter(cfg.Headers),
		typeHTTP:  attr("type", "http"),
		typeTCP:   attr("type", "tcp"),
		overload:  attr("reason", "overload"),
	}
	sink := flowagg.Sink{Next: next, Obs: obs, Logger: set.Logger, Scope: metadata.ScopeName, Format: "envoy_als"}
	r.window = flowagg.New(cfg.Aggregation, flowagg.Emitter(sink, toRecord), func() {
		tb.EnvoyAccessLogReceiverEntriesDropped.Add(context.Background(), 1, r.overload)
	})
	return r, nil
}

// countingCodec is gRPC's proto codec that counts messages it cannot decode: gRPC ends such
// a stream with an error before the receiver sees anything, and that must not go unnoticed.
type countingCodec struct {
	encoding.CodecV2
	invalid func()
}

func (c countingCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err != nil {
		c.invalid()
	}
	return err
}

func (r *alsReceiver) Start(ctx context.Context, host component.Host) error {
	if err := r.startExact(host); err != nil {
		return err
	}
	codec := countingCodec{
		CodecV2: encoding.GetCodecV2(grpcproto.Name),
		invalid: func() { r.telemetry.EnvoyAccessLogReceiverMessagesInvalid.Add(context.Background(), 1) },
	}
	srv, err := r.cfg.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings,
		configgrpc.WithGrpcServerOption(grpc.ForceServerCodecV2(codec)),
		// So that Stop returns only when no handler can aggregate anything any more.
		configgrpc.WithGrpcServerOption(grpc.WaitForHandlers(true)))
	if err != nil {
		return err
	}
	lis, err := r.cfg.NetAddr.Listen(ctx)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", r.cfg.NetAddr.Endpoint, err)
	}
	alsv3.RegisterAccessLogServiceServer(srv, r)
	r.server, r.addr = srv, lis.Addr()
	r.window.Start()
	r.set.Logger.Info("Serving Envoy access logs", zap.String("endpoint", lis.Addr().String()))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, net.ErrClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

func (r *alsReceiver) Shutdown(ctx context.Context) error {
	if r.server != nil {
		// Envoy's streams never end on their own; Stop closes them (GracefulStop would wait
		// forever) and waits for the handlers, after which nothing more is aggregated.
		r.server.Stop()
		r.wg.Wait()
		r.window.Shutdown(ctx)
	}
	if r.closeExact != nil {
		r.closeExact()
	}
	r.telemetry.Shutdown()
	return nil
}

// startExact joins the process's shared informers when the kubernetes section is set.
func (r *alsReceiver) startExact(host component.Host) error {
	api := r.cfg.Kubernetes.Get()
	if api == nil {
		return nil
	}
	informed, err := podowner.Open(api, r.set.Logger, host)
	if err != nil {
		return fmt.Errorf("envoy_access_log: kubernetes: %w", err)
	}
	r.exact, r.closeExact = informed, informed.Close
	return nil
}

// syncedResolver is an exact resolver that knows less until its cache has synced.
type syncedResolver interface {
	podowner.Resolver
	HasSynced() bool
}

// resolver returns what identifies a stream's workload now, and whether a later answer
// could be better (the Kubernetes cache has not synced yet). Pod names resolve workloads
// where the Kubernetes API (if configured) does not.
func (r *alsReceiver) resolver() (podowner.Resolver, bool) {
	if r.exact == nil {
		return podowner.Names{}, false
	}
	return podowner.Chain{r.exact, podowner.Names{}}, !r.exact.HasSynced()
}

// StreamAccessLogs serves one Envoy stream. Envoy expects no response and never waits for
// one, so the stream is read as fast as it arrives: entries are only aggregated here (under
// overload they are dropped and counted), everything else happens when the window is emitted.
func (r *alsReceiver) StreamAccessLogs(stream alsv3.AccessLogService_StreamAccessLogsServer) error {
	ctx := stream.Context()
	r.telemetry.EnvoyAccessLogReceiverStreams.Add(ctx, 1)
	defer r.telemetry.EnvoyAccessLogReceiverStreams.Add(ctx, -1)
	var st streamState
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&alsv3.StreamAccessLogsResponse{})
		}
		if err != nil {
			return err
		}
		r.receive(ctx, &st, msg)
	}
}

// streamState is what the receiver knows of one Envoy stream.
type streamState struct {
	nd      *node
	first   *alsv3.StreamAccessLogsMessage_Identifier
	interim bool // nd was identified before the Kubernetes cache synced
}

// receive aggregates the entries of one message of a stream.
func (r *alsReceiver) receive(ctx context.Context, st *streamState, msg *alsv3.StreamAccessLogsMessage) {
	// Envoy identifies itself on the first message of a stream only, and a stream lasts as
	// long as the sidecar, so one identified early is identified again once that can be done
	// exactly.
	if id := msg.GetIdentifier(); id != nil || st.interim {
		if id != nil {
			st.first = id
		}
		var res podowner.Resolver
		if res, st.interim = r.resolver(); !st.interim || id != nil {
			st.nd = identify(st.first.GetNode(), st.first.GetLogName(), res)
		}
	}
	switch entries := msg.GetLogEntries().(type) {
	case *alsv3.StreamAccessLogsMessage_HttpLogs:
		logs := entries.HttpLogs.GetLogEntry()
		r.telemetry.EnvoyAccessLogReceiverEntries.Add(ctx, int64(len(logs)), r.typeHTTP)
		for _, e := range logs {
			r.addHTTP(st.nd, e)
		}
	case *alsv3.StreamAccessLogsMessage_TcpLogs:
		logs := entries.TcpLogs.GetLogEntry()
		r.telemetry.EnvoyAccessLogReceiverEntries.Add(ctx, int64(len(logs)), r.typeTCP)
		for _, e := range logs {
			r.addTCP(st.nd, e)
		}
	}
}

func (r *alsReceiver) addHTTP(nd *node, e *accesslogv3.HTTPAccessLogEntry) {
	if e == nil {
		return
	}
	req := e.GetRequest()
	ec := decodeCommon(nd, e.GetCommonProperties(), req.GetAuthority())
	k := ec.key
	k.http = true
	k.method = req.GetRequestMethod()
	k.template = pathTemplate(req.GetPath())
	k.status = e.GetResponse().GetResponseCode().GetValue()
	r.window.Update(k, func(a *entryAgg, fresh bool) {
		a.addCommon(&ec, fresh)
		if fresh {
			a.http = e
			a.headers = r.headers.apply(req.GetRequestHeaders(), e.GetResponse().GetResponseHeaders(), req.GetReferer())
			// The aggregate keeps the first entry; drop what it no longer needs.
			if req != nil {
				req.RequestHeaders = nil
			}
			if resp := e.GetResponse(); resp != nil {
				resp.ResponseHeaders, resp.ResponseTrailers = nil, nil
			}
		}
	})
}

func (r *alsReceiver) addTCP(nd *node, e *accesslogv3.TCPAccessLogEntry) {
	if e == nil {
		return
	}
	ec := decodeCommon(nd, e.GetCommonProperties(), "")
	r.window.Update(ec.key, func(a *entryAgg, fresh bool) {
		a.addCommon(&ec, fresh)
		if fresh {
			a.tcp = e
		}
		p := e.GetConnectionProperties()
		a.connSent += p.GetSentBytes()
		a.connRecv += p.GetReceivedBytes()
	})
}
