package kestrelcommand

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand/internal/metadatatest"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

func TestConnectSequence(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := newHarness(t, testConfig(t, certs, cloud.Addr()))

	var states []cloudconn.State
	var statesMu sync.Mutex
	unsubscribe := h.ext.Connection().Subscribe(func(s cloudconn.State) {
		statesMu.Lock()
		defer statesMu.Unlock()
		states = append(states, s)
	})
	defer unsubscribe()
	var openDuringSnapshot []cloudconn.Stream
	h.ext.RegisterSnapshot(func(ctx context.Context, send func(proto.Message) error) (*cloudv1.InventoryCommit, error) {
		for _, ns := range []string{"default", "kube-system"} {
			if err := send(&cloudv1.Namespace{Name: ns}); err != nil {
				return nil, err
			}
		}
		// While the snapshot replays, only StreamData may be open.
		if err := cloud.WaitFor(ctx, func(r []devcloud.Record) bool { return len(r) == 2 }); err != nil {
			return nil, err
		}
		for k, s := range cloud.Status().Operators[0].Streams {
			if s.Open {
				openDuringSnapshot = append(openDuringSnapshot, k)
			}
		}
		return &cloudv1.InventoryCommit{HasFlux: true}, nil
	})
	h.ext.RegisterSnapshot(func(_ context.Context, send func(proto.Message) error) (*cloudv1.InventoryCommit, error) {
		return &cloudv1.InventoryCommit{HasDatadog: true}, send(&cloudv1.Node{Name: "node-1"})
	})
	h.start(t)
	h.waitState(t, cloudconn.Ready)
	h.host.WaitStatus(t, componentstatus.StatusOK)
	waitSideStreamsUsable(t, h, cloud)

	// The snapshot precedes the commit on StreamData. The connection is Ready once the commit is
	// sent, which can be before the cloud has recorded it.
	require.NoError(t, cloud.WaitFor(testCtx(t), func(r []devcloud.Record) bool {
		return len(cloudtest.PayloadsOn(r, cloudconn.StreamData)) >= 4
	}))
	recs := cloud.Records()
	data := cloudtest.PayloadsOn(recs, cloudconn.StreamData)
	require.Len(t, data, 4)
	assert.Empty(t, cmpMessages([]proto.Message{
		&cloudv1.Namespace{Name: "default"},
		&cloudv1.Namespace{Name: "kube-system"},
		&cloudv1.Node{Name: "node-1"},
		&cloudv1.InventoryCommit{HasFlux: true, HasDatadog: true},
	}, data))
	assert.Equal(t, []cloudconn.Stream{cloudconn.StreamData}, openDuringSnapshot)
	st := cloud.Status()
	require.Len(t, st.Operators, 1)
	assert.Equal(t, operatorID, st.Operators[0].ID)
	assert.True(t, st.Operators[0].Committed)

	// Payloads go on their preferred stream.
	ctx := testCtx(t)
	require.NoError(t, h.ext.Send(ctx, &cloudv1.Flow{SrcIp: "10.0.0.1"}))
	require.NoError(t, h.ext.Send(ctx, &cloudv1.L7AccessLog{Protocol: "HTTP"}))
	require.NoError(t, h.ext.Send(ctx, event("ev-1")))
	require.NoError(t, h.ext.Send(ctx, &cloudv1.PodLogs{PodName: "p"}))
	require.NoError(t, h.ext.Send(ctx, &cloudv1.Pod{Name: "p"}))
	require.NoError(t, cloud.WaitFor(ctx, func(r []devcloud.Record) bool { return len(r) == len(recs)+5 }))
	recs = cloud.Records()
	assert.Empty(t, cmpMessages([]proto.Message{&cloudv1.Flow{SrcIp: "10.0.0.1"}, &cloudv1.L7AccessLog{Protocol: "HTTP"}}, cloudtest.PayloadsOn(recs, cloudconn.StreamFlows)))
	assert.Empty(t, cmpMessages([]proto.Message{event("ev-1")}, cloudtest.PayloadsOn(recs, cloudconn.StreamEvents)))
	assert.Empty(t, cmpMessages([]proto.Message{&cloudv1.PodLogs{PodName: "p"}}, cloudtest.PayloadsOn(recs, cloudconn.StreamLogs)))
	assert.Empty(t, cmpMessages([]proto.Message{&cloudv1.Pod{Name: "p"}}, cloudtest.PayloadsOn(recs, cloudconn.StreamData)[4:]))

	statesMu.Lock()
	assert.Equal(t, []cloudconn.State{cloudconn.Disconnected, cloudconn.Syncing, cloudconn.Ready}, states)
	statesMu.Unlock()

	metadatatest.AssertEqualKestrelCommandConnected(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualKestrelCommandMessagesSent(t, h.tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("stream", "data")), Value: 5},
		{Attributes: attribute.NewSet(attribute.String("stream", "events")), Value: 1},
		{Attributes: attribute.NewSet(attribute.String("stream", "flows")), Value: 2},
		{Attributes: attribute.NewSet(attribute.String("stream", "logs")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	require.Eventually(t, func() bool {
		return testutil.MetricSum(h.tel, "otelcol.kestrel_command.heartbeats", attribute.String("stream", "data")) > 0
	}, waitFor, tick)
}

func cmpMessages(want, got []proto.Message) string {
	if len(want) != len(got) {
		return fmt.Sprintf("want %d messages, got %d: %v", len(want), len(got), got)
	}
	for i := range want {
		if !proto.Equal(want[i], got[i]) {
			return fmt.Sprintf("message %d: want %v, got %v", i, want[i], got[i])
		}
	}
	return ""
}

func TestOldServerFallsBackToStreamData(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs, OldServer: true})
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	mustRegister(t, h.ext.Handle, &cloudv1.MetricsQueryRequest{}, func(_ context.Context, req proto.Message) proto.Message {
		return &cloudv1.MetricsQueryResponse{RequestId: req.(*cloudv1.MetricsQueryRequest).GetRequestId(), TotalSeriesMatched: 7}
	})
	h.waitState(t, cloudconn.Ready)

	ctx := testCtx(t)
	require.NoError(t, h.ext.Send(ctx, &cloudv1.Flow{SrcIp: "10.0.0.1"}))
	require.NoError(t, h.ext.Send(ctx, event("ev-1")))
	require.NoError(t, h.ext.Send(ctx, &cloudv1.PodLogs{PodName: "p"}))
	require.NoError(t, cloud.WaitFor(ctx, func(r []devcloud.Record) bool { return len(cloudtest.PayloadsOn(r, cloudconn.StreamData)) == 4 }))
	// Order across the three kinds is not defined: each was written on its side stream
	// first and re-sent when that stream was refused.
	got := cloudtest.PayloadsOn(cloud.Records(), cloudconn.StreamData)
	slices.SortStableFunc(got[1:], func(a, b proto.Message) int {
		return strings.Compare(string(a.ProtoReflect().Descriptor().FullName()), string(b.ProtoReflect().Descriptor().FullName()))
	})
	assert.Empty(t, cmpMessages([]proto.Message{
		&cloudv1.InventoryCommit{}, &cloudv1.Flow{SrcIp: "10.0.0.1"}, event("ev-1"), &cloudv1.PodLogs{PodName: "p"},
	}, got))

	// Without StreamControl, requests come on StreamData and are answered there.
	resp, err := cloud.SendRequest(ctx, "", &cloudv1.MetricsQueryRequest{RequestId: "q-1"})
	require.NoError(t, err)
	assert.Empty(t, cmpMessages([]proto.Message{&cloudv1.MetricsQueryResponse{RequestId: "q-1", TotalSeriesMatched: 7}}, []proto.Message{resp}))
	last := cloud.Records()[len(cloud.Records())-1]
	assert.Equal(t, cloudconn.StreamData, last.Stream)

	// Unimplemented side streams are not an error.
	h.host.WaitStatus(t, componentstatus.StatusOK)
	assert.Equal(t, cloudconn.Ready, h.ext.State())
}

