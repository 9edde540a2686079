package limit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLimiter(t *testing.T) {
	l := New(1, 1, 100*time.Millisecond)
	release, err := l.Acquire(context.Background())
	require.NoError(t, err)

	// One waits for the slot; with the waiting room full the next is busy at once.
	got := make(chan error, 1)
	go func() {
		r, err := l.Acquire(context.Background())
		if err == nil {
			r()
		}
		got <- err
	}()
	require.Eventually(t, func() bool { return len(l.waiting) == 1 }, time.Second, time.Millisecond)
	start := time.Now()
	_, err = l.Acquire(context.Background())
	require.ErrorIs(t, err, ErrBusy)
	assert.Less(t, time.Since(start), 50*time.Millisecond)
	assert.Contains(t, err.Error(), "1 tool requests are running and 1 waiting")

	// The waiter gets the slot when it is released within the wait.
	release()
	require.NoError(t, <-got)

	// A waiter whose slot does not free up in time is busy.
	release, err = l.Acquire(context.Background())
	require.NoError(t, err)
	_, err = l.Acquire(context.Background())
	require.ErrorIs(t, err, ErrBusy)
	assert.Contains(t, err.Error(), "no tool slot freed up within 100ms")

	// A cancelled request stops waiting.
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("gone"))
	_, err = l.Acquire(ctx)
	require.EqualError(t, err, "gone")
	release()
}
