package hubblereceiver

import (
	"context"
	"runtime"
	"testing"
	"unsafe"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/metadata"
)

// TestNoReceivedMessageIsRetained: once a message's flow is aggregated, nothing of the
// message stays reachable. Each message gets a buffer of its own here (the receiver reuses
// one), watched through a weak pointer; while the window still holds every aggregate, a GC
// must free all of them. A zero-copy string kept by an aggregate, a resume id or a label
// would keep its whole message alive, which is what made the memory follow the flow rate.
func TestNoReceivedMessageIsRetained(t *testing.T) {
	events := loadFixture(t)
	sink := &consumertest.LogsSink{}
	r, err := newReceiver(createDefaultConfig().(*Config), receivertest.NewNopSettings(metadata.Type), sink)
	require.NoError(t, err)
	ctx := context.Background()

	frames := make([]weak.Pointer[byte], 0, len(events))
	for _, ev := range events {
		data, err := proto.Marshal(ev)
		require.NoError(t, err)
		f := make(frame, len(data)) // &f[0] is the start of the allocation
		copy(f, data)
		frames = append(frames, weak.Make(&f[0]))
		r.handle(ctx, f)
	}
	// The view is the scratch space of the message being handled: its strings point into
	// that message, which in the receiver is the reused receive buffer, overwritten next.
	r.view = flowView{}
	runtime.GC()
	runtime.GC()
	kept := 0
	for _, w := range frames {
		if w.Value() != nil {
			kept++
		}
	}
	assert.Zero(t, kept, "of %d received messages, %d are still reachable after aggregation", len(frames), kept)
	require.Zero(t, sink.LogRecordCount(), "the aggregates are still in the window")

	r.window.Flush(ctx)
	want, _ := expected(events, nil)
	assertAggregates(t, want, received(t, sink))
}

// An aggregate is what a window holds per key, twice while a window is spread: its size is
// most of the heap at many keys (docs/benchmarks.md). Strings in it, rather than handles,
// would make it several times larger.
func TestAggregateSize(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(flowAgg{}), uintptr(96))
}
