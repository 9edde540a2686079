package testutil // import "github.com/kestrelai/otelcol-kestrel/internal/testutil"

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SecretVolume is a directory laid out the way the kubelet mounts a Secret: each key is a
// symlink KEY -> ..data/KEY, ..data is a symlink to a timestamped directory, and an update
// writes a new timestamped directory, swaps ..data atomically (rename of ..data_tmp) and
// removes the old directory. Tests use it to play the kubelet's refresh of a mounted Secret.
type SecretVolume struct {
	// Dir is the mount point.
	Dir string
	tb  testing.TB
}

// NewSecretVolume mounts data in a new temporary directory.
func NewSecretVolume(tb testing.TB, data map[string][]byte) *SecretVolume {
	tb.Helper()
	v := &SecretVolume{Dir: tb.TempDir(), tb: tb}
	v.Update(data)
	return v
}

// Path is where key's file appears.
func (v *SecretVolume) Path(key string) string { return filepath.Join(v.Dir, key) }

// Update replaces the volume's content with data as the kubelet's atomic writer does.
func (v *SecretVolume) Update(data map[string][]byte) {
	v.tb.Helper()
	old, _ := os.Readlink(filepath.Join(v.Dir, "..data"))
	ts, err := os.MkdirTemp(v.Dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	require.NoError(v.tb, err)
	for k, b := range data {
		require.NoError(v.tb, os.WriteFile(filepath.Join(ts, k), b, 0o600))
	}
	tmp := filepath.Join(v.Dir, "..data_tmp")
	require.NoError(v.tb, os.Symlink(filepath.Base(ts), tmp))
	require.NoError(v.tb, os.Rename(tmp, filepath.Join(v.Dir, "..data")))
	for k := range data {
		if _, err := os.Lstat(v.Path(k)); os.IsNotExist(err) {
			require.NoError(v.tb, os.Symlink(filepath.Join("..data", k), v.Path(k)))
		}
	}
	if old != "" {
		require.NoError(v.tb, os.RemoveAll(filepath.Join(v.Dir, old)))
	}
}
