package http2merge_test

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/http2merge"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/relaytest"
)

// A real Relay's stream of small messages, read through joined frames over plaintext and
// TLS: every message arrives intact and in order, in far fewer DATA frames than messages.
func TestRelayStreamThroughJoinedFrames(t *testing.T) {
	const n = 3000
	events := make([]*observerpb.GetFlowsResponse, n)
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for i := range events {
		events[i] = &observerpb.GetFlowsResponse{Time: timestamppb.New(start.Add(time.Duration(i) * time.Millisecond)),
			ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: &flowpb.Flow{
				Uuid:    string(rune('a'+i%26)) + time.Duration(i).String(),
				Verdict: flowpb.Verdict_FORWARDED,
				Source:  &flowpb.Endpoint{Namespace: "shop", PodName: "frontend-7d9f", Labels: []string{"k8s:app=frontend"}},
				L4:      &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: uint32(30000 + i), DestinationPort: 8080}}},
			}}}
	}

	dir := filepath.Join(t.TempDir(), "certs")
	require.NoError(t, devcloud.GenerateCerts(dir, devcloud.CertOptions{Hosts: []string{"relay.test"}}))
	serverTLS, err := credentials.NewServerTLSFromFile(filepath.Join(dir, devcloud.ServerCertFile), filepath.Join(dir, devcloud.ServerKeyFile))
	require.NoError(t, err)
	clientTLS, err := credentials.NewClientTLSFromFile(filepath.Join(dir, devcloud.CACertFile), "relay.test")
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		server grpc.ServerOption
		client credentials.TransportCredentials
	}{
		"plaintext": {grpc.Creds(insecure.NewCredentials()), insecure.NewCredentials()},
		"tls":       {grpc.Creds(serverTLS), clientTLS},
	} {
		t.Run(name, func(t *testing.T) {
			_, addr := relaytest.Serve(t, relaytest.New(events), "127.0.0.1:0", tc.server)
			rec := &recording{}
			conn, err := grpc.NewClient(addr,
				grpc.WithTransportCredentials(rec.wrap(http2merge.Credentials(tc.client))),
				// Reads spaced out as the hubble receiver's are, so that frames arrive together.
				grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
					return &slowReads{Conn: c}, err
				}))
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stream, err := observerpb.NewObserverClient(conn).GetFlows(ctx, &observerpb.GetFlowsRequest{Follow: true})
			require.NoError(t, err)
			for i := range n {
				got, err := stream.Recv()
				require.NoError(t, err)
				require.True(t, proto.Equal(events[i], got), "message %d", i)
			}
			cancel()

			frames := rec.dataFrames()
			t.Logf("%d messages in %d DATA frames", n, frames)
			assert.Less(t, frames, n/4)
		})
	}
}

// slowReads waits 5 ms before each read of the connection.
type slowReads struct{ net.Conn }

func (s *slowReads) Read(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	return s.Conn.Read(p)
}

// recording keeps what gRPC's transport read from the connection that the wrapped
// credentials handed it.
type recording struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recording) wrap(creds credentials.TransportCredentials) credentials.TransportCredentials {
	return recordingCredentials{creds, r}
}

func (r *recording) dataFrames() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	fr := http2.NewFramer(nil, bytes.NewReader(r.buf.Bytes()))
	frames := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if f.Header().Type == http2.FrameData {
			frames++
		}
	}
	return frames
}

type recordingCredentials struct {
	credentials.TransportCredentials
	rec *recording
}

func (r recordingCredentials) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := r.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		return nil, nil, err
	}
	return &recordedConn{Conn: conn, rec: r.rec}, info, nil
}

type recordedConn struct {
	net.Conn
	rec *recording
}

func (c *recordedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rec.mu.Lock()
	c.rec.buf.Write(p[:n])
	c.rec.mu.Unlock()
	return n, err
}
