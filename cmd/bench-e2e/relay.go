package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// flowGen makes GetFlowsResponse messages as Hubble Relay sends them for the hubble
// receiver's field mask: flows between keys distinct workload pairs (each pair is one
// aggregate of the receiver), each with its own UUID and event time and, unless fixedPorts,
// a random ephemeral source port.
type flowGen struct {
	templates  [][]byte // per key: the Flow fields that do not change between its flows
	nodes      [][]byte // per key: the node_name field of the response
	fixedPorts bool
	rng        *rand.Rand
	seq        uint64
}

// Field numbers written by next (cilium/api/v1/flow/flow.proto, observer/observer.proto).
const (
	respFlowField     = 1
	respNodeNameField = 1000
	respTimeField     = 1001
	flowTimeField     = 1
	flowL4Field       = 6
	flowUUIDField     = 34
	layer4TCPField    = 1
)

// srcWorkloads is how many client workloads the keys are spread over; key k goes from
// client k%srcWorkloads to server k/srcWorkloads.
const srcWorkloads = 100

func newFlowGen(keys int, fixedPorts bool, seed uint64) (*flowGen, error) {
	g := &flowGen{fixedPorts: fixedPorts, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} //nolint:gosec // synthetic load, not security
	for k := range keys {
		b, err := proto.Marshal(flowTemplate(k))
		if err != nil {
			return nil, err
		}
		g.templates = append(g.templates, b)
		g.nodes = append(g.nodes, protowire.AppendString(protowire.AppendTag(nil, respNodeNameField, protowire.BytesType), "worker-"+strconv.Itoa(k%3)))
	}
	return g, nil
}

func endpoint(ns, workload string, identity uint32, pod string) *flowpb.Endpoint {
	return &flowpb.Endpoint{
		ID:        identity%1000 + 100,
		Identity:  identity,
		Namespace: ns,
		Labels: []string{
			"k8s:app=" + workload,
			"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=" + ns,
			"k8s:io.cilium.k8s.policy.cluster=default",
			"k8s:io.cilium.k8s.policy.serviceaccount=" + workload,
			"k8s:io.kubernetes.pod.namespace=" + ns,
		},
		PodName:     pod,
		ClusterName: "default",
		Workloads:   []*flowpb.Workload{{Name: workload, Kind: "Deployment"}},
	}
}

// flowTemplate is the constant part of key k's flows: an egress TCP flow from a pod of
// client-<k%100> to a pod of server-<k/100> on port 8080; every 20th key is dropped by
// policy, the others are allowed by one.
func flowTemplate(k int) *flowpb.Flow {
	src, dst := k%srcWorkloads, k/srcWorkloads
	srcNS, dstNS := "ns-"+strconv.Itoa(src%10), "ns-"+strconv.Itoa(dst%10)
	srcName, dstName := "client-"+strconv.Itoa(src), "server-"+strconv.Itoa(dst)
	f := &flowpb.Flow{
		Verdict: flowpb.Verdict_FORWARDED,
		IP: &flowpb.IP{
			Source:      fmt.Sprintf("10.1.%d.%d", src/250, src%250+1),
			Destination: fmt.Sprintf("10.2.%d.%d", dst/250, dst%250+1),
			IpVersion:   flowpb.IPVersion_IPv4,
		},
		Source:           endpoint(srcNS, srcName, uint32(10000+src), srcName+"-7d9f8b6c5-x2x4k"),
		Destination:      endpoint(dstNS, dstName, uint32(20000+dst), dstName+"-5c4b7f9d8-q8wz2"),
		TrafficDirection: flowpb.TrafficDirection_EGRESS,
		IsReply:          wrapperspb.Bool(false),
	}
	if k%20 == 0 {
		f.Verdict, f.DropReasonDesc = flowpb.Verdict_DROPPED, flowpb.DropReason_POLICY_DENIED
	} else {
		f.EgressAllowedBy = []*flowpb.Policy{{Name: "allow-" + dstName, Namespace: srcNS, Kind: "CiliumNetworkPolicy", Revision: 7}}
	}
	return f
}

