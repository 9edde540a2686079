package devcloud

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	serverv1 "github.com/kestrelai/otelcol-kestrel/api/server/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

func workload(name string) *cloudv1.StreamDataRequest {
	return &cloudv1.StreamDataRequest{Request: &cloudv1.StreamDataRequest_Workload{Workload: &cloudv1.Workload{Name: name, Namespace: "default"}}}
}

func commit() *cloudv1.StreamDataRequest {
	return &cloudv1.StreamDataRequest{Request: &cloudv1.StreamDataRequest_InventoryCommit{InventoryCommit: &cloudv1.InventoryCommit{HasFlux: true}}}
}

func waitRecords(t *testing.T, s *Server, n int) []Record {
	t.Helper()
	require.NoError(t, s.WaitFor(testCtx(t), func(r []Record) bool { return len(r) >= n }))
	return s.Records()
}

func TestHandshakeWithGeneratedClientCert(t *testing.T) {
	s := startServer(t, Config{})
	c := newClient(t, s)
	data, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	require.NoError(t, data.Send(workload("web")))

	recs := waitRecords(t, s, 1)
	assert.Equal(t, operatorID, recs[0].Operator)
	assert.Equal(t, cloudconn.StreamData, recs[0].Stream)
	assertProtoEqual(t, workload("web"), recs[0].Message)
	assertProtoEqual(t, workload("web").GetWorkload(), recs[0].Payload)

	st := s.Status()
	require.Len(t, st.Operators, 1)
	op := st.Operators[0]
	assert.Equal(t, operatorID, op.ID)
	assert.Equal(t, testTenant, op.Tenant)
	assert.Equal(t, ClientCommonName, op.CertSubject)
	assert.Equal(t, readCert(t, filepath.Join(s.cfg.CertsDir, ClientCertFile)).SerialNumber.Text(16), op.CertSerial)
	assert.True(t, op.Streams[cloudconn.StreamData].Open)
	assert.EqualValues(t, 1, op.Streams[cloudconn.StreamData].Received)
	assert.False(t, op.Streams[cloudconn.StreamData].TokenExpiry.IsZero())
	require.NoError(t, data.CloseSend())
	_, err = data.Recv()
	require.ErrorIs(t, err, io.EOF)
}

func TestHandshakeRejectsForeignCA(t *testing.T) {
	s := startServer(t, Config{})
	foreign := testCerts(t) // same file names, different CA
	conn := dial(t, s, foreign)
	data, err := cloudv1.NewStreamServiceClient(conn).StreamData(authCtx(t, testCtx(t), s.cfg.CertsDir))
	if err == nil {
		_, err = data.Recv()
	}
	require.Error(t, err)
	assert.Equal(t, codes.Unavailable, status.Code(err), err)
	assert.Empty(t, s.Status().Operators)
}

func TestStreamOpenTokenChecks(t *testing.T) {
	s := startServer(t, Config{})
	good, err := os.ReadFile(filepath.Join(s.cfg.CertsDir, TokenFile))
	require.NoError(t, err)
	expired, err := IssueToken(s.cfg.CertsDir, testTenant, -time.Minute)
	require.NoError(t, err)
	forged, err := IssueToken(testCerts(t), testTenant, time.Hour)
	require.NoError(t, err)

	tests := []struct {
		name string
		md   []string
		want string
	}{
		{"expired", []string{authorizationKey, "Bearer " + expired, tenantKey, testTenant}, "token expired"},
		{"bad signature", []string{authorizationKey, "Bearer " + forged, tenantKey, testTenant}, "bad token signature"},
		{"tenant mismatch", []string{authorizationKey, "Bearer " + string(good), tenantKey, "other"}, `autonp-tenantid "other" does not match token tenant "acme"`},
		{"tenant missing", []string{authorizationKey, "Bearer " + string(good)}, "missing autonp-tenantid metadata"},
		{"authorization missing", []string{tenantKey, testTenant}, "missing authorization metadata"},
		{"not bearer", []string{authorizationKey, "Basic abc", tenantKey, testTenant}, "not a Bearer token"},
		{"garbage token", []string{authorizationKey, "Bearer abc", tenantKey, testTenant}, "invalid token"},
	}
	conn := dial(t, s, s.cfg.CertsDir)
	client := cloudv1.NewStreamServiceClient(conn)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(testCtx(t), tt.md...)
			stream, err := client.StreamEvents(ctx)
			require.NoError(t, err)
			_, err = stream.Recv()
			assert.Equal(t, codes.Unauthenticated, status.Code(err), err)
			assert.Contains(t, status.Convert(err).Message(), tt.want)
		})
	}
	assert.Empty(t, s.Status().Operators)
	assert.Empty(t, s.Records())
}

