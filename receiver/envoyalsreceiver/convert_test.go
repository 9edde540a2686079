package envoyalsreceiver

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver/internal/metadata"
)

type fixedResolver struct{}

func (fixedResolver) Owner(ns, pod string) (podowner.Ref, bool) {
	return podowner.Ref{Kind: "Rollout", Name: ns + "/" + pod}, true
}

func TestIdentify(t *testing.T) {
	meta := func(kv map[string]any) *structpb.Struct {
		s, err := structpb.NewStruct(kv)
		require.NoError(t, err)
		return s
	}
	tests := []struct {
		name     string
		node     *corev3.Node
		resolver podowner.Resolver
		want     node
	}{
		{
			name: "istio node id",
			node: &corev3.Node{Id: "sidecar~10.0.0.5~web-7d9f8b6c5-x2x4k.shop~shop.svc.cluster.local"},
			want: node{namespace: "shop", pod: "web-7d9f8b6c5-x2x4k", kind: "Deployment", workload: "web", hasIdentity: true},
		},
		{
			name: "pod name with dots",
			node: &corev3.Node{Id: "sidecar~10.0.0.5~my.pod.shop~shop.svc.cluster.local"},
			want: node{namespace: "shop", pod: "my.pod", hasIdentity: true},
		},
		{
			name: "istio metadata wins",
			node: &corev3.Node{
				Id:       "router~10.0.0.9~istio-ingressgateway-5d8f7c6b9-abcde.istio-system~istio-system.svc.cluster.local",
				Metadata: meta(map[string]any{"NAME": "gw-0", "NAMESPACE": "edge", "OWNER": "kubernetes://apis/apps/v1/namespaces/edge/statefulsets/gw"}),
			},
			want: node{namespace: "edge", pod: "gw-0", kind: "StatefulSet", workload: "gw", hasIdentity: true},
		},
		{
			name:     "resolver",
			node:     &corev3.Node{Id: "sidecar~10.0.0.5~web-1.shop~shop.svc.cluster.local"},
			resolver: fixedResolver{},
			want:     node{namespace: "shop", pod: "web-1", kind: "Rollout", workload: "shop/web-1", hasIdentity: true},
		},
		{
			name: "owner that is not a workload",
			node: &corev3.Node{Metadata: meta(map[string]any{"NAME": "debug", "NAMESPACE": "default", "OWNER": "kubernetes://apis/v1/namespaces/default/pods/debug"})},
			want: node{namespace: "default", pod: "debug", hasIdentity: true},
		},
		{name: "plain envoy", node: &corev3.Node{Id: "edge-proxy-1", Cluster: "edge"}, want: node{}},
		{name: "no node", want: node{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.resolver
			if r == nil {
				r = podowner.Names{}
			}
			got := identify(tc.node, "als", r)
			tc.want.id, tc.want.logName = tc.node.GetId(), "als"
			assert.Equal(t, tc.want, *got)
		})
	}
}

func TestParseCluster(t *testing.T) {
	tests := map[string]clusterInfo{
		"outbound|8080||cart.shop.svc.cluster.local":           {dir: dirOutbound, port: 8080, host: "cart.shop.svc.cluster.local"},
		"outbound|443|v2|api.example.com":                      {dir: dirOutbound, port: 443, host: "api.example.com"},
		"inbound|8080||":                                       {dir: dirInbound, port: 8080},
		"inbound|9080|http|reviews.bookinfo.svc.cluster.local": {dir: dirInbound, port: 9080, host: "reviews.bookinfo.svc.cluster.local"},
		"PassthroughCluster":                                   {dir: dirOutbound},
		"InboundPassthroughClusterIpv4":                        {dir: dirInbound},
		"BlackHoleCluster":                                     {dir: dirOutbound, blackhole: true},
		"my_backend":                                           {},
		"outbound|notaport||x":                                 {dir: dirOutbound, host: "x"},
		"":                                                     {},
	}
	for c, want := range tests {
		assert.Equal(t, want, parseCluster(c), c)
	}
}