// next appends the GetFlowsResponse of the next flow (of key seq % keys) at t to b.
func (g *flowGen) next(b []byte, t time.Time) []byte {
	k := int(g.seq % uint64(len(g.templates)))
	g.seq++
	port := uint64(32768 + g.rng.IntN(28232)) // Linux's default ephemeral range
	if g.fixedPorts {
		port = uint64(32768 + k%28232)
	}
	var ts [24]byte
	tsb := appendTimestamp(ts[:0], t)
	var tcp [16]byte
	tcpb := protowire.AppendTag(tcp[:0], 1, protowire.VarintType) // source_port
	tcpb = protowire.AppendVarint(tcpb, port)
	tcpb = protowire.AppendTag(tcpb, 2, protowire.VarintType) // destination_port
	tcpb = protowire.AppendVarint(tcpb, 8080)
	var uuid [36]byte
	uuidb := appendUUID(uuid[:0], g.seq)

	flowLen := len(g.templates[k]) +
		protowire.SizeTag(flowTimeField) + protowire.SizeBytes(len(tsb)) +
		protowire.SizeTag(flowUUIDField) + protowire.SizeBytes(len(uuidb)) +
		protowire.SizeTag(flowL4Field) + protowire.SizeBytes(protowire.SizeTag(layer4TCPField)+protowire.SizeBytes(len(tcpb)))
	b = protowire.AppendTag(b, respFlowField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(flowLen))
	b = append(b, g.templates[k]...)
	b = protowire.AppendTag(b, flowTimeField, protowire.BytesType)
	b = protowire.AppendBytes(b, tsb)
	b = protowire.AppendTag(b, flowUUIDField, protowire.BytesType)
	b = protowire.AppendBytes(b, uuidb)
	b = protowire.AppendTag(b, flowL4Field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(protowire.SizeTag(layer4TCPField)+protowire.SizeBytes(len(tcpb))))
	b = protowire.AppendTag(b, layer4TCPField, protowire.BytesType)
	b = protowire.AppendBytes(b, tcpb)
	b = append(b, g.nodes[k]...)
	b = protowire.AppendTag(b, respTimeField, protowire.BytesType)
	return protowire.AppendBytes(b, tsb)
}

func appendTimestamp(b []byte, t time.Time) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Unix()))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(t.Nanosecond()))
}

// appendUUID appends a version-4-shaped UUID that is unique per seq.
func appendUUID(b []byte, seq uint64) []byte {
	const hex = "0123456789abcdef"
	b = append(b, "b3e1c0de-0000-4000-8000-"...)
	for i := 11; i >= 0; i-- {
		b = append(b, hex[(seq>>(4*uint(i)))&0xf])
	}
	return b
}

// rawFrame is a message the relay has already encoded.
type rawFrame []byte

// relayCodec writes rawFrames as they are and decodes requests with gRPC's proto codec.
type relayCodec struct{ encoding.CodecV2 }

func (c relayCodec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(rawFrame); ok {
		// gRPC writes the message after SendMsg returns, so the generator's buffer, which it
		// reuses, is copied into one of gRPC's pooled buffers.
		return mem.BufferSlice{mem.Copy(f, mem.DefaultBufferPool())}, nil
	}
	return c.CodecV2.Marshal(v)
}

func (relayCodec) Name() string { return grpcproto.Name }

// relay is a Hubble Relay serving Cilium's observer API: each GetFlows stream in follow
// mode gets the generated flows at the configured rate while a load runs, and nothing
// otherwise, like a Relay of a quiet cluster.
type relay struct {
	observerpb.UnimplementedObserverServer

	gen  *flowGen
	rate int // flows per second; 0 = as fast as the stream takes them

	srv       *grpc.Server
	addr      string       // the collector's endpoint
	socketDir string       // the unix socket's directory, removed on close
	streams   atomic.Int64 // GetFlows calls
	sent      atomic.Int64

	mu     sync.Mutex
	load   context.Context // set while a load runs
	loaded chan struct{}   // closed when load is set
	opened chan struct{}   // closed when the first stream opens
}