func TestRequestsAnsweredOnArrivalStream(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := newHarness(t, testConfig(t, certs, cloud.Addr()))
	mustRegister(t, h.ext.Handle, &cloudv1.MetricsQueryRequest{}, func(_ context.Context, req proto.Message) proto.Message {
		return &cloudv1.MetricsQueryResponse{RequestId: req.(*cloudv1.MetricsQueryRequest).GetRequestId(), Truncated: true}
	})
	h.start(t)
	waitSideStreamsUsable(t, h, cloud)
	ctx := testCtx(t)

	resp, err := cloud.SendRequest(ctx, "", &cloudv1.MetricsQueryRequest{RequestId: "q-1"})
	require.NoError(t, err)
	assert.Empty(t, cmpMessages([]proto.Message{&cloudv1.MetricsQueryResponse{RequestId: "q-1", Truncated: true}}, []proto.Message{resp}))
	recs := cloud.Records()
	assert.Equal(t, cloudconn.StreamControl, recs[len(recs)-1].Stream)

	// A request type without a handler is answered with an error.
	resp, err = cloud.SendRequest(ctx, "", &cloudv1.KubernetesAPIRequest{RequestId: "k-1", ApiPaths: []string{"api/v1/pods"}})
	require.NoError(t, err)
	assert.Empty(t, cmpMessages([]proto.Message{&cloudv1.KubernetesAPIResponse{
		RequestId:          "k-1",
		GlobalErrorMessage: "not supported by this operator: cloud.v1.KubernetesAPIRequest",
	}}, []proto.Message{resp}))
	resp, err = cloud.SendRequest(ctx, "", &cloudv1.ShellCommandRequest{RequestId: "s-1"})
	require.NoError(t, err)
	assert.Equal(t, "not supported by this operator: cloud.v1.ShellCommandRequest", resp.(*cloudv1.ShellCommandResponse).GetGlobalErrorMessage())

	// Requests are counted just after their response is sent.
	require.Eventually(t, func() bool {
		return testutil.MetricSum(h.tel, "otelcol.kestrel_command.requests", attribute.String("type", "cloud.v1.MetricsQueryRequest"), attribute.String("outcome", "ok")) == 1 &&
			testutil.MetricSum(h.tel, "otelcol.kestrel_command.requests", attribute.String("type", "cloud.v1.KubernetesAPIRequest"), attribute.String("outcome", "unsupported")) == 1 &&
			testutil.MetricSum(h.tel, "otelcol.kestrel_command.requests", attribute.String("type", "cloud.v1.ShellCommandRequest"), attribute.String("outcome", "unsupported")) == 1
	}, waitFor, tick)
}