func TestRenewClusterToken(t *testing.T) {
	s := startServer(t, Config{TokenTTL: 2 * time.Hour})
	c := newClient(t, s)
	expired, err := IssueToken(s.cfg.CertsDir, testTenant, -48*time.Hour)
	require.NoError(t, err)

	resp, err := c.token.RenewClusterToken(testCtx(t), &serverv1.RenewClusterTokenRequest{CurrentToken: expired})
	require.NoError(t, err)
	assert.Equal(t, "Bearer", resp.GetTokenType())
	assert.EqualValues(t, 7200, resp.GetExpiresIn())
	claims, err := parseToken(s.tokenKey, resp.GetAccessToken(), false)
	require.NoError(t, err)
	assert.Equal(t, testTenant, claims.tenant)
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), claims.expiry, time.Minute)
	assert.Equal(t, 1, s.Status().Renewals)

	// The renewed token opens streams.
	ctx := metadata.AppendToOutgoingContext(testCtx(t), authorizationKey, "Bearer "+resp.GetAccessToken(), tenantKey, testTenant)
	logs, err := c.stream.StreamLogs(ctx)
	require.NoError(t, err)
	require.NoError(t, logs.Send(&cloudv1.StreamLogsRequest{}))
	waitRecords(t, s, 1)

	forged, err := IssueToken(testCerts(t), testTenant, time.Hour)
	require.NoError(t, err)
	_, err = c.token.RenewClusterToken(testCtx(t), &serverv1.RenewClusterTokenRequest{CurrentToken: forged})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "bad token signature")
	assert.Equal(t, 1, s.Status().Renewals)
}

func TestHeartbeatsOnEveryStream(t *testing.T) {
	s := startServer(t, Config{HeartbeatInterval: 20 * time.Millisecond})
	c := newClient(t, s)
	recvHeartbeats := func(t *testing.T, recv func() (proto.Message, error)) {
		for range 3 {
			env, err := recv()
			require.NoError(t, err)
			hb, ok := envelope.Unwrap(env).(*cloudv1.Heartbeat)
			require.True(t, ok, "got %v", env)
			assert.WithinDuration(t, time.Now(), hb.GetTimestamp().AsTime(), 5*time.Second)
		}
	}
	data, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	recvHeartbeats(t, func() (proto.Message, error) { return data.Recv() })
	control, err := c.stream.StreamControl(c.ctx)
	require.NoError(t, err)
	recvHeartbeats(t, func() (proto.Message, error) { return control.Recv() })
	flows, err := c.stream.StreamFlows(c.ctx)
	require.NoError(t, err)
	recvHeartbeats(t, func() (proto.Message, error) { return flows.Recv() })
	events, err := c.stream.StreamEvents(c.ctx)
	require.NoError(t, err)
	recvHeartbeats(t, func() (proto.Message, error) { return events.Recv() })
	logs, err := c.stream.StreamLogs(c.ctx)
	require.NoError(t, err)
	recvHeartbeats(t, func() (proto.Message, error) { return logs.Recv() })
}

