package devcloud

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
)

// recordLine is one line of a RecordDir file.
type recordLine struct {
	Time     time.Time        `json:"time"`
	Operator string           `json:"operator"`
	Stream   cloudconn.Stream `json:"stream"`
	Message  json.RawMessage  `json:"message"`
	// Session and Sequence let a restarted devcloud rebuild its acknowledged sequences.
	Session  string `json:"session,omitempty"`
	Sequence uint64 `json:"sequence,omitempty"`
}

// recorder appends records to <dir>/<stream>.jsonl, one write per line so that every
// line reaches the file as soon as it is received.
type recorder struct {
	dir   string
	mu    sync.Mutex
	files map[cloudconn.Stream]*os.File
}

func newRecorder(dir string) *recorder {
	return &recorder{dir: dir, files: map[cloudconn.Stream]*os.File{}}
}

func (r *recorder) write(rec Record) error {
	msg, err := protojson.Marshal(rec.Message)
	if err != nil {
		return err
	}
	// json.Marshal compacts the RawMessage, so the line has no embedded newlines.
	line, err := json.Marshal(recordLine{
		Time: rec.Time, Operator: rec.Operator, Stream: rec.Stream, Message: msg,
		Session: rec.Session, Sequence: rec.Sequence,
	})
	if err != nil {
		return err
	}
	line = append(line, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.files[rec.Stream]
	if f == nil {
		f, err = os.OpenFile(filepath.Join(r.dir, string(rec.Stream)+".jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		r.files[rec.Stream] = f
	}
	_, err = f.Write(line)
	return err
}

func (r *recorder) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for k, f := range r.files {
		errs = append(errs, f.Close())
		delete(r.files, k)
	}
	return errors.Join(errs...)
}
