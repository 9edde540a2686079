// Package gomemlimit gives the Go runtime of otelcol-kestrel a soft memory limit (GOMEMLIMIT)
// of Ratio of its container's memory limit (the cgroup's, v1 or v2), when it starts. Without
// one, the garbage collector lets the heap grow to twice what is live before it collects,
// whatever the container allows; with one, it collects more often as the process nears the
// limit instead of being OOM-killed. GOMEMLIMIT set in the environment wins; AUTOMEMLIMIT
// sets another ratio in (0, 1], or "off" switches this off. Without a container limit nothing
// changes.
//
// The kestrel_command extension imports it, so the distribution, which links every listed
// component whatever the configuration, sets the limit when the process starts.
package gomemlimit // import "github.com/kestrelai/otelcol-kestrel/internal/gomemlimit"

import (
	"log/slog"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// Ratio leaves a fifth of the container's limit to what the Go runtime does not count: the
// pages of the binary itself (some 40 MiB of a 77 MiB executable are touched at start) and
// the kernel's memory for sockets.
const Ratio = 0.8

func init() {
	// Errors (an unreadable cgroup, a bad AUTOMEMLIMIT) are logged and leave the runtime's
	// default.
	_, _ = set(memlimit.FromCgroup, slog.Default())
}

func set(provider memlimit.Provider, logger *slog.Logger) (int64, error) {
	return memlimit.Set(memlimit.WithRatio(Ratio), memlimit.WithProvider(provider), memlimit.WithLogger(logger))
}
