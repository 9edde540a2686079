package crd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCRDIsCurrent regenerates the CRDs from api/kestrel exactly as `make crds` does (the
// pinned controller-gen) and compares them with the committed files.
func TestCRDIsCurrent(t *testing.T) {
	gen, err := filepath.Abs(filepath.Join("..", "..", ".tools", "bin", "controller-gen"))
	require.NoError(t, err)
	if _, err := os.Stat(gen); err != nil {
		t.Fatalf("controller-gen not found in .tools/bin: run `make tools` (or use `make test`, which installs it)")
	}
	out := t.TempDir()
	cmd := exec.Command(gen, "crd", "paths=./api/kestrel/...", "output:crd:artifacts:config="+out)
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "controller-gen failed: %s", stderr.String())
	generated, err := filepath.Glob(filepath.Join(out, "*.yaml"))
	require.NoError(t, err)
	require.Len(t, generated, 1)
	want, err := os.ReadFile(generated[0])
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Base(generated[0]))
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "config/crd is stale or was edited by hand: run `make crds`")
}
