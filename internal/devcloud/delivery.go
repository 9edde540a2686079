package devcloud

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

// maxSessionLen bounds the header value kept per stream; longer ones are not acknowledged.
const maxSessionLen = 128

// deliveryKey names one sequence space.
type deliveryKey struct {
	operator string
	kind     cloudconn.Stream
	session  string
}

// delivery is what devcloud keeps of one sequence space; guarded by Server.mu.
type delivery struct {
	acked      uint64 // highest sequence recorded
	duplicates int64  // numbered messages at or below acked that arrived again
}

// sessionOf returns the stream's delivery session, "" when the operator sent none or
// the server plays one without acknowledgements.
func (s *Server) sessionOf(st grpc.ServerStream) string {
	if s.cfg.NoAcks {
		return ""
	}
	md, _ := metadata.FromIncomingContext(st.Context())
	v := md.Get(envelope.SessionHeader)
	if len(v) != 1 || len(v[0]) > maxSessionLen {
		return ""
	}
	return v[0]
}

// loadDeliveries rebuilds the acknowledged sequences from the record files of an earlier
// run, so that a restarted devcloud keeps filtering what it had already recorded. A line
// cut short by a crash is skipped: its message was never acknowledged.
func loadDeliveries(dir string) (map[deliveryKey]*delivery, error) {
	out := map[deliveryKey]*delivery{}
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	for _, name := range files {
		if err := loadDeliveryFile(name, out); err != nil {
			return nil, fmt.Errorf("devcloud: reading %s: %w", name, err)
		}
	}
	return out, nil
}

func loadDeliveryFile(name string, out map[deliveryKey]*delivery) error {
	f, err := os.Open(name) //nolint:gosec // a file of the record directory from the devcloud configuration
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	// Lines hold whole messages, up to the gRPC message limit and then some for JSON.
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var line struct {
			Operator string           `json:"operator"`
			Stream   cloudconn.Stream `json:"stream"`
			Session  string           `json:"session"`
			Sequence uint64           `json:"sequence"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Session == "" || line.Sequence == 0 {
			continue
		}
		k := deliveryKey{operator: line.Operator, kind: line.Stream, session: line.Session}
		d := out[k]
		if d == nil {
			d = &delivery{}
			out[k] = d
		}
		d.acked = max(d.acked, line.Sequence)
	}
	return sc.Err()
}