func TestSideStreamReconnectsAlone(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	waitSideStreamsUsable(t, h, cloud)
	before := cloud.Status().Operators[0].Streams

	cloud.BreakStream("", cloudconn.StreamEvents)
	ctx := testCtx(t)
	require.NoError(t, cloud.WaitStatus(ctx, func(st devcloud.Status) bool {
		ev := st.Operators[0].Streams[cloudconn.StreamEvents]
		return ev.Open && ev.OpenedAt.After(before[cloudconn.StreamEvents].OpenedAt)
	}))
	// Events keep flowing while and after the stream reconnects, on one stream or the other.
	require.NoError(t, h.ext.Send(ctx, event("after-break")))
	require.NoError(t, cloud.WaitFor(ctx, func(r []devcloud.Record) bool {
		for _, p := range append(cloudtest.PayloadsOn(r, cloudconn.StreamEvents), cloudtest.PayloadsOn(r, cloudconn.StreamData)...) {
			if e, ok := p.(*cloudv1.KubernetesEvent); ok && e.GetName() == "after-break" {
				return true
			}
		}
		return false
	}))

	after := cloud.Status().Operators[0].Streams
	for _, k := range []cloudconn.Stream{cloudconn.StreamData, cloudconn.StreamControl, cloudconn.StreamFlows, cloudconn.StreamLogs} {
		assert.True(t, after[k].Open, k)
		assert.Equal(t, before[k].OpenedAt, after[k].OpenedAt, "%s was reopened", k)
	}
	assert.Equal(t, cloudconn.Ready, h.ext.State())
	h.host.WaitStatus(t, componentstatus.StatusOK)
	metadatatest.AssertEqualKestrelCommandReconnects(t, h.tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("stream", "events")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
}

func TestReconnectAfterServerKill(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := newHarness(t, testConfig(t, certs, cloud.Addr()))
	var snapshots atomic.Int32
	h.ext.RegisterSnapshot(func(context.Context, func(proto.Message) error) (*cloudv1.InventoryCommit, error) {
		snapshots.Add(1)
		return nil, nil
	})
	h.start(t)
	h.waitState(t, cloudconn.Ready)

	cloud.Kill()
	h.waitState(t, cloudconn.Disconnected)
	h.host.WaitStatus(t, componentstatus.StatusRecoverableError, "disconnected from Kestrel Cloud")
	require.ErrorIs(t, h.ext.Send(context.Background(), event("while-down")), cloudconn.ErrNotConnected)

	cloud.Restart(t)
	h.waitState(t, cloudconn.Ready)
	h.host.WaitStatus(t, componentstatus.StatusOK)
	cloud.WaitCommitted(t)
	assert.Equal(t, int32(2), snapshots.Load(), "the snapshot is replayed on every connection")
}

// An unregistered snapshot provider is not replayed on the next connection; the commit
// still is.
func TestUnregisteredSnapshotIsNotReplayed(t *testing.T) {
	cloud := cloudtest.Start(t, devcloud.Config{})
	h := newHarness(t, testConfig(t, cloud.Certs, cloud.Addr()))
	var snapshots atomic.Int32
	unregister := h.ext.RegisterSnapshot(func(_ context.Context, send func(proto.Message) error) (*cloudv1.InventoryCommit, error) {
		snapshots.Add(1)
		return &cloudv1.InventoryCommit{HasFlux: true}, send(&cloudv1.Namespace{Name: "from-provider"})
	})
	h.start(t)
	cloud.WaitCommitted(t)
	assert.Empty(t, cmpMessages([]proto.Message{&cloudv1.Namespace{Name: "from-provider"}, &cloudv1.InventoryCommit{HasFlux: true}},
		cloudtest.PayloadsOn(cloud.Records(), cloudconn.StreamData)))

	unregister()
	cloud.Kill()
	h.waitState(t, cloudconn.Disconnected)
	cloud.Restart(t)
	cloud.WaitCommitted(t)
	assert.Empty(t, cmpMessages([]proto.Message{&cloudv1.InventoryCommit{}}, cloudtest.PayloadsOn(cloud.Records(), cloudconn.StreamData)))
	assert.Equal(t, int32(1), snapshots.Load())
}

func TestGracefulServerStopLosesNothing(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	waitSideStreamsUsable(t, h, cloud)

	// Two senders (side stream and StreamData) run until Send fails, across the Stop.
	var accepted sync.Map
	var wg sync.WaitGroup
	send := func(prefix string, mk func(string) proto.Message) {
		defer wg.Done()
		for i := 0; ; i++ {
			name := fmt.Sprintf("%s-%d", prefix, i)
			if err := h.ext.Send(context.Background(), mk(name)); err != nil {
				assert.ErrorIs(t, err, cloudconn.ErrNotConnected)
				return
			}
			accepted.Store(name, true)
		}
	}
	wg.Add(2)
	go send("ev", func(n string) proto.Message { return event(n) })
	go send("ns", func(n string) proto.Message { return &cloudv1.Namespace{Name: n} })
	require.NoError(t, cloud.WaitFor(testCtx(t), func(r []devcloud.Record) bool { return len(r) > 200 }))
	cloud.Stop()
	wg.Wait()

	received := map[string]bool{}
	for _, r := range cloud.Records() {
		switch p := r.Payload.(type) {
		case *cloudv1.KubernetesEvent:
			received[p.GetName()] = true
		case *cloudv1.Namespace:
			received[p.GetName()] = true
		}
	}
	n := 0
	accepted.Range(func(k, _ any) bool {
		n++
		assert.True(t, received[k.(string)], "%s was accepted by Send but never arrived", k)
		return true
	})
	assert.Greater(t, n, 200)
	h.waitState(t, cloudconn.Disconnected)
}

func TestExpiredTokenIsRenewedAndPersisted(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{TokenTTL: -time.Hour})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs, TokenTTL: 2 * time.Hour})
	cfg := testConfig(t, certs, cloud.Addr())
	cfg.Token.PersistFile = filepath.Join(t.TempDir(), "renewed-token")
	h := startHarness(t, cfg)
	h.waitState(t, cloudconn.Ready)
	cloud.WaitCommitted(t)

	st := cloud.Status()
	assert.GreaterOrEqual(t, st.Renewals, 1)
	require.Len(t, st.Operators, 1)
	expiry := st.Operators[0].Streams[cloudconn.StreamData].TokenExpiry
	assert.True(t, expiry.After(time.Now().Add(time.Hour)), "StreamData carried a token expiring at %v", expiry)

	persisted, err := os.ReadFile(cfg.Token.PersistFile)
	require.NoError(t, err)
	assert.Equal(t, h.ext.tokens.current().raw, string(persisted))
	fi, err := os.Stat(cfg.Token.PersistFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.Equal(t, 1, st.Renewals, "one renewal serves both the timer and the Unauthenticated answer")
	require.Eventually(t, func() bool {
		return testutil.MetricSum(h.tel, "otelcol.kestrel_command.token.renewals", attribute.String("outcome", "success")) == 1
	}, waitFor, tick)
}

