package devcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

const (
	defaultAdminTimeout = 30 * time.Second
	maxAdminBody        = 16 << 20
)

// adminHandler serves the loopback admin API:
//
//	GET  /v1/status
//	POST /v1/requests?operator=ID&type=KubernetesAPIRequest[&timeout=30s]  body: protojson request
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("POST /v1/requests", s.handleRequest)
	return mux
}

func (s *Server) handleRequest(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mt, err := requestType(q.Get("type"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	timeout := defaultAdminTimeout
	if v := q.Get("timeout"); v != "" {
		if timeout, err = time.ParseDuration(v); err != nil || timeout <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("bad timeout %q", v))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading body: %w", err))
		return
	}
	req := mt.New().Interface()
	if len(bytes.TrimSpace(body)) > 0 {
		if err := protojson.Unmarshal(body, req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("body is not a valid %s: %w", mt.Descriptor().FullName(), err))
			return
		}
	}

	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	resp, err := s.SendRequest(ctx, q.Get("operator"), req)
	switch {
	case errors.Is(err, ErrUnknownOperator):
		writeError(w, http.StatusNotFound, err)
		return
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, err)
		return
	case err != nil:
		writeError(w, http.StatusBadGateway, err)
		return
	}
	out, err := protojson.Marshal(resp)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	s.logger.Info("admin request answered", zap.String("type", string(mt.Descriptor().Name())))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out) //nolint:gosec // protojson served as application/json with nosniff, never as HTML
}

// requestType resolves a cloud.v1 tool request by its short name: a *Request message
// that a cloud can send (a member of StreamControlResponse or StreamDataResponse) and that
// carries a request_id to match the answer.
func requestType(name string) (protoreflect.MessageType, error) {
	if name == "" {
		return nil, errors.New("missing type parameter (e.g. type=KubernetesAPIRequest)")
	}
	full := protoreflect.FullName("cloud.v1." + name)
	mt, err := protoregistry.GlobalTypes.FindMessageByName(full)
	if err != nil || !strings.HasSuffix(name, "Request") || requestIDField(mt.Descriptor()) == nil ||
		(!envelope.Response(cloudconn.StreamControl).Has(full) && !envelope.Response(cloudconn.StreamData).Has(full)) {
		return nil, fmt.Errorf("unknown request type %q (want a cloud.v1 tool request such as KubernetesAPIRequest)", name)
	}
	return mt, nil
}

// RequestTypes lists the request type names the admin API accepts.
func RequestTypes() []string {
	var names []string
	fields := (&cloudv1.StreamDataResponse{}).ProtoReflect().Descriptor().Oneofs().Get(0).Fields()
	for i := range fields.Len() {
		if md := fields.Get(i).Message(); md != nil {
			if _, err := requestType(string(md.Name())); err == nil {
				names = append(names, string(md.Name()))
			}
		}
	}
	return names
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