func TestEndpoints(t *testing.T) {
	nd := &node{namespace: "shop", pod: "web-0", kind: "StatefulSet", workload: "web", hasIdentity: true}
	src, dst, svc := endpoints(nd, parseCluster("outbound|8080||cart.shop.svc.cluster.local"), "10.0.0.1", "10.0.0.2", "")
	assert.Equal(t, endpointKey{namespace: "shop", kind: "StatefulSet", name: "web"}, src)
	assert.Equal(t, endpointKey{namespace: "shop", kind: "Service", name: "cart"}, dst)
	assert.Equal(t, "cart", svc)

	src, dst, svc = endpoints(nd, parseCluster("inbound|8080||"), "10.0.0.1", "10.0.0.2", "web.shop:8080")
	assert.Equal(t, endpointKey{ip: "10.0.0.1"}, src)
	assert.Equal(t, endpointKey{namespace: "shop", kind: "StatefulSet", name: "web"}, dst)
	assert.Empty(t, svc)

	src, dst, svc = endpoints(nd, parseCluster("PassthroughCluster"), "10.0.0.1", "93.184.216.34", "")
	assert.Equal(t, endpointKey{namespace: "shop", kind: "StatefulSet", name: "web"}, src)
	assert.Equal(t, endpointKey{ip: "93.184.216.34"}, dst)
	assert.Empty(t, svc)

	// A gateway or plain Envoy: the destination from the authority.
	src, dst, svc = endpoints(nil, parseCluster("backend"), "1.2.3.4", "10.0.0.2", "api.example.com:443")
	assert.Equal(t, endpointKey{ip: "1.2.3.4"}, src)
	assert.Equal(t, endpointKey{kind: "Service", name: "api.example.com"}, dst)
	assert.Equal(t, "api.example.com", svc)
}

// An entry that never reached an upstream host still has the cluster's port as its
// destination port.
func TestDecodeCommon(t *testing.T) {
	nd := &node{namespace: "shop", pod: "web-0", kind: "StatefulSet", workload: "web", hasIdentity: true}
	c := &accesslogv3.AccessLogCommon{
		DownstreamRemoteAddress: sockAddr("10.0.0.1", 40000),
		UpstreamCluster:         "outbound|8080||cart.shop.svc.cluster.local",
		StartTime:               timestamppb.New(start),
		ResponseFlags:           &accesslogv3.ResponseFlags{NoHealthyUpstream: true},
	}
	ec := decodeCommon(nd, c, "")
	assert.Equal(t, entryKey{
		dir:   dirOutbound,
		src:   endpointKey{namespace: "shop", kind: "StatefulSet", name: "web"},
		dst:   endpointKey{namespace: "shop", kind: "Service", name: "cart"},
		port:  8080,
		flags: flagBits(c.ResponseFlags),
	}, ec.key)
	assert.Equal(t, entryCommon{c: c, nd: nd, key: ec.key, service: "cart", srcIP: "10.0.0.1", srcPort: 40000, t: start.UnixNano()}, ec)

	c.UpstreamRemoteAddress = sockAddr("10.0.0.2", 8443)
	ec = decodeCommon(nd, c, "")
	assert.Equal(t, uint32(8443), ec.key.port, "the upstream address wins")
	assert.Equal(t, "10.0.0.2", ec.dstIP)
}

func TestHostAndService(t *testing.T) {
	assert.Equal(t, "cart", hostOf("cart"))
	assert.Equal(t, "cart.shop", hostOf("cart.shop:8080"))
	assert.Equal(t, "::1", hostOf("[::1]:443"))
	assert.Equal(t, "::1", hostOf("[::1]"))
	for host, want := range map[string][2]string{
		"cart.shop.svc.cluster.local": {"cart", "shop"},
		"cart.shop.svc":               {"cart", "shop"},
		"cart.shop":                   {"cart", "shop"},
		"cart":                        {"cart", ""},
		"api.stripe.com":              {"api.stripe.com", ""},
	} {
		name, ns := serviceOf(host)
		assert.Equal(t, want, [2]string{name, ns}, host)
	}
}

