package devcloud

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
)

func adminCall(t *testing.T, s *Server, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, "http://"+s.AdminAddr()+path, strings.NewReader(body))
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

func TestAdminAPI(t *testing.T) {
	s := startServer(t, Config{AdminListen: "127.0.0.1:0"})
	require.NotEmpty(t, s.AdminAddr())

	code, body := adminCall(t, s, http.MethodGet, "/v1/status", "")
	require.Equal(t, http.StatusOK, code, string(body))
	assert.JSONEq(t, `{"operators":[],"renewals":0,"duplicates":0}`, string(body))

	code, body = adminCall(t, s, http.MethodPost, "/v1/requests?type=KubernetesAPIRequest", `{"apiPaths":["version"]}`)
	assert.Equal(t, http.StatusNotFound, code, string(body))
	assert.Contains(t, string(body), "unknown or disconnected operator")

	c := newClient(t, s)
	control, err := c.stream.StreamControl(c.ctx)
	require.NoError(t, err)
	answerK8s(t, func() (proto.Message, error) { return control.Recv() }, func(r *cloudv1.KubernetesAPIResponse) error {
		return control.Send(&cloudv1.StreamControlRequest{Request: &cloudv1.StreamControlRequest_KubernetesApiResponse{KubernetesApiResponse: r}})
	})
	require.NoError(t, s.WaitStatus(testCtx(t), func(st Status) bool { return len(st.Operators) == 1 }))

	code, body = adminCall(t, s, http.MethodGet, "/v1/status", "")
	require.Equal(t, http.StatusOK, code)
	var st Status
	require.NoError(t, json.Unmarshal(body, &st))
	require.Len(t, st.Operators, 1)
	assert.Equal(t, operatorID, st.Operators[0].ID)
	assert.True(t, st.Operators[0].Streams[cloudconn.StreamControl].Open)

	code, body = adminCall(t, s, http.MethodPost, "/v1/requests?operator="+operatorID+"&type=KubernetesAPIRequest", `{"apiPaths":["api/v1/nodes"]}`)
	require.Equal(t, http.StatusOK, code, string(body))
	resp := &cloudv1.KubernetesAPIResponse{}
	require.NoError(t, protojson.Unmarshal(body, resp))
	assert.Equal(t, "paths=api/v1/nodes", resp.GetResults()[0].GetResponseData())

	errorCases := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"missing type", http.MethodPost, "/v1/requests", "{}", http.StatusBadRequest, "missing type"},
		{"unknown type", http.MethodPost, "/v1/requests?type=NoSuchRequest", "{}", http.StatusBadRequest, "unknown request type"},
		{"envelope is not a tool request", http.MethodPost, "/v1/requests?type=StreamDataRequest", "{}", http.StatusBadRequest, "unknown request type"},
		{"response type", http.MethodPost, "/v1/requests?type=KubernetesAPIResponse", "{}", http.StatusBadRequest, "unknown request type"},
		{"bad body", http.MethodPost, "/v1/requests?type=KubernetesAPIRequest", `{"apiPaths":`, http.StatusBadRequest, "not a valid cloud.v1.KubernetesAPIRequest"},
		{"unknown field", http.MethodPost, "/v1/requests?type=KubernetesAPIRequest", `{"nope":1}`, http.StatusBadRequest, "not a valid"},
		{"bad timeout", http.MethodPost, "/v1/requests?type=KubernetesAPIRequest&timeout=soon", "{}", http.StatusBadRequest, "bad timeout"},
		{"unknown operator", http.MethodPost, "/v1/requests?type=KubernetesAPIRequest&operator=x", "{}", http.StatusNotFound, "unknown or disconnected operator"},
		{"no answer", http.MethodPost, "/v1/requests?type=MetricsQueryRequest&timeout=50ms", "", http.StatusGatewayTimeout, "deadline exceeded"},
		{"wrong method", http.MethodGet, "/v1/requests?type=KubernetesAPIRequest", "", http.StatusMethodNotAllowed, ""},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := adminCall(t, s, tc.method, tc.path, tc.body)
			assert.Equal(t, tc.code, code, string(body))
			assert.Contains(t, string(body), tc.msg)
		})
	}
	require.NoError(t, control.CloseSend())
}

func TestRequestTypes(t *testing.T) {
	assert.ElementsMatch(t, []string{
		"KubernetesAPIRequest", "ShellCommandRequest", "YamlDryRunRequest", "YamlApplyRequest",
		"CertificateRenewalRequest", "OperatorRestartRequest", "MetricsQueryRequest", "DatadogQueryRequest",
	}, RequestTypes())
}

// FuzzAdminRequestBody feeds arbitrary bytes as the protojson body of every request type.
// No operator is connected, so a body that parses ends in 404; nothing may panic.
func FuzzAdminRequestBody(f *testing.F) {
	f.Add("KubernetesAPIRequest", []byte(`{"apiPaths":["api/v1/pods"],"timeoutSeconds":5}`))
	f.Add("ShellCommandRequest", []byte(`{"commands":["ls"]}`))
	f.Add("MetricsQueryRequest", []byte(`{"requestId":"\u0000","maxSeries":-1}`))
	f.Add("DatadogQueryRequest", []byte(`{"queryType":"ARGOCD_SYNC_APP"}`))
	f.Add("CertificateRenewalRequest", []byte(`[1,2]`))
	f.Add("YamlApplyRequest", []byte{0xff, '{'})
	dir := f.TempDir()
	if err := GenerateCerts(dir, CertOptions{}); err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{CertsDir: dir}, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	h := s.adminHandler()
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/requests?timeout=1ms&type="+url.QueryEscape(typ), strings.NewReader(string(body)))
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("unexpected status %d: %s", rec.Code, rec.Body.String())
		}
	})
}
