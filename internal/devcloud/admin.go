package devcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
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
//	POST /v1/requests?operator=ID&type=KubernetesAPIRequest[&timeout=30s][&follow=true]  body: protojson request
//	POST /v1/policies?operator=ID&stream=data|control[&timeout=30s]  body: protojson NetworkPolicyWithError
//
// With follow=true the answer is newline-delimited JSON, one line per response with the
// request's id, written as they arrive, until one that is not pending.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("POST /v1/requests", s.handleRequest)
	mux.HandleFunc("POST /v1/policies", s.handlePolicy)
	return mux
}

func adminTimeout(q url.Values) (time.Duration, error) {
	v := q.Get("timeout")
	if v == "" {
		return defaultAdminTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad timeout %q", v)
	}
	return d, nil
}

func (s *Server) handlePolicy(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	stream := cloudconn.Stream(q.Get("stream"))
	if stream == "" {
		stream = cloudconn.StreamData
	}
	timeout, err := adminTimeout(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading body: %w", err))
		return
	}
	var push cloudv1.NetworkPolicyWithError
	if err := protojson.Unmarshal(body, &push); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body is not a valid NetworkPolicyWithError: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	ack, err := s.PushPolicy(ctx, q.Get("operator"), stream, &push)
	if err != nil {
		writeError(w, errorCode(err), err)
		return
	}
	writeProto(w, ack)
}

func errorCode(err error) int {
	switch {
	case errors.Is(err, ErrUnknownOperator):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	out, err := protojson.Marshal(m)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out) //nolint:gosec // protojson served as application/json with nosniff, never as HTML
}

func (s *Server) handleRequest(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mt, err := requestType(q.Get("type"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	timeout, err := adminTimeout(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
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
	if q.Get("follow") == "true" {
		s.follow(ctx, w, q.Get("operator"), req)
		return
	}
	resp, err := s.SendRequest(ctx, q.Get("operator"), req)
	if err != nil {
		writeError(w, errorCode(err), err)
		return
	}
	s.logger.Info("admin request answered", zap.String("type", string(mt.Descriptor().Name())))
	writeProto(w, resp)
}

// follow writes every response as one JSON line as it arrives. Errors before the first
// response get an ordinary error status; later ones end the stream with an error line.
func (s *Server) follow(ctx context.Context, w http.ResponseWriter, operator string, req proto.Message) {
	started := false
	err := s.SendRequestFollow(ctx, operator, req, func(m proto.Message) error {
		out, err := protojson.Marshal(m)
		if err != nil {
			return err
		}
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if _, err := w.Write(append(out, '\n')); err != nil {
			return err
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		return nil
	})
	switch {
	case err == nil:
	case !started:
		writeError(w, errorCode(err), err)
	default:
		line, _ := json.Marshal(map[string]string{"error": err.Error()})
		_, _ = w.Write(append(line, '\n'))
	}
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