func TestPersistedTokenWins(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{TokenTTL: -time.Hour})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	cfg := testConfig(t, certs, cloud.Addr())
	cfg.Token.PersistFile = filepath.Join(t.TempDir(), "renewed-token")
	fresh, err := devcloud.IssueToken(certs, cloudtest.Tenant, 3*time.Hour)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg.Token.PersistFile, []byte(fresh), 0o600))

	h := startHarness(t, cfg)
	h.waitState(t, cloudconn.Ready)
	cloud.WaitCommitted(t)
	st := cloud.Status()
	assert.Zero(t, st.Renewals, "the persisted token needs no renewal")
	expiry := st.Operators[0].Streams[cloudconn.StreamData].TokenExpiry
	assert.WithinDuration(t, time.Now().Add(3*time.Hour), expiry, time.Minute)
}

func TestRenewalFailureIsReported(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	// An expired token signed by someone else: the cloud refuses both streams and renewal.
	foreign, err := devcloud.IssueToken(cloudtest.NewCerts(t, devcloud.CertOptions{}), cloudtest.Tenant, -time.Minute)
	require.NoError(t, err)
	cfg := testConfig(t, certs, cloud.Addr())
	cfg.Token.File = filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(cfg.Token.File, []byte(foreign), 0o600))

	h := startHarness(t, cfg)
	h.host.WaitStatus(t, componentstatus.StatusRecoverableError, "token expired and renewal failed", "Unauthenticated")
	assert.Equal(t, cloudconn.Disconnected, h.ext.State())
	assert.Positive(t, testutil.MetricSum(h.tel, "otelcol.kestrel_command.token.renewals", attribute.String("outcome", "failure")))
}

func TestUntrustedClientCertificate(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	other := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	cfg := testConfig(t, certs, cloud.Addr())
	cfg.TLS.CertFile = filepath.Join(other, devcloud.ClientCertFile)
	cfg.TLS.KeyFile = filepath.Join(other, devcloud.ClientKeyFile)

	h := startHarness(t, cfg)
	h.host.WaitStatus(t, componentstatus.StatusRecoverableError, "tls: ")
	assert.Equal(t, cloudconn.Disconnected, h.ext.State())
	assert.Empty(t, cloud.Status().Operators)
}

func TestUnreachableEndpoint(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())

	h := startHarness(t, testConfig(t, certs, addr))
	h.host.WaitStatus(t, componentstatus.StatusRecoverableError, "connection refused")
	assert.Equal(t, cloudconn.Disconnected, h.ext.State())
	require.ErrorIs(t, h.ext.Send(context.Background(), event("x")), cloudconn.ErrNotConnected)
}

func TestHostileServerMessages(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	waitSideStreamsUsable(t, h, cloud)

	for _, tc := range []struct {
		name   string
		stream cloudconn.Stream
		raw    []byte
		want   string
	}{
		// Field 3 (kubernetes_api_request) with a length running past the end.
		{"garbage on data", cloudconn.StreamData, []byte{0x1a, 0xff, 0x01, 0x02}, "unmarshal"},
		{"oversized on data", cloudconn.StreamData, make([]byte, 11<<20), "larger than max"},
		{"garbage on events", cloudconn.StreamEvents, []byte{0xff, 0xff, 0xff}, "unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := cloud.Status().Operators[0].Streams[tc.stream].OpenedAt
			mark := h.host.Mark()
			require.NoError(t, cloud.Inject("", tc.stream, tc.raw))
			h.host.WaitReported(t, mark, componentstatus.StatusRecoverableError, tc.want)
			require.NoError(t, cloud.WaitStatus(testCtx(t), func(st devcloud.Status) bool {
				s := st.Operators[0].Streams[tc.stream]
				return s.Open && s.OpenedAt.After(before)
			}))
			waitSideStreamsUsable(t, h, cloud)
			h.host.WaitStatus(t, componentstatus.StatusOK)
		})
	}
}