func TestRecordsInMemoryAndOnDisk(t *testing.T) {
	recordDir := filepath.Join(t.TempDir(), "rec")
	s := startServer(t, Config{RecordDir: recordDir})
	c := newClient(t, s)

	data, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	events, err := c.stream.StreamEvents(c.ctx)
	require.NoError(t, err)
	event := &cloudv1.StreamEventsRequest{Request: &cloudv1.StreamEventsRequest_KubernetesEvent{KubernetesEvent: &cloudv1.KubernetesEvent{Reason: "BackOff"}}}
	require.NoError(t, data.Send(workload("a")))
	require.NoError(t, data.Send(workload("b")))
	require.NoError(t, events.Send(event))
	waitRecords(t, s, 3)
	assert.False(t, s.Status().Operators[0].Committed)
	require.NoError(t, data.Send(commit()))
	recs := waitRecords(t, s, 4)

	var onData []proto.Message
	for _, r := range recs {
		if r.Stream == cloudconn.StreamData {
			onData = append(onData, r.Message)
		}
	}
	require.Len(t, onData, 3)
	assertProtoEqual(t, workload("a"), onData[0])
	assertProtoEqual(t, workload("b"), onData[1])
	assertProtoEqual(t, commit(), onData[2])
	op := s.Status().Operators[0]
	assert.True(t, op.Committed)
	assert.EqualValues(t, 3, op.Streams[cloudconn.StreamData].Received)
	assert.EqualValues(t, 1, op.Streams[cloudconn.StreamEvents].Received)

	// A new StreamData starts a new snapshot, so the commit no longer counts.
	data2, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	require.NoError(t, data2.Send(workload("c")))
	waitRecords(t, s, 5)
	assert.False(t, s.Status().Operators[0].Committed)
	// The old stream's late commit does not commit the new snapshot.
	require.NoError(t, data.Send(commit()))
	waitRecords(t, s, 6)
	assert.False(t, s.Status().Operators[0].Committed)

	for _, st := range []interface{ CloseSend() error }{data, data2, events} {
		require.NoError(t, st.CloseSend())
	}
	require.NoError(t, s.WaitStatus(testCtx(t), func(st Status) bool {
		return !st.Operators[0].Streams[cloudconn.StreamData].Open && !st.Operators[0].Streams[cloudconn.StreamEvents].Open
	}))
	s.Stop()

	lines := readLines(t, filepath.Join(recordDir, "data.jsonl"))
	require.Len(t, lines, 5)
	assert.Equal(t, operatorID, lines[0].Operator)
	assert.Equal(t, cloudconn.StreamData, lines[0].Stream)
	assert.WithinDuration(t, time.Now(), lines[0].Time, time.Minute)
	got := &cloudv1.StreamDataRequest{}
	require.NoError(t, protojson.Unmarshal(lines[0].Message, got))
	assertProtoEqual(t, workload("a"), got)

	lines = readLines(t, filepath.Join(recordDir, "events.jsonl"))
	require.Len(t, lines, 1)
	gotEvent := &cloudv1.StreamEventsRequest{}
	require.NoError(t, protojson.Unmarshal(lines[0].Message, gotEvent))
	assertProtoEqual(t, event, gotEvent)
}

func readLines(t *testing.T, path string) []recordLine {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var lines []recordLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l recordLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), sc.Text())
		lines = append(lines, l)
	}
	require.NoError(t, sc.Err())
	return lines
}

func TestOldServerSideStreamsUnimplemented(t *testing.T) {
	s := startServer(t, Config{OldServer: true})
	c := newClient(t, s)
	opens := map[cloudconn.Stream]func() (interface{ RecvMsg(any) error }, error){
		cloudconn.StreamControl: func() (interface{ RecvMsg(any) error }, error) { return c.stream.StreamControl(c.ctx) },
		cloudconn.StreamFlows:   func() (interface{ RecvMsg(any) error }, error) { return c.stream.StreamFlows(c.ctx) },
		cloudconn.StreamEvents:  func() (interface{ RecvMsg(any) error }, error) { return c.stream.StreamEvents(c.ctx) },
		cloudconn.StreamLogs:    func() (interface{ RecvMsg(any) error }, error) { return c.stream.StreamLogs(c.ctx) },
	}
	for kind, open := range opens {
		st, err := open()
		require.NoError(t, err)
		err = st.RecvMsg(envelope.Response(kind).New())
		assert.Equal(t, codes.Unimplemented, status.Code(err), "%s: %v", kind, err)
	}
	data, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	require.NoError(t, data.Send(workload("x")))
	waitRecords(t, s, 1)
}

// answer plays an operator: it answers every KubernetesAPIRequest arriving on recv.
func answerK8s(t *testing.T, recv func() (proto.Message, error), send func(*cloudv1.KubernetesAPIResponse) error) <-chan string {
	arrived := make(chan string, 10)
	go func() {
		for {
			env, err := recv()
			if err != nil {
				close(arrived)
				return
			}
			req, ok := envelope.Unwrap(env).(*cloudv1.KubernetesAPIRequest)
			if !ok {
				continue
			}
			arrived <- req.GetRequestId()
			if err := send(&cloudv1.KubernetesAPIResponse{RequestId: req.GetRequestId(), Results: []*cloudv1.KubernetesAPIResult{{ApiPath: req.GetApiPaths()[0], Success: true, StatusCode: 200, ResponseData: "paths=" + req.GetApiPaths()[0]}}}); err != nil {
				t.Errorf("send response: %v", err)
			}
		}
	}()
	return arrived
}

