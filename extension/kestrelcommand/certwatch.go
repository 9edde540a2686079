package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"crypto/sha256"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// certSettle coalesces the burst of events one rotation produces (a Kubernetes Secret
// update swaps a ..data symlink and removes the old timestamped directory; a manual
// update writes cert and key one after the other).
const certSettle = 100 * time.Millisecond

// certWatcher watches the directories of the certificate files, because Kubernetes
// Secret volumes replace files by swapping a symlink and a watch on the file itself
// would be lost. It compares content hashes so unrelated events cause nothing.
type certWatcher struct {
	files  []string
	logger *zap.Logger
	// check loads the new files; a nil result means they form a usable TLS config.
	check     func() error
	onRotated func()
	onInvalid func(error)

	hashes map[string][sha256.Size]byte
}

func newCertWatcher(files []string, logger *zap.Logger, check func() error, onRotated func(), onInvalid func(error)) *certWatcher {
	w := &certWatcher{files: files, logger: logger, check: check, onRotated: onRotated, onInvalid: onInvalid}
	w.hashes = w.hashFiles()
	return w
}

// hashFiles hashes every watched file; a missing or unreadable file hashes as empty
// content so that its appearance counts as a change.
func (w *certWatcher) hashFiles() map[string][sha256.Size]byte {
	h := make(map[string][sha256.Size]byte, len(w.files))
	for _, f := range w.files {
		b, _ := os.ReadFile(filepath.Clean(f))
		h[f] = sha256.Sum256(b)
	}
	return h
}

// run watches until ctx is done. A watcher that cannot be set up disables hot rotation
// with a warning; the connection itself is unaffected.
func (w *certWatcher) run(ctx context.Context) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		w.logger.Warn("Cannot watch the TLS files; certificate rotation needs a restart", zap.Error(err))
		return
	}
	defer fw.Close()
	var dirs []string
	for _, f := range w.files {
		if d := filepath.Dir(f); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		if err := fw.Add(d); err != nil {
			w.logger.Warn("Cannot watch a TLS directory; certificate rotation needs a restart", zap.String("dir", d), zap.Error(err))
			return
		}
	}
	settle := time.NewTimer(certSettle)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			w.logger.Warn("TLS file watch error", zap.Error(err))
		case _, ok := <-fw.Events:
			if !ok {
				return
			}
			settle.Reset(certSettle)
		case <-settle.C:
			w.reconcile()
		}
	}
}

// reconcile acts on a real content change: a loadable set triggers a reconnect so the
// next handshake presents it; a broken set is reported and the connection is kept.
func (w *certWatcher) reconcile() {
	next := w.hashFiles()
	if maps.Equal(next, w.hashes) {
		return
	}
	w.hashes = next
	if err := w.check(); err != nil {
		w.logger.Error("The changed TLS files do not load; keeping the current connection", zap.Error(err))
		w.onInvalid(err)
		return
	}
	w.logger.Info("TLS files changed; reconnecting with the new client certificate")
	w.onRotated()
}
