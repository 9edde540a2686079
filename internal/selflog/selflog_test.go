package selflog

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func newLogger(b *Buffer, sourceLevel zapcore.Level) (*zap.Logger, *observer.ObservedLogs) {
	source, logs := observer.New(sourceLevel)
	return zap.New(source, zap.WrapCore(WrapCore(b, zapcore.WarnLevel))), logs
}

// Warnings and errors are captured with their fields, the logger's name and fields added
// by With; info and debug are not; the source core still gets what its level allows.
func TestCoreCapturesWarningsAndErrors(t *testing.T) {
	b := NewBuffer()
	logger, stderr := newLogger(b, zapcore.InfoLevel)
	c := logger.Named("hubble").With(zap.String("otelcol.component.id", "hubble"), zap.Error(errors.New("from with")))
	c.Debug("debug")
	c.Info("info")
	c.Warn("relay unreachable", zap.Int("attempt", 3))
	c.Error("export failed", zap.Error(errors.New("deadline exceeded")))

	assert.Equal(t, 3, stderr.Len(), "the source core is unchanged")
	got := b.Peek(10)
	require.Len(t, got, 2)
	assert.Equal(t, zapcore.WarnLevel, got[0].Level)
	assert.Contains(t, got[0].Message, "hubble")
	assert.Contains(t, got[0].Message, "relay unreachable")
	assert.Contains(t, got[0].Message, `"attempt": 3`)
	assert.Contains(t, got[0].Message, `"otelcol.component.id": "hubble"`)
	assert.Equal(t, "from with", got[0].Error)
	assert.Equal(t, zapcore.ErrorLevel, got[1].Level)
	assert.Equal(t, "deadline exceeded", got[1].Error)
	assert.False(t, got[1].Time.IsZero())
	assert.Zero(t, b.Dropped())
}

// A source core that shows only errors (or samples) does not hide warnings from the cloud.
func TestCoreCapturesBelowTheSourceLevel(t *testing.T) {
	b := NewBuffer()
	logger, stderr := newLogger(b, zapcore.ErrorLevel)
	logger.Warn("w")
	assert.Zero(t, stderr.Len())
	assert.Equal(t, 1, b.Len())
}

// A storm is cut to the burst (the rate adds little in the time the loop takes) and every
// refused entry is counted; a full buffer counts too.
func TestLimiterAndCapacityCount(t *testing.T) {
	b := NewBuffer()
	b.SetLimits(1, 50, 1000)
	logger, _ := newLogger(b, zapcore.ErrorLevel)
	for i := range 10_000 {
		logger.Warn("storm", zap.Int("i", i))
	}
	held := b.Len()
	assert.GreaterOrEqual(t, held, 50)
	assert.LessOrEqual(t, held, 52)
	assert.Equal(t, int64(10_000-held), b.Dropped())

	full := NewBuffer()
	full.SetLimits(1e9, 1000, 10)
	logger, _ = newLogger(full, zapcore.ErrorLevel)
	for range 25 {
		logger.Error("e")
	}
	assert.Equal(t, 10, full.Len())
	assert.Equal(t, int64(15), full.Dropped())
}

func TestPeekDiscard(t *testing.T) {
	b := NewBuffer()
	logger, _ := newLogger(b, zapcore.ErrorLevel)
	for i := range 5 {
		logger.Warn(fmt.Sprint(i))
	}
	select {
	case <-b.Ready():
	default:
		t.Fatal("Ready not signalled")
	}
	first := b.Peek(3)
	require.Len(t, first, 3)
	b.Discard(3)
	rest := b.Peek(10)
	require.Len(t, rest, 2)
	assert.Contains(t, rest[0].Message, "3")
	b.Discard(10)
	assert.Zero(t, b.Len())
}

func TestLongMessagesAreCut(t *testing.T) {
	b := NewBuffer()
	logger, _ := newLogger(b, zapcore.ErrorLevel)
	logger.Warn(strings.Repeat("é", MaxMessageBytes))
	got := b.Peek(1)
	require.Len(t, got, 1)
	assert.LessOrEqual(t, len(got[0].Message), MaxMessageBytes)
	assert.True(t, strings.HasSuffix(got[0].Message, "é"), "no half rune at the end")
}

func TestRegistry(t *testing.T) {
	res := pcommon.NewResource()
	res.Attributes().PutStr("service.instance.id", "a")
	other := pcommon.NewResource()
	other.Attributes().PutStr("service.instance.id", "b")
	b := NewBuffer()
	unregister := Register(res, b)
	assert.Same(t, b, Lookup(res))
	assert.Nil(t, Lookup(other), "two collectors in one process keep their own buffers")
	unregister()
	assert.Nil(t, Lookup(res))
	assert.True(t, b.Claim(), "the first consumer")
	assert.False(t, b.Claim(), "a second kestrel_command does not consume too")
}

// Concurrent loggers and one consumer (run with -race).
func TestConcurrentUse(t *testing.T) {
	b := NewBuffer()
	b.SetLimits(1e6, 1000, 1000)
	logger, _ := newLogger(b, zapcore.ErrorLevel)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			l := logger.With(zap.Int("g", g))
			for i := range 2000 {
				l.Warn("w", zap.Int("i", i))
			}
		})
	}
	consumed := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		case <-time.After(time.Millisecond):
		}
		n := len(b.Peek(100))
		b.Discard(n)
		consumed += n
	}
	consumed += b.Len()
	assert.Equal(t, int64(8000), int64(consumed)+b.Dropped())
}