func TestSendRequestOnControl(t *testing.T) {
	s := startServer(t, Config{})
	c := newClient(t, s)
	data, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	control, err := c.stream.StreamControl(c.ctx)
	require.NoError(t, err)
	arrived := answerK8s(t, func() (proto.Message, error) { return control.Recv() }, func(r *cloudv1.KubernetesAPIResponse) error {
		return control.Send(&cloudv1.StreamControlRequest{Request: &cloudv1.StreamControlRequest_KubernetesApiResponse{KubernetesApiResponse: r}})
	})
	require.NoError(t, s.WaitStatus(testCtx(t), func(st Status) bool {
		return len(st.Operators) == 1 && st.Operators[0].Streams[cloudconn.StreamControl].Open
	}))

	req := &cloudv1.KubernetesAPIRequest{ApiPaths: []string{"api/v1/pods"}}
	resp, err := s.SendRequest(testCtx(t), "", req)
	require.NoError(t, err)
	k8s, ok := resp.(*cloudv1.KubernetesAPIResponse)
	require.True(t, ok)
	assert.Equal(t, "paths=api/v1/pods", k8s.GetResults()[0].GetResponseData())
	assert.NotEmpty(t, k8s.GetRequestId())
	assert.Equal(t, k8s.GetRequestId(), <-arrived)
	assert.Empty(t, req.GetRequestId(), "the caller's message is not modified")

	// An explicit request_id and operator are used as given.
	resp, err = s.SendRequest(testCtx(t), operatorID, &cloudv1.KubernetesAPIRequest{RequestId: "r-1", ApiPaths: []string{"version"}})
	require.NoError(t, err)
	assert.Equal(t, "r-1", resp.(*cloudv1.KubernetesAPIResponse).GetRequestId())

	_, err = s.SendRequest(testCtx(t), "nobody/none", req)
	require.ErrorIs(t, err, ErrUnknownOperator)
	_, err = s.SendRequest(testCtx(t), "", &cloudv1.Workload{})
	require.ErrorContains(t, err, "no request_id")
	require.NoError(t, data.CloseSend())
	require.NoError(t, control.CloseSend())
}

func TestSendRequestOnDataWithoutControl(t *testing.T) {
	s := startServer(t, Config{})
	c := newClient(t, s)
	data, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	answerK8s(t, func() (proto.Message, error) { return data.Recv() }, func(r *cloudv1.KubernetesAPIResponse) error {
		return data.Send(&cloudv1.StreamDataRequest{Request: &cloudv1.StreamDataRequest_KubernetesApiResponse{KubernetesApiResponse: r}})
	})
	require.NoError(t, s.WaitStatus(testCtx(t), func(st Status) bool { return len(st.Operators) == 1 }))

	resp, err := s.SendRequest(testCtx(t), operatorID, &cloudv1.KubernetesAPIRequest{ApiPaths: []string{"healthz"}})
	require.NoError(t, err)
	assert.Equal(t, "paths=healthz", resp.(*cloudv1.KubernetesAPIResponse).GetResults()[0].GetResponseData())
	// The response is recorded like any other message.
	recs := s.Records()
	require.Len(t, recs, 1)
	assert.IsType(t, &cloudv1.KubernetesAPIResponse{}, envelope.Unwrap(recs[0].Message))
	assert.Same(t, envelope.Unwrap(recs[0].Message), recs[0].Payload)

	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	_, err = s.SendRequest(ctx, "", &cloudv1.MetricsQueryRequest{}) // nobody answers it
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, data.CloseSend())
}

func TestMaxMessageSize(t *testing.T) {
	s := startServer(t, Config{MaxMessageSize: 1024})
	c := newClient(t, s)
	data, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	require.NoError(t, s.WaitStatus(testCtx(t), func(st Status) bool { return len(st.Operators) == 1 }))
	_, err = s.SendRequest(testCtx(t), "", &cloudv1.ShellCommandRequest{Commands: []string{string(make([]byte, 2048))}})
	require.ErrorContains(t, err, "exceeds the 1024 byte limit")

	// The receive limit ends the stream of an operator that sends too much.
	require.NoError(t, data.Send(workload(string(make([]byte, 2048)))))
	_, err = data.Recv()
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), err)
	assert.Empty(t, s.Records())
}