// startRelay serves flows on a TCP port, as Hubble Relay does, or with onNode on a unix
// socket, as the Hubble server on every node does for the node agent.
func startRelay(gen *flowGen, rate int, onNode bool) (*relay, error) {
	lis, addr, socketDir, err := listenRelay(onNode)
	if err != nil {
		return nil, err
	}
	r := &relay{gen: gen, rate: rate, addr: addr, socketDir: socketDir, loaded: make(chan struct{}), opened: make(chan struct{})}
	// A Relay runs grpc-go's default server settings, keepalive enforcement included.
	r.srv = grpc.NewServer(grpc.ForceServerCodecV2(relayCodec{encoding.GetCodecV2(grpcproto.Name)}))
	observerpb.RegisterObserverServer(r.srv, r)
	go func() { _ = r.srv.Serve(lis) }()
	return r, nil
}

// listenRelay listens on loopback TCP or, onNode, on a unix socket in a new temporary
// directory (a socket's path must stay under about 100 bytes); addr is the collector's
// endpoint for it.
func listenRelay(onNode bool) (lis net.Listener, addr, socketDir string, err error) {
	if !onNode {
		lis, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", "", err
		}
		return lis, lis.Addr().String(), "", nil
	}
	dir, err := os.MkdirTemp("", "bench-hubble-")
	if err != nil {
		return nil, "", "", err
	}
	socket := filepath.Join(dir, "hubble.sock")
	if lis, err = net.Listen("unix", socket); err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", "", err
	}
	return lis, "unix://" + socket, dir, nil
}

func (r *relay) close() {
	r.srv.Stop()
	if r.socketDir != "" {
		_ = os.RemoveAll(r.socketDir)
	}
}

// waitStream returns once the collector has opened a GetFlows stream.
func (r *relay) waitStream(ctx context.Context) error {
	select {
	case <-r.opened:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no GetFlows stream from the collector: %w", ctx.Err())
	}
}

// run streams flows on the open stream until ctx ends and returns how many were sent.
func (r *relay) run(ctx context.Context) int64 {
	r.mu.Lock()
	r.load = ctx
	close(r.loaded)
	r.mu.Unlock()
	<-ctx.Done()
	// The stream's sender returns within one batch of the end.
	time.Sleep(50 * time.Millisecond)
	return r.sent.Load()
}

func (r *relay) GetFlows(req *observerpb.GetFlowsRequest, st grpc.ServerStreamingServer[observerpb.GetFlowsResponse]) error {
	if !req.GetFollow() {
		return fmt.Errorf("this relay serves follow mode only")
	}
	if r.streams.Add(1) == 1 {
		close(r.opened)
	}
	select {
	case <-st.Context().Done():
		return nil
	case <-r.loaded:
	}
	r.mu.Lock()
	load := r.load
	r.mu.Unlock()
	err := r.stream(load, st)
	if err != nil {
		return err
	}
	<-st.Context().Done() // follow mode: the stream stays open, quiet
	return nil
}

// batchInterval is how often a paced stream sends the flows that are due.
const batchInterval = time.Millisecond

func (r *relay) stream(load context.Context, st grpc.ServerStream) error {
	buf := make([]byte, 0, 1024)
	start := time.Now()
	t := time.NewTicker(batchInterval)
	defer t.Stop()
	var sent int64
	for load.Err() == nil {
		due := int64(1 << 62)
		if r.rate > 0 {
			due = int64(time.Since(start).Seconds() * float64(r.rate))
		}
		for n := 0; sent < due && n < 10_000 && load.Err() == nil; n++ {
			buf = r.gen.next(buf[:0], time.Now())
			if err := st.SendMsg(rawFrame(buf)); err != nil {
				return err
			}
			sent++
			r.sent.Add(1)
		}
		if r.rate > 0 {
			select {
			case <-load.Done():
			case <-t.C:
			}
		}
	}
	return nil
}
