package outbuf

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBuffer(t *testing.T) {
	full := 0
	b := New(5, func() { full++ })
	n, err := b.Write([]byte("abc"))
	assert.Equal(t, 3, n)
	assert.NoError(t, err)
	assert.False(t, b.Truncated())
	n, err = b.Write([]byte("defgh"))
	assert.Equal(t, 5, n, "writes never fail")
	assert.NoError(t, err)
	_, _ = b.Write([]byte("ij"))
	assert.Equal(t, "abcde", b.String())
	assert.True(t, b.Truncated())
	assert.EqualValues(t, 10, b.Total())
	assert.Equal(t, 5, b.Len())
	assert.Equal(t, 1, full, "onFull is called once")
}