func TestInjectRawBytes(t *testing.T) {
	s := startServer(t, Config{})
	// The client accepts at most 1 KiB; the server must still be able to send more.
	c := newClient(t, s, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1024)))
	data, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	control, err := c.stream.StreamControl(c.ctx)
	require.NoError(t, err)
	// Opening a stream on the client does not wait for the server's handler.
	require.NoError(t, s.WaitStatus(testCtx(t), func(st Status) bool {
		return len(st.Operators) == 1 && st.Operators[0].Streams[cloudconn.StreamData].Open &&
			st.Operators[0].Streams[cloudconn.StreamControl].Open
	}))

	want := &cloudv1.StreamDataResponse{Response: &cloudv1.StreamDataResponse_Heartbeat{Heartbeat: &cloudv1.Heartbeat{Timestamp: timestamppb.New(time.Unix(42, 0))}}}
	raw, err := proto.Marshal(want)
	require.NoError(t, err)
	require.NoError(t, s.Inject(operatorID, cloudconn.StreamData, raw))
	got, err := data.Recv()
	require.NoError(t, err)
	assertProtoEqual(t, want, got)

	// Garbage fails the client's decode.
	require.NoError(t, s.Inject("", cloudconn.StreamData, []byte{0xff, 0xff, 0xff}))
	_, err = data.Recv()
	assert.Equal(t, codes.Internal, status.Code(err), err)

	require.NoError(t, s.Inject(operatorID, cloudconn.StreamControl, make([]byte, 4096)))
	_, err = control.Recv()
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), err)

	require.ErrorIs(t, s.Inject(operatorID, cloudconn.StreamLogs, raw), ErrUnknownOperator)
}

func TestBreakStream(t *testing.T) {
	s := startServer(t, Config{})
	c := newClient(t, s)
	flows, err := c.stream.StreamFlows(c.ctx)
	require.NoError(t, err)
	require.NoError(t, s.WaitStatus(testCtx(t), func(st Status) bool { return len(st.Operators) == 1 }))
	s.BreakStream(operatorID, cloudconn.StreamFlows)
	_, err = flows.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err), err)
	require.NoError(t, s.WaitStatus(testCtx(t), func(st Status) bool { return !st.Operators[0].Streams[cloudconn.StreamFlows].Open }))
	s.BreakStream(operatorID, cloudconn.StreamFlows) // no open stream: nothing to do
}

func TestGracefulStopLetsClientDrain(t *testing.T) {
	s := startServer(t, Config{})
	c := newClient(t, s)
	data, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	require.NoError(t, data.Send(workload("first")))
	waitRecords(t, s, 1)

	stopped := make(chan struct{})
	go func() {
		s.Stop()
		close(stopped)
	}()
	// Stop has begun once the listener is closed.
	require.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	}, 5*time.Second, 5*time.Millisecond)

	const more = 200
	for i := range more {
		require.NoError(t, data.Send(workload(fmt.Sprint("late-", i))))
	}
	require.NoError(t, data.CloseSend())
	for {
		if _, err = data.Recv(); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, io.EOF)
	<-stopped
	assert.Len(t, s.Records(), 1+more)
}

func TestStopIsBoundedAndKillIsImmediate(t *testing.T) {
	s := startServer(t, Config{DrainTimeout: 100 * time.Millisecond})
	c := newClient(t, s)
	data, err := c.stream.StreamData(c.ctx)
	require.NoError(t, err)
	require.NoError(t, s.WaitStatus(testCtx(t), func(st Status) bool { return len(st.Operators) == 1 }))
	start := time.Now()
	s.Stop() // the client never closes its side
	assert.Less(t, time.Since(start), 5*time.Second)
	_, err = data.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err), err)

	s2 := startServer(t, Config{CertsDir: s.cfg.CertsDir})
	c2 := newClient(t, s2)
	data2, err := c2.stream.StreamData(c2.ctx)
	require.NoError(t, err)
	require.NoError(t, s2.WaitStatus(testCtx(t), func(st Status) bool { return len(st.Operators) == 1 }))
	s2.Kill()
	_, err = data2.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err), err)
}

func TestNewErrors(t *testing.T) {
	_, err := New(Config{}, nil)
	require.ErrorContains(t, err, "CertsDir is required")
	_, err = New(Config{CertsDir: t.TempDir()}, nil)
	require.ErrorContains(t, err, "server certificate")
	dir := testCerts(t)
	_, err = New(Config{CertsDir: dir, AdminListen: "0.0.0.0:0"}, nil)
	require.ErrorContains(t, err, "not a loopback address")
	_, err = New(Config{CertsDir: dir, AdminListen: ":8080"}, nil)
	require.ErrorContains(t, err, "not a loopback address")
	s, err := New(Config{CertsDir: dir, AdminListen: "localhost:0"}, nil)
	require.NoError(t, err)
	s.Kill()
	require.Error(t, s.Start(), "a killed server cannot start")
}

func TestWaitForHonoursContext(t *testing.T) {
	s := startServer(t, Config{})
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Millisecond)
	defer cancel()
	err := s.WaitFor(ctx, func(r []Record) bool { return len(r) > 0 })
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func assertProtoEqual(t *testing.T, want, got proto.Message) {
	t.Helper()
	assert.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)
}