func TestPathTemplate(t *testing.T) {
	for path, want := range map[string]string{
		"/":                          "/",
		"":                           "",
		"/healthz":                   "/healthz",
		"/api/v1/carts/42":           "/api/v1/carts/:id",
		"/api/v1/carts/42/":          "/api/v1/carts/:id",
		"/api/v1/carts/42?token=abc": "/api/v1/carts/:id",
		"/u/9f1c2a4e-7b3d-4c5e-8f9a-0b1c2d3e4f5a": "/u/:uuid",
		"/blob/0123456789abcdef0123":              "/blob/:id",
		"/v2/abc1":                                "/v2/abc1",
	} {
		assert.Equal(t, want, pathTemplate(path), path)
	}
	assert.Len(t, pathTemplate("/"+strings.Repeat("1/", 5000)), maxFieldLength)
}

func TestFlagBits(t *testing.T) {
	bits := flagBits(&accesslogv3.ResponseFlags{
		NoHealthyUpstream:     true,
		UnauthorizedDetails:   &accesslogv3.ResponseFlags_Unauthorized{},
		DownstreamRemoteReset: true,
	})
	var codes []string
	for i, c := range responseFlagCodes {
		if bits&(1<<i) != 0 {
			codes = append(codes, c)
		}
	}
	assert.Equal(t, []string{"UH", "UAEX", "DR"}, codes)
	assert.Zero(t, flagBits(nil))
}

func TestTruncate(t *testing.T) {
	assert.Equal(t, "ab", truncate("ab", 5))
	assert.Equal(t, "a", truncate("aé", 2), "never splits a character")
	assert.Equal(t, "aé", truncate("aéb", 3))
}

func TestHeaderFilter(t *testing.T) {
	f := newHeaderFilter(HeadersConfig{
		Request:          []string{"X-Request-ID", "authorization", "x-github-token", "referer"},
		Response:         []string{"content-type"},
		Redact:           []string{"authorization"},
		RedactContaining: []string{"token"},
		MaxValueLength:   4,
	})
	got := f.apply(
		map[string]string{"X-Request-Id": "abcdef", "authorization": "Bearer x", "x-github-token": "t", "cookie": "c"},
		map[string]string{"content-type": "json", "set-cookie": "s"},
		"https://example.com/",
	)
	assert.Equal(t, []header{
		{key: "http.request.header.authorization", value: "REDA"},
		{key: "http.request.header.x-github-token", value: "REDA"},
		{key: "http.request.header.x-request-id", value: "abcd"},
		{key: "http.request.header.referer", value: "http"},
		{key: "http.response.header.content-type", value: "json"},
	}, got)
}

// lateCache is an exact resolver whose cache has not synced until synced is set.
type lateCache struct {
	synced atomic.Bool
}

func (c *lateCache) HasSynced() bool { return c.synced.Load() }

func (c *lateCache) Owner(_, _ string) (podowner.Ref, bool) {
	if !c.synced.Load() {
		return podowner.Ref{}, false
	}
	return podowner.Ref{Kind: podowner.KindStatefulSet, Name: "ledger"}, true
}

// Envoy keeps a stream open for the sidecar's lifetime and identifies itself only on the
// first message, so a stream opened before the Kubernetes cache synced (every sidecar
// reconnects when the collector restarts) is identified again once it has.
func TestStreamIdentifiedAgainOnceTheCacheSynced(t *testing.T) {
	r, err := newReceiver(testConfig(), receivertest.NewNopSettings(metadata.Type), consumertest.NewNop())
	require.NoError(t, err)
	cache := &lateCache{}
	r.exact = cache
	id := istioNode(t, "10.244.3.7", "ledger-0", "bank", "")
	msg := func(id *alsv3.StreamAccessLogsMessage_Identifier) *alsv3.StreamAccessLogsMessage {
		return &alsv3.StreamAccessLogsMessage{Identifier: id, LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{
			HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{},
		}}
	}
	var st streamState
	r.receive(context.Background(), &st, msg(id))
	assert.Empty(t, st.nd.workload, "not known before the cache synced")
	r.receive(context.Background(), &st, msg(nil))
	assert.Empty(t, st.nd.workload)

	cache.synced.Store(true)
	r.receive(context.Background(), &st, msg(nil))
	assert.Equal(t, "ledger", st.nd.workload)
	assert.Equal(t, podowner.KindStatefulSet, st.nd.kind)
	assert.Equal(t, "ledger-0", st.nd.pod)
	assert.False(t, st.interim, "identified for good")
}