func TestCertificateRotation(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})

	// Lay the client files out like a Kubernetes Secret volume: the files are symlinks
	// through ..data, which is swapped atomically on update.
	mount := t.TempDir()
	writeVersion := func(version string, write func(dir string)) {
		dir := filepath.Join(mount, version)
		require.NoError(t, os.Mkdir(dir, 0o755))
		write(dir)
		tmp := filepath.Join(mount, "..data_tmp")
		require.NoError(t, os.Symlink(version, tmp))
		require.NoError(t, os.Rename(tmp, filepath.Join(mount, "..data")))
	}
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(to, b, 0o600))
	}
	writeVersion("..v1", func(dir string) {
		copyFile(filepath.Join(certs, devcloud.ClientCertFile), filepath.Join(dir, "tls::crt"))
		copyFile(filepath.Join(certs, devcloud.ClientKeyFile), filepath.Join(dir, "tls::key"))
	})
	for _, f := range []string{"tls::crt", "tls::key"} {
		require.NoError(t, os.Symlink(filepath.Join("..data", f), filepath.Join(mount, f)))
	}
	cfg := testConfig(t, certs, cloud.Addr())
	cfg.TLS.CertFile = filepath.Join(mount, "tls::crt")
	cfg.TLS.KeyFile = filepath.Join(mount, "tls::key")
	h := startHarness(t, cfg)
	h.waitState(t, cloudconn.Ready)
	h.host.WaitStatus(t, componentstatus.StatusOK)
	cloud.WaitCommitted(t)
	oldSerial := cloud.Status().Operators[0].CertSerial

	// A key that does not match the certificate is reported; the connection stays.
	writeVersion("..v2", func(dir string) {
		issueClientCert(t, certs, filepath.Join(dir, "tls::crt"), filepath.Join(t.TempDir(), "unused.key"))
		issueClientCert(t, certs, filepath.Join(t.TempDir(), "unused.crt"), filepath.Join(dir, "tls::key"))
	})
	h.host.WaitStatus(t, componentstatus.StatusRecoverableError, "new TLS files rejected")
	assert.Equal(t, cloudconn.Ready, h.ext.State())
	assert.Equal(t, oldSerial, cloud.Status().Operators[0].CertSerial)

	// A good pair is picked up without restarting the extension.
	var newSerial string
	writeVersion("..v3", func(dir string) {
		newSerial = issueClientCert(t, certs, filepath.Join(dir, "tls::crt"), filepath.Join(dir, "tls::key"))
	})
	require.NoError(t, cloud.WaitStatus(testCtx(t), func(st devcloud.Status) bool {
		return len(st.Operators) == 1 && st.Operators[0].CertSerial == newSerial && st.Operators[0].Committed
	}))
	h.waitState(t, cloudconn.Ready)
	h.host.WaitStatus(t, componentstatus.StatusOK)
}

func TestSendErrors(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	cfg := testConfig(t, certs, cloud.Addr())
	cfg.MaxMessageSizeMiB = 1
	h := newHarness(t, cfg)

	require.ErrorIs(t, h.ext.Send(context.Background(), event("early")), cloudconn.ErrNotConnected)
	h.start(t)
	waitSideStreamsUsable(t, h, cloud)

	for name, tc := range map[string]struct {
		payload proto.Message
		want    string
	}{
		"nil":          {nil, "nil payload"},
		"typed nil":    {(*cloudv1.KubernetesEvent)(nil), "nil cloud.v1.KubernetesEvent"},
		"no envelope":  {&cloudv1.Heartbeat{}, "no stream envelope carries it"},
		"request type": {&cloudv1.MetricsQueryRequest{}, "no stream envelope carries it"},
		"too large":    {&cloudv1.PodLogs{PodName: string(make([]byte, 2<<20))}, "exceeds max_message_size_mib"},
	} {
		t.Run(name, func(t *testing.T) {
			err := h.ext.Send(context.Background(), tc.payload)
			require.ErrorContains(t, err, tc.want)
			assert.Equal(t, codes.InvalidArgument, status.Code(err))
		})
	}
	// The refused oversized payload did not break the stream.
	require.NoError(t, h.ext.Send(context.Background(), &cloudv1.PodLogs{PodName: "small"}))
	require.NoError(t, cloud.WaitFor(testCtx(t), func(r []devcloud.Record) bool {
		return len(cloudtest.PayloadsOn(r, cloudconn.StreamLogs)) == 1
	}))
	assert.Equal(t, cloudconn.Ready, h.ext.State())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, h.ext.Send(ctx, event("cancelled")), context.Canceled)
}

