// Package http2merge joins the small HTTP/2 DATA frames a gRPC server sends into fewer,
// larger ones before the client's transport reads them.
//
// A server that writes many small messages (Hubble Relay sends one ~1 KB flow per message)
// puts each in a DATA frame of its own. grpc-go's client transport handles every frame on
// its own: it allocates a buffer for each frame under 1 KiB instead of taking one from its
// pool, queues it for the stream and wakes the stream's reader. At 20,000 flows/s that
// per-frame work and the garbage it leaves are a large part of the collector's CPU. Frame
// boundaries mean nothing to HTTP/2 (a stream's data is the concatenation of its frames'
// payloads), so adjacent DATA frames of one stream that arrived together are joined into
// one, up to the size every HTTP/2 endpoint accepts. Flow control counts payload bytes,
// which joining does not change; every other frame, and the order of all frames, is kept.
package http2merge // import "github.com/kestrelai/otelcol-kestrel/internal/http2merge"

import (
	"context"
	"encoding/binary"
	"net"

	"google.golang.org/grpc/credentials"
)

const (
	headerLen = 9
	// maxFrameLen is SETTINGS_MAX_FRAME_SIZE's initial value (RFC 9113 §6.5.2): the largest
	// frame an endpoint accepts unless it said otherwise, as grpc-go's client does not.
	maxFrameLen = 1 << 14

	frameData     = 0x0
	flagEndStream = 0x1

	// readSize is what one read asks of the connection below: room for several frames,
	// and at least one frame of the largest size with its header.
	readSize = 64 << 10
)

// Conn is a client connection whose inbound DATA frames are joined where possible. Reads
// are made by one goroutine at a time, as gRPC's transport does.
type Conn struct {
	net.Conn

	raw []byte // read from the connection and not yet passed on: a partial frame at most
	out []byte // frames ready for the reader, from off on
	off int

	passThrough bool  // the peer sent what is not a frame this Conn can hold: bytes go on unchanged
	err         error // the connection's read error, returned once the bytes before it are passed on
}

// NewConn returns conn with its inbound DATA frames joined. conn must carry the server's
// side of an HTTP/2 connection from its start (its first frame is the server's SETTINGS).
func NewConn(conn net.Conn) *Conn {
	return &Conn{Conn: conn, raw: make([]byte, 0, readSize)}
}

// Read hands on complete frames as soon as it has any: a frame is never held back to wait
// for one to join it, so a quiet stream gets its last message at once.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		if c.off < len(c.out) {
			n := copy(p, c.out[c.off:])
			c.off += n
			return n, nil
		}
		c.out, c.off = c.out[:0], 0
		if c.passThrough || c.err != nil {
			if len(c.raw) > 0 {
				c.out = append(c.out, c.raw...)
				c.raw = c.raw[:0]
				continue
			}
			if c.err != nil {
				return 0, c.err
			}
			return c.Conn.Read(p)
		}
		c.frames()
		if len(c.out) > 0 {
			continue
		}
		n, err := c.Conn.Read(c.raw[len(c.raw):cap(c.raw)])
		c.raw = c.raw[:len(c.raw)+n]
		if err != nil {
			c.err = err
		}
	}
}

// frames moves the complete frames at the start of raw to the empty out, joining DATA
// frames, and keeps the partial frame that follows them, if any, at the start of raw.
func (c *Conn) frames() {
	pos := 0
	// The last frame in out while another DATA frame of its stream may be appended to it:
	// the offset of its header (or -1) and its stream.
	last, lastStream := -1, uint32(0)
	for len(c.raw)-pos >= headerLen {
		h := c.raw[pos : pos+headerLen]
		length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		if length > maxFrameLen {
			// More than the client accepts: gRPC's framer reports the error.
			c.passThrough = true
			break
		}
		if len(c.raw)-pos < headerLen+length {
			break
		}
		typ, flags, stream := h[3], h[4], binary.BigEndian.Uint32(h[5:headerLen])
		payload := c.raw[pos+headerLen : pos+headerLen+length]
		if typ == frameData && last >= 0 && stream == lastStream && flags&^flagEndStream == 0 &&
			len(c.out)-last-headerLen+length <= maxFrameLen {
			c.out = append(c.out, payload...)
			joined := len(c.out) - last - headerLen
			c.out[last], c.out[last+1], c.out[last+2] = byte(joined>>16), byte(joined>>8), byte(joined) //nolint:gosec // a 24-bit length: joined ≤ maxFrameLen
			c.out[last+4] = flags
		} else {
			start := len(c.out)
			c.out = append(c.out, c.raw[pos:pos+headerLen+length]...)
			last, lastStream = start, stream
		}
		// Only a DATA frame of a stream (not the connection) with no flag set (not padded,
		// not the stream's end) can be continued.
		if typ != frameData || flags != 0 || stream == 0 {
			last = -1
		}
		pos += headerLen + length
	}
	c.raw = c.raw[:copy(c.raw, c.raw[pos:])]
}

// Credentials wraps creds so that each connection it hands to gRPC joins DATA frames.
func Credentials(creds credentials.TransportCredentials) credentials.TransportCredentials {
	return joiningCredentials{creds}
}

type joiningCredentials struct {
	credentials.TransportCredentials
}

func (j joiningCredentials) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := j.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		return nil, nil, err
	}
	return NewConn(conn), info, nil
}

func (j joiningCredentials) Clone() credentials.TransportCredentials {
	return joiningCredentials{j.TransportCredentials.Clone()}
}
