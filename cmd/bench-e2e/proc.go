package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// usage is what /proc tells about a process at one moment.
type usage struct {
	CPU     time.Duration // user + system time
	PeakRSS int64         // bytes (VmHWM)
	RSS     int64         // bytes (VmRSS)
	RSSAnon int64         // bytes (RssAnon: the heap and stacks, without the executable's pages)
}

// procReader reads a process's CPU time and memory from /proc.
type procReader struct {
	pid  int
	tick time.Duration // one clock tick (USER_HZ), the unit of /proc/<pid>/stat times
}

func newProcReader(pid int) (*procReader, error) {
	auxv, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return nil, err
	}
	hz, err := clockTicks(auxv)
	if err != nil {
		return nil, err
	}
	return &procReader{pid: pid, tick: time.Second / time.Duration(hz)}, nil //nolint:gosec // AT_CLKTCK: 100 on Linux
}

func (p *procReader) read() (usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return usage{}, err
	}
	ticks, err := cpuTicks(stat)
	if err != nil {
		return usage{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return usage{}, err
	}
	hwm, err := statusBytes(status, "VmHWM")
	if err != nil {
		return usage{}, err
	}
	rss, err := statusBytes(status, "VmRSS")
	if err != nil {
		return usage{}, err
	}
	anon, err := statusBytes(status, "RssAnon")
	if err != nil {
		return usage{}, err
	}
	return usage{CPU: time.Duration(ticks) * p.tick, PeakRSS: hwm, RSS: rss, RSSAnon: anon}, nil //nolint:gosec // one process's clock ticks, far below 2^63
}

// atClkTck is the auxiliary vector entry that holds USER_HZ (linux/auxvec.h).
const atClkTck = 17

// clockTicks returns the clock ticks per second from an auxiliary vector (/proc/self/auxv
// of a 64-bit process): what sysconf(_SC_CLK_TCK) reads, without cgo.
func clockTicks(auxv []byte) (uint64, error) {
	for len(auxv) >= 16 {
		key, val := binary.NativeEndian.Uint64(auxv), binary.NativeEndian.Uint64(auxv[8:])
		auxv = auxv[16:]
		if key == atClkTck && val > 0 {
			return val, nil
		}
		if key == 0 {
			break
		}
	}
	return 0, errors.New("no AT_CLKTCK in the auxiliary vector")
}

// cpuTicks returns utime + stime (fields 14 and 15) of a /proc/<pid>/stat line. The command
// name (field 2) is in parentheses and may itself contain spaces and parentheses, so fields
// are counted from the last ')'.
func cpuTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat: no command name")
	}
	// After ") " come field 3 (state) onwards; utime is field 14.
	f := strings.Fields(string(stat[i+1:]))
	const utime = 14 - 3
	if len(f) <= utime+1 {
		return 0, fmt.Errorf("malformed stat: %d fields after the command name", len(f))
	}
	u, err := strconv.ParseUint(f[utime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed stat utime: %w", err)
	}
	s, err := strconv.ParseUint(f[utime+1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed stat stime: %w", err)
	}
	return u + s, nil
}

// statusBytes returns a "Name:   123 kB" line of /proc/<pid>/status in bytes.
func statusBytes(status []byte, name string) (int64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, name+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("malformed %s line %q", name, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed %s line %q: %w", name, line, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no %s in status", name)
}