func TestStartFailsWithoutToken(t *testing.T) {
	cfg := testConfig(t, cloudtest.NewCerts(t, devcloud.CertOptions{}), "127.0.0.1:4317")
	cfg.Token.File = filepath.Join(t.TempDir(), "missing")
	cfg.Token.EnvVar = "KESTREL_COMMAND_TEST_UNSET"
	h := newHarness(t, cfg)
	err := h.ext.Start(context.Background(), h.host)
	require.ErrorContains(t, err, "no usable Kestrel Cloud token")
	require.ErrorContains(t, err, "env var KESTREL_COMMAND_TEST_UNSET: not set")
	require.ErrorContains(t, err, "token::file")
}

// token::persist_secret with the in-cluster identity outside a cluster: Start fails and says
// which setting needs the Kubernetes API.
func TestStartFailsWithoutKubernetes(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cfg := testConfig(t, cloudtest.NewCerts(t, devcloud.CertOptions{}), "127.0.0.1:4317")
	cfg.Token.PersistSecret.Namespace, cfg.Token.PersistSecret.Name = "kestrel-ai", "kestrel-operator-token"
	h := newHarness(t, cfg)
	err := h.ext.Start(context.Background(), h.host)
	require.ErrorContains(t, err, "token::persist_secret: building the Kubernetes client configuration (auth_type serviceAccount)")
}

// TLS files that disappear between validation and start-up (or a collector started
// without validation) fail Start with the file's name, instead of a collector that
// reports healthy and queues for ever.
func TestStartFailsWithoutCertificate(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cfg := testConfig(t, certs, "127.0.0.1:4317")
	h := newHarness(t, cfg)
	require.NoError(t, os.Remove(cfg.TLS.KeyFile))
	err := h.ext.Start(context.Background(), h.host)
	require.ErrorContains(t, err, `tls::key_file "`+cfg.TLS.KeyFile+`" cannot be read`)

	require.NoError(t, os.WriteFile(cfg.TLS.KeyFile, []byte("not a key"), 0o600))
	require.ErrorContains(t, h.ext.Start(context.Background(), h.host), "the TLS files do not load")
}

func TestHandleValidation(t *testing.T) {
	h := newHarness(t, testConfig(t, cloudtest.NewCerts(t, devcloud.CertOptions{}), "127.0.0.1:4317"))
	noop := func(context.Context, proto.Message) proto.Message { return nil }
	unregister := mustRegister(t, h.ext.Handle, &cloudv1.ShellCommandRequest{}, noop)
	handleErr := func(typ proto.Message) error {
		_, err := h.ext.Handle(typ, noop)
		return err
	}
	require.ErrorContains(t, handleErr(&cloudv1.ShellCommandRequest{}), "already registered")
	require.ErrorContains(t, handleErr(&cloudv1.Heartbeat{}), "not a request")
	require.ErrorContains(t, handleErr(&cloudv1.Pod{}), "not a request")
	require.ErrorContains(t, handleErr(nil), "must not be nil")
	mustRegister(t, h.ext.Handle, &cloudv1.NetworkPolicyWithError{}, noop)

	// Unregistering frees the type; a stale unregister does not remove the new handler.
	unregister()
	mustRegister(t, h.ext.Handle, &cloudv1.ShellCommandRequest{}, noop)
	unregister()
	require.ErrorContains(t, handleErr(&cloudv1.ShellCommandRequest{}), "already registered")
}

// A handler that was unregistered (its pipeline shut down) no longer answers; the request
// is answered as unsupported.
func TestUnregisteredHandlerNoLongerAnswers(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := newHarness(t, testConfig(t, certs, cloud.Addr()))
	unregister := mustRegister(t, h.ext.Handle, &cloudv1.MetricsQueryRequest{}, func(_ context.Context, req proto.Message) proto.Message {
		return &cloudv1.MetricsQueryResponse{RequestId: req.(*cloudv1.MetricsQueryRequest).GetRequestId()}
	})
	h.start(t)
	cloud.WaitCommitted(t)
	ctx := testCtx(t)
	resp, err := cloud.SendRequest(ctx, "", &cloudv1.MetricsQueryRequest{RequestId: "q-1"})
	require.NoError(t, err)
	assert.Empty(t, resp.(*cloudv1.MetricsQueryResponse).GetErrorMessage())

	unregister()
	resp, err = cloud.SendRequest(ctx, "", &cloudv1.MetricsQueryRequest{RequestId: "q-2"})
	require.NoError(t, err)
	assert.Equal(t, "q-2", resp.(*cloudv1.MetricsQueryResponse).GetRequestId())
	assert.Equal(t, "not supported by this operator: cloud.v1.MetricsQueryRequest", resp.(*cloudv1.MetricsQueryResponse).GetErrorMessage())
}

func TestSnapshotFailureRetries(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := newHarness(t, testConfig(t, certs, cloud.Addr()))
	var calls atomic.Int32
	h.ext.RegisterSnapshot(func(context.Context, func(proto.Message) error) (*cloudv1.InventoryCommit, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("informer cache not synced")
		}
		return &cloudv1.InventoryCommit{HasArgocd: true}, nil
	})
	mark := h.host.Mark()
	h.start(t)
	h.host.WaitReported(t, mark, componentstatus.StatusRecoverableError, "snapshot provider 0 failed: informer cache not synced")
	h.host.WaitStatus(t, componentstatus.StatusOK)
	cloud.WaitCommitted(t)
	assert.Equal(t, int32(2), calls.Load())
	// The failed attempt committed nothing.
	assert.Empty(t, cmpMessages([]proto.Message{&cloudv1.InventoryCommit{HasArgocd: true}}, cloudtest.PayloadsOn(cloud.Records(), cloudconn.StreamData)))
}

