// Package cloudconn is the contract between the kestrel_command extension, which owns the
// one connection to Kestrel Cloud, and the components that use it (the kestrel exporter,
// command handlers, the metrics store). It has no implementation so that users of the
// connection do not depend on the extension's internals.
package cloudconn

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// Stream names one of the five cloud.v1.StreamService streams.
type Stream string

const (
	StreamData    Stream = "data"
	StreamControl Stream = "control"
	StreamFlows   Stream = "flows"
	StreamEvents  Stream = "events"
	StreamLogs    Stream = "logs"
)

// State is the connection's lifecycle state as seen by users of the connection.
type State int

const (
	// Disconnected: no usable StreamData; Send fails with ErrNotConnected.
	Disconnected State = iota
	// Syncing: StreamData is open and snapshot providers are replaying; the side streams
	// are not open yet, so everything travels on StreamData.
	Syncing
	// Ready: InventoryCommit was sent; side streams are open or have fallen back to StreamData.
	Ready
)

func (s State) String() string {
	switch s {
	case Syncing:
		return "syncing"
	case Ready:
		return "ready"
	default:
		return "disconnected"
	}
}

// ErrNotConnected is returned by Send while there is no stream to write to. Callers
// treat it as retryable.
var ErrNotConnected = errors.New("not connected to Kestrel Cloud")

// Handler answers one request from the cloud. It returns the response message (for
// example *cloudv1.MetricsQueryResponse for a *cloudv1.MetricsQueryRequest); the connection
// wraps it in the envelope of the stream the request arrived on and sends it there.
// Returning nil sends nothing. Handlers run on their own goroutine, bounded by the
// connection's concurrency limit, and must honour ctx.
type Handler func(ctx context.Context, req proto.Message) proto.Message

// SnapshotFunc is called after every (re)connect, once StreamData is open and before
// InventoryCommit is sent. It sends the provider's current state through send (which
// writes on StreamData in order) and returns the integration flags it knows about; the
// connection ORs the flags of all providers into the InventoryCommit it sends next.
type SnapshotFunc func(ctx context.Context, send func(proto.Message) error) (*cloudv1.InventoryCommit, error)

// Connection is implemented by the kestrel_command extension. Find it with
// host.GetExtensions()[id] and a type assertion to Provider.
type Connection interface {
	// Send writes one payload (the inner message, e.g. *cloudv1.KubernetesEvent) on its
	// preferred stream per the protocol's routing table, or on StreamData when that stream
	// is not open or the server does not implement it. It returns once the message is
	// handed to the gRPC stream, or an error (ErrNotConnected, ctx errors, a send failure).
	// A payload that cannot be sent at all (no stream carries it, nil, not the generated
	// cloud.v1 type, or larger than max_message_size_mib) gives a gRPC status error with code
	// InvalidArgument; callers treat that one as permanent, everything else as retryable.
	Send(ctx context.Context, payload proto.Message) error
	// SendAcknowledged is Send for payloads that must not be lost once the caller lets go
	// of them (docs/protocol.md#acknowledged-delivery). It returns once the message is
	// written, with the function to wait on until the server has acknowledged it. With a
	// server that does not acknowledge, that function returns nil once the stream is known
	// to be such a server's (within about a second), as Send would have. Its errors are
	// retryable: the message may or may not have arrived, and the caller sends it again.
	SendAcknowledged(ctx context.Context, payload proto.Message) (Acknowledgement, error)
	// Handle registers the handler for one request type, given as a zero value of the
	// request message (e.g. &cloudv1.MetricsQueryRequest{}). One handler per type. After
	// unregister, requests of that type are answered as unsupported again, and the type can
	// be registered anew.
	Handle(requestType proto.Message, h Handler) (unregister func(), err error)
	// MaxMessageBytes is the largest message the connection sends or receives; a response
	// must fit in it together with its stream envelope.
	MaxMessageBytes() int
	// RegisterSnapshot adds a provider that replays state on each (re)connect. After
	// unregister (a component's shutdown calls it), reconnects no longer replay it.
	RegisterSnapshot(fn SnapshotFunc) (unregister func())
	// State returns the current state; Subscribe calls fn on every change (and once with
	// the current state) until the returned function is called.
	State() State
	Subscribe(fn func(State)) (unsubscribe func())
}

// Acknowledgement waits until the server has acknowledged one message, or ctx ends. Call it
// once: after it returned an error the connection no longer re-sends the message on a
// reconnect, so calling it with an ended context gives the message up.
type Acknowledgement func(ctx context.Context) error

// Provider is the interface the extension component itself satisfies.
type Provider interface {
	Connection() Connection
}
