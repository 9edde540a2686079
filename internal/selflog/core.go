package selflog

import (
	"slices"
	"strings"

	"go.uber.org/multierr"
	"go.uber.org/zap/zapcore"
)

// WrapCore returns a zap.WrapCore function that copies every entry at level or above into
// b, besides writing it to the wrapped core. Entries are copied whether or not the wrapped
// core's level or sampling lets them through, so that every warning is either captured or
// counted as dropped.
func WrapCore(b *Buffer, level zapcore.Level) func(zapcore.Core) zapcore.Core {
	return func(source zapcore.Core) zapcore.Core {
		return &core{Core: source, level: level, capture: newCaptureCore(b)}
	}
}

type core struct {
	zapcore.Core // the service's core (stderr, sampling, the OTel log bridge)
	level        zapcore.Level
	capture      *captureCore
}

func (c *core) With(fields []zapcore.Field) zapcore.Core {
	capture := c.capture.with(fields)
	// A clone: otelconftelemetry's core deletes the component fields from the slice it gets.
	return &core{Core: c.Core.With(slices.Clone(fields)), level: c.level, capture: capture}
}

func (c *core) Enabled(l zapcore.Level) bool {
	return l >= c.level || c.Core.Enabled(l)
}

func (c *core) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	ce = c.Core.Check(ent, ce)
	if ent.Level >= c.level && c.capture.buf.admit() {
		ce = ce.AddCore(ent, c.capture)
	}
	return ce
}

// Write is not called by zap (the inner cores add themselves in Check); like
// zapcore's multi-core it still writes to both for callers that bypass Check.
func (c *core) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	err := c.Core.Write(ent, fields)
	if ent.Level >= c.level && c.capture.buf.admit() {
		err = multierr.Append(err, c.capture.Write(ent, fields))
	}
	return err
}

// captureCore encodes an admitted entry and adds it to the Buffer.
type captureCore struct {
	buf *Buffer
	enc zapcore.Encoder // console layout without time and level (they travel in their own fields)
	err string          // an "error" field added by With
}

func newCaptureCore(b *Buffer) *captureCore {
	return &captureCore{buf: b, enc: zapcore.NewConsoleEncoder(zapcore.EncoderConfig{
		NameKey:          "logger",
		CallerKey:        "caller",
		MessageKey:       "msg",
		EncodeCaller:     zapcore.ShortCallerEncoder,
		EncodeDuration:   zapcore.StringDurationEncoder,
		ConsoleSeparator: " ",
	})}
}

func (c *captureCore) with(fields []zapcore.Field) *captureCore {
	clone := &captureCore{buf: c.buf, enc: c.enc.Clone(), err: c.err}
	for _, f := range fields {
		f.AddTo(clone.enc)
		if e := errorOf(f); e != "" {
			clone.err = e
		}
	}
	return clone
}

func (*captureCore) Enabled(zapcore.Level) bool { return true }

func (c *captureCore) With(fields []zapcore.Field) zapcore.Core { return c.with(fields) }

func (c *captureCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(ent, c)
}

func (c *captureCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	stack := ent.Stack
	ent.Stack = "" // sent in its own field
	line, err := c.enc.EncodeEntry(ent, fields)
	if err != nil {
		return err
	}
	e := Entry{
		Time:    ent.Time,
		Level:   ent.Level,
		Message: truncate(strings.TrimRight(line.String(), "\n"), MaxMessageBytes),
		Error:   c.err,
		Stack:   truncate(stack, MaxMessageBytes),
	}
	line.Free()
	for _, f := range fields {
		if s := errorOf(f); s != "" {
			e.Error = truncate(s, MaxMessageBytes)
		}
	}
	c.buf.add(e)
	return nil
}

func (*captureCore) Sync() error { return nil }

// errorOf returns the text of a zap.Error field ("error"), or "".
func errorOf(f zapcore.Field) string {
	if f.Type != zapcore.ErrorType || f.Key != "error" {
		return ""
	}
	if err, ok := f.Interface.(error); ok {
		return err.Error()
	}
	return ""
}

// truncate cuts s to at most n bytes, dropping a rune cut in half.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
