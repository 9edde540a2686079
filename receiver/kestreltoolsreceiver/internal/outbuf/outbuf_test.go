package outbuf

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuffer(t *testing.T) {
	full := 0
	b := New(5, func() { full++ })
	n, err := b.Write([]byte("abc"))
	assert.Equal(t, 3, n)
	require.NoError(t, err)
	assert.False(t, b.Truncated())
	n, err = b.Write([]byte("defgh"))
	assert.Equal(t, 5, n, "writes never fail")
	require.NoError(t, err)
	_, _ = b.Write([]byte("ij"))
	assert.Equal(t, "abcde", b.String())
	assert.True(t, b.Truncated())
	assert.EqualValues(t, 10, b.Total())
	assert.Equal(t, 5, b.Len())
	assert.Equal(t, 1, full, "onFull is called once")
	b.Note(" [cut]")
	assert.Equal(t, "abcde [cut]", b.String())
	assert.EqualValues(t, 10, b.Total(), "the note is not output")
	assert.Empty(t, New(0, nil).String())
}

// TestBufferGrowth: 1 MiB written in 32 KiB pieces into a buffer whose limit it exceeds
// costs one allocation per doubling (4 KiB … 1 MiB, no more than the limit plus the note's
// room), and neither the note nor String copies the output.
func TestBufferGrowth(t *testing.T) {
	const limit = 1 << 20
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	var b *Buffer
	allocs := testing.AllocsPerRun(5, func() {
		b = New(limit, nil)
		for range limit/len(chunk) + 2 {
			_, _ = b.Write(chunk)
		}
		b.Note("\n[truncated]")
		_ = b.String()
	})
	assert.LessOrEqual(t, allocs, 12.0, "New, 9 doublings, the note's []byte")
	assert.LessOrEqual(t, cap(b.buf), limit+noteRoom)
	assert.Len(t, b.String(), limit+len("\n[truncated]"))
	assert.True(t, b.Truncated())
}