func TestShutdownCancelsHandlers(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := newHarness(t, testConfig(t, certs, cloud.Addr()))
	running := make(chan struct{})
	cancelled := make(chan struct{})
	mustRegister(t, h.ext.Handle, &cloudv1.ShellCommandRequest{}, func(ctx context.Context, _ proto.Message) proto.Message {
		close(running)
		<-ctx.Done()
		close(cancelled)
		return nil
	})
	h.start(t)
	waitSideStreamsUsable(t, h, cloud)
	reqCtx, cancelReq := context.WithCancel(context.Background())
	defer cancelReq()
	go func() { _, _ = cloud.SendRequest(reqCtx, "", &cloudv1.ShellCommandRequest{RequestId: "long"}) }()
	<-running

	require.NoError(t, h.ext.Shutdown(testCtx(t)))
	<-cancelled
	assert.Equal(t, cloudconn.Disconnected, h.ext.State())
	require.ErrorIs(t, h.ext.Send(context.Background(), event("late")), cloudconn.ErrNotConnected)
}

// While a snapshot provider holds the commit back (a standby replica's exporter waits for
// an inventory snapshot that only the lease holder produces), other data is still
// delivered: the side streams are not open yet, so it goes on StreamData.
func TestSendWhileTheSnapshotWaits(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := newHarness(t, testConfig(t, certs, cloud.Addr()))
	h.ext.RegisterSnapshot(func(ctx context.Context, _ func(proto.Message) error) (*cloudv1.InventoryCommit, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	h.start(t)
	h.waitState(t, cloudconn.Syncing)
	ctx := testCtx(t)
	require.NoError(t, h.ext.Send(ctx, event("ev-1")))
	require.NoError(t, h.ext.Send(ctx, &cloudv1.Flow{SrcIp: "10.0.0.1"}))
	require.NoError(t, cloud.WaitFor(ctx, func(r []devcloud.Record) bool { return len(r) == 2 }))
	assert.Empty(t, cmpMessages([]proto.Message{event("ev-1"), &cloudv1.Flow{SrcIp: "10.0.0.1"}}, cloudtest.PayloadsOn(cloud.Records(), cloudconn.StreamData)))
	assert.Equal(t, cloudconn.Syncing, h.ext.State())
	assert.False(t, cloud.Status().Operators[0].Committed)
}

// A cloud that keeps the connection but stops reading blocks the writes once the
// flow-control windows are full. After stall_timeout the status turns degraded naming the
// stream, the blocked write fails (so its caller retries) and the connection is recycled;
// the status turns OK again once a new connection has run cleanly.
func TestStalledCloudIsDetectedAndRecycled(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	cfg := testConfig(t, certs, cloud.Addr())
	cfg.StallTimeout = 500 * time.Millisecond
	h := startHarness(t, cfg)
	waitSideStreamsUsable(t, h, cloud)
	h.host.WaitStatus(t, componentstatus.StatusOK)
	opened := cloud.Status().Operators[0].Streams[cloudconn.StreamData].OpenedAt

	cloud.PauseReading(true)
	big := event("big")
	big.Message = strings.Repeat("x", 1<<20)
	sendErr := make(chan error, 1)
	go func() {
		for {
			if err := h.ext.Send(context.Background(), big); err != nil {
				sendErr <- err
				return
			}
		}
	}()
	mark := h.host.Mark()
	h.host.WaitReported(t, mark, componentstatus.StatusRecoverableError, "stream events made no progress", "connection recycled")
	select {
	case err := <-sendErr:
		require.Error(t, err)
	case <-time.After(waitFor):
		t.Fatal("the blocked write did not fail")
	}
	metadatatest.AssertEqualKestrelCommandStalls(t, h.tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("stream", "events")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())

	cloud.PauseReading(false)
	require.NoError(t, cloud.WaitStatus(testCtx(t), func(st devcloud.Status) bool {
		data := st.Operators[0].Streams[cloudconn.StreamData]
		return data.Open && data.OpenedAt.After(opened) && st.Operators[0].Committed
	}), "a new StreamData was opened and committed")
	h.waitState(t, cloudconn.Ready)
	h.host.WaitStatus(t, componentstatus.StatusOK)
}

// With the default reconnect settings the connection is back within seconds of the
// cloud's return, even after an outage long enough for the backoff to reach its limit.
func TestDefaultBackoffReconnectsWithinSeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 12 s outage")
	}
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	cfg := testConfig(t, certs, cloud.Addr())
	cfg.Reconnect = createDefaultConfig().(*Config).Reconnect
	h := startHarness(t, cfg)
	h.waitState(t, cloudconn.Ready)

	cloud.Kill()
	h.waitState(t, cloudconn.Disconnected)
	time.Sleep(12 * time.Second) // 1 + 1.5 + 2.25 + 3.4 + 5 s: the backoff is at max_interval
	cloud.Restart(t)
	back := time.Now()
	h.waitState(t, cloudconn.Ready)
	took := time.Since(back)
	t.Logf("Ready %v after the cloud came back", took)
	limit := cfg.Reconnect.MaxInterval + time.Duration(float64(cfg.Reconnect.MaxInterval)*cfg.Reconnect.RandomizationFactor) + 2*time.Second
	assert.Less(t, took, limit)
}

