package gomemlimit

import (
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// restoreLimit puts back the runtime's memory limit when the test ends.
func restoreLimit(t *testing.T) {
	t.Helper()
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
}

func TestLimitIsRatioOfTheContainers(t *testing.T) {
	restoreLimit(t)
	t.Setenv("GOMEMLIMIT", "")
	got, err := set(memlimit.Limit(100<<20), quiet)
	require.NoError(t, err)
	assert.InDelta(t, 80<<20, got, 1)
	assert.Equal(t, got, debug.SetMemoryLimit(-1))
}

func TestNoContainerLimitChangesNothing(t *testing.T) {
	restoreLimit(t)
	t.Setenv("GOMEMLIMIT", "")
	_, err := set(func() (uint64, error) { return 0, memlimit.ErrNoLimit }, quiet)
	require.NoError(t, err)
	assert.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(-1))
}

func TestEnvironmentWins(t *testing.T) {
	restoreLimit(t)
	before := debug.SetMemoryLimit(-1)
	t.Setenv("GOMEMLIMIT", "50MiB")
	_, err := set(memlimit.Limit(128<<20), quiet)
	require.NoError(t, err)
	assert.Equal(t, before, debug.SetMemoryLimit(-1), "GOMEMLIMIT from the environment is the runtime's business")

	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("AUTOMEMLIMIT", "0.5")
	got, err := set(memlimit.Limit(100<<20), quiet)
	require.NoError(t, err)
	assert.Equal(t, int64(50<<20), got)

	t.Setenv("AUTOMEMLIMIT", "off")
	debug.SetMemoryLimit(before)
	_, err = set(memlimit.Limit(100<<20), quiet)
	require.NoError(t, err)
	assert.Equal(t, before, debug.SetMemoryLimit(-1))

	t.Setenv("AUTOMEMLIMIT", "two")
	_, err = set(memlimit.Limit(100<<20), quiet)
	require.ErrorContains(t, err, "AUTOMEMLIMIT")
}
