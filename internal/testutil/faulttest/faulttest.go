// Package faulttest is what the fault tests share (test/e2e in-process, test/soak with the
// built binaries as separate processes): an OTLP/gRPC sender of numbered Kubernetes events
// that retries what the collector refuses, as an OTLP exporter does, and the tally of sent,
// accepted, delivered, lost and duplicated records.
package faulttest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// uidPrefix starts the uid of every event the Sender sends; the number follows.
const uidPrefix = "fault-"

// Sender sends numbered Kubernetes events over OTLP/gRPC at a fixed rate, in requests of
// PerRequest records, one request in flight. A request that fails is sent again until it is
// accepted (after a short pause), so a refusal or an unreachable collector delays the sender
// but loses nothing on its side; new requests wait meanwhile.
type Sender struct {
	Rate       int // records per second
	PerRequest int

	client plogotlp.GRPCClient
	conn   *grpc.ClientConn

	mu       sync.Mutex
	sent     int // records of requests tried at least once; uids 0..sent-1
	accepted int // records of requests answered OK
	refused  int // failed attempts (each retried)
	codes    map[codes.Code]int
}

// NewSender connects (lazily) to the OTLP/gRPC address.
func NewSender(addr string, rate, perRequest int) (*Sender, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &Sender{Rate: rate, PerRequest: perRequest, client: plogotlp.NewGRPCClient(conn), conn: conn, codes: map[codes.Code]int{}}, nil
}

// Close closes the connection.
func (s *Sender) Close() error { return s.conn.Close() }

// Run sends until ctx ends; the request in flight then is finished (retried until accepted)
// within drain, so that every record sent is either accepted or reported unaccepted.
func (s *Sender) Run(ctx context.Context, drain time.Duration) {
	interval := time.Duration(float64(time.Second) * float64(s.PerRequest) / float64(s.Rate))
	next := time.Now()
	for ctx.Err() == nil {
		s.mu.Lock()
		first := s.sent
		s.sent += s.PerRequest
		s.mu.Unlock()
		s.deliver(ctx, drain, first)
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
	}
}

// deliver sends the request of records first.. until it is accepted; after ctx ends it
// keeps trying for at most drain.
func (s *Sender) deliver(ctx context.Context, drain time.Duration, first int) {
	req := Events(first, s.PerRequest)
	var deadline time.Time
	for {
		if ctx.Err() != nil && deadline.IsZero() {
			deadline = time.Now().Add(drain)
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return
		}
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := s.client.Export(rctx, req)
		cancel()
		s.mu.Lock()
		if err == nil {
			s.accepted += s.PerRequest
			s.mu.Unlock()
			return
		}
		s.refused++
		s.codes[status.Code(err)]++
		s.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

// Counts returns the records sent and accepted so far, and the failed attempts by code.
func (s *Sender) Counts() (sent, accepted, refused int, byCode map[codes.Code]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byCode = map[codes.Code]int{}
	for k, v := range s.codes {
		byCode[k] = v
	}
	return s.sent, s.accepted, s.refused, byCode
}

// Events is one OTLP request of n Kubernetes warning events with uids fault-first … fault-(first+n-1).
func Events(first, n int) plogotlp.ExportRequest {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := first; i < first+n; i++ {
		lr := lrs.AppendEmpty()
		lr.SetEventName(schema.EventK8sEvent)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Unix(1767225900, 0).Add(time.Duration(i) * time.Millisecond)))
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("Warning")
		lr.Body().SetStr(fmt.Sprintf("Back-off restarting failed container (%d)", i))
		a := lr.Attributes()
		a.PutStr(schema.AttrK8sEventUID, uidPrefix+strconv.Itoa(i))
		a.PutStr(schema.AttrK8sEventName, fmt.Sprintf("checkout-abc.%d", i))
		a.PutStr(schema.AttrK8sEventReason, "BackOff")
		a.PutStr(schema.AttrK8sNamespaceName, "shop")
		a.PutStr(schema.AttrK8sObjectKind, "Pod")
		a.PutStr(schema.AttrK8sObjectName, "checkout-7d9f8b6c5-x2x4k")
		a.PutStr(schema.AttrK8sEventType, "Warning")
		a.PutInt(schema.AttrK8sEventCount, 3)
	}
	return plogotlp.NewExportRequestFromLogs(ld)
}

// Delivered counts the Sender's events among devcloud records by number.
func Delivered(recs []devcloud.Record) map[int]int {
	out := map[int]int{}
	for _, r := range recs {
		countEvent(out, r.Payload)
	}
	return out
}

func countEvent(out map[int]int, payload any) {
	ev, ok := payload.(*cloudv1.KubernetesEvent)
	if !ok {
		return
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(ev.GetUid(), uidPrefix)); err == nil && strings.HasPrefix(ev.GetUid(), uidPrefix) {
		out[n]++
	}
}

// DeliveredInRecordDir counts the Sender's events in the record files of a devcloud run
// with --record (a separate process), over all its restarts. A last line cut short by a
// crash is skipped: devcloud never acknowledged it.
func DeliveredInRecordDir(dir string) (map[int]int, error) {
	out := map[int]int{}
	for _, kind := range []cloudconn.Stream{cloudconn.StreamData, cloudconn.StreamEvents} {
		f, err := os.Open(filepath.Join(dir, string(kind)+".jsonl")) //nolint:gosec // the test's own record directory
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
		for sc.Scan() {
			var line struct {
				Message json.RawMessage `json:"message"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			env := envelope.Request(kind).New()
			if protojson.Unmarshal(line.Message, env) != nil {
				continue
			}
			countEvent(out, envelope.Unwrap(env))
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Tally is what a fault test reports.
type Tally struct {
	Sent, Accepted, Refused int // records; Refused counts failed attempts, each retried
	Delivered               int // distinct accepted records that arrived
	Lost                    int // accepted records that did not arrive
	Duplicated              int // extra copies that arrived
	Filtered                int64
}

// Count builds the tally of a Sender's run from what arrived; filtered is the cloud's own
// count of duplicates it dropped by sequence.
func Count(s *Sender, delivered map[int]int, filtered int64) Tally {
	sent, accepted, refused, _ := s.Counts()
	t := Tally{Sent: sent, Accepted: accepted, Refused: refused, Filtered: filtered}
	for n, c := range delivered {
		if n < accepted {
			t.Delivered++
		}
		t.Duplicated += c - 1
	}
	t.Lost = accepted - t.Delivered
	return t
}

// LostOnes lists up to max accepted records that did not arrive, for a failure message.
func LostOnes(s *Sender, delivered map[int]int, limit int) []int {
	_, accepted, _, _ := s.Counts()
	var out []int
	for n := 0; n < accepted && len(out) < limit; n++ {
		if delivered[n] == 0 {
			out = append(out, n)
		}
	}
	return out
}

func (t Tally) String() string {
	return fmt.Sprintf("sent %d, accepted %d (refused attempts %d), delivered %d, lost %d, duplicated %d (filtered by sequence in the cloud: %d)",
		t.Sent, t.Accepted, t.Refused, t.Delivered, t.Lost, t.Duplicated, t.Filtered)
}