// A cloud that sends headers only with its first message (a heartbeat, here 30 s away):
// the snapshot and commit go out at once, and so do events on StreamEvents.
func TestLazyHeadersWriteAtOnce(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs, LazyHeaders: true, HeartbeatInterval: 30 * time.Second})
	h := newHarness(t, testConfig(t, certs, cloud.Addr()))
	h.ext.RegisterSnapshot(func(_ context.Context, send func(proto.Message) error) (*cloudv1.InventoryCommit, error) {
		return nil, send(&cloudv1.Namespace{Name: "shop"})
	})
	h.start(t)
	cloud.WaitCommitted(t)
	opened := cloud.Status().Operators[0].Streams[cloudconn.StreamData].OpenedAt
	var committed time.Time
	for _, r := range cloud.Records() {
		if _, ok := r.Payload.(*cloudv1.InventoryCommit); ok {
			committed = r.Time
		}
	}
	t.Logf("InventoryCommit %v after StreamData opened", committed.Sub(opened))
	assert.Less(t, committed.Sub(opened), 200*time.Millisecond)

	waitSideStreamsUsable(t, h, cloud)
	sent := time.Now()
	require.NoError(t, h.ext.Send(testCtx(t), event("ev-1")))
	got := cloud.WaitPayloads(t, cloudconn.StreamEvents, &cloudv1.KubernetesEvent{}, func(ms []proto.Message) bool { return len(ms) == 1 })
	assert.Equal(t, "ev-1", got[0].(*cloudv1.KubernetesEvent).GetName())
	assert.Less(t, time.Since(sent), 200*time.Millisecond, "events use StreamEvents at once")
}

// Events written on a side stream that the server then refuses (an old cloud, whose
// Unimplemented here comes 300 ms late) are re-sent on StreamData: none is lost, none
// is doubled.
func TestRefusedSideStreamLosesNothing(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs, OldServer: true, RefuseAfter: 300 * time.Millisecond})
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	h.waitState(t, cloudconn.Ready)
	require.Eventually(t, func() bool {
		s := h.ext.session.Load()
		return s != nil && s.open[cloudconn.StreamEvents].Load() != nil
	}, waitFor, time.Millisecond, "StreamEvents is used before the server answers")
	const n = 50
	for i := range n {
		require.NoError(t, h.ext.Send(testCtx(t), event(fmt.Sprintf("ev-%d", i))))
	}
	cloud.WaitPayloads(t, cloudconn.StreamData, &cloudv1.KubernetesEvent{}, func(ms []proto.Message) bool { return len(ms) >= n })
	time.Sleep(200 * time.Millisecond) // duplicates would arrive now
	got := cloudtest.PayloadsOn(cloud.Records(), cloudconn.StreamData)
	names := map[string]int{}
	for _, m := range got {
		if ev, ok := m.(*cloudv1.KubernetesEvent); ok {
			names[ev.GetName()]++
		}
	}
	assert.Len(t, names, n)
	for name, c := range names {
		assert.Equal(t, 1, c, name)
	}
	assert.Empty(t, cloudtest.PayloadsOn(cloud.Records(), cloudconn.StreamEvents))
}

// Events held by a side stream that fails before it is accepted, on a connection that dies
// with it, are carried over and sent on the next connection: nothing Send reported as
// sent is lost.
func TestHeldPayloadsSurviveTheConnection(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs, OldServer: true, RefuseAfter: 5 * time.Second})
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	h.waitState(t, cloudconn.Ready)
	require.Eventually(t, func() bool {
		s := h.ext.session.Load()
		return s != nil && s.open[cloudconn.StreamEvents].Load() != nil
	}, waitFor, time.Millisecond)
	const n = 20
	for i := range n {
		require.NoError(t, h.ext.Send(testCtx(t), event(fmt.Sprintf("ev-%d", i))))
	}
	cloud.Kill() // before the refusal: the held events cannot be re-sent on this connection
	cloud.Restart(t)
	got := cloud.WaitPayloads(t, cloudconn.StreamData, &cloudv1.KubernetesEvent{}, func(ms []proto.Message) bool { return len(ms) >= n })
	names := map[string]bool{}
	for _, m := range got {
		names[m.(*cloudv1.KubernetesEvent).GetName()] = true
	}
	assert.Len(t, names, n)
}

// Once the collector has said its pipelines are not ready (it is shutting down), a lost
// connection is no longer reported as the extension's status.
func TestNoStatusReportAfterNotReady(t *testing.T) {
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	h := startHarness(t, testConfig(t, certs, cloud.Addr()))
	h.host.WaitStatus(t, componentstatus.StatusOK)
	require.NoError(t, h.ext.NotReady())
	before := len(h.host.Statuses())

	cloud.Kill()
	h.waitState(t, cloudconn.Disconnected)
	assert.Len(t, h.host.Statuses(), before)
}
