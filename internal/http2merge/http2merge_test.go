package http2merge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
)

// frame is one frame as the tests see it.
type frame struct {
	typ    http2.FrameType
	flags  http2.Flags
	stream uint32
	data   []byte
}

// encode writes frames with x/net/http2's framer, as a server would.
func encode(tb testing.TB, frames []frame) []byte {
	tb.Helper()
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	for _, f := range frames {
		var err error
		switch f.typ {
		case http2.FrameData:
			if f.flags.Has(http2.FlagDataPadded) {
				err = fr.WriteDataPadded(f.stream, f.flags.Has(http2.FlagDataEndStream), f.data, []byte{0, 0})
			} else {
				err = fr.WriteData(f.stream, f.flags.Has(http2.FlagDataEndStream), f.data)
			}
		default:
			err = fr.WriteRawFrame(f.typ, f.flags, f.stream, f.data)
		}
		require.NoError(tb, err)
	}
	return b.Bytes()
}

// parse splits b into frames without interpreting them, and returns what follows the last
// complete frame that is not longer than maxFrameLen.
func parse(b []byte) (frames []frame, rest []byte) {
	for len(b) >= headerLen {
		length := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		if length > maxFrameLen || len(b) < headerLen+length {
			break
		}
		frames = append(frames, frame{
			typ: http2.FrameType(b[3]), flags: http2.Flags(b[4]), stream: binary.BigEndian.Uint32(b[5:9]),
			data: b[headerLen : headerLen+length],
		})
		b = b[headerLen+length:]
	}
	return frames, b
}

// meaning is what the peer's bytes say to HTTP/2, whatever their frame boundaries: the
// frames with each run of continuable DATA frames of one stream as one frame.
func meaning(b []byte) ([]frame, string) {
	frames, rest := parse(b)
	var out []frame
	for _, f := range frames {
		if n := len(out); n > 0 && f.typ == http2.FrameData && f.flags&^http2.FlagDataEndStream == 0 {
			prev := &out[n-1]
			if prev.typ == http2.FrameData && prev.flags == 0 && prev.stream == f.stream && f.stream != 0 {
				prev.data = append(prev.data, f.data...)
				prev.flags = f.flags
				continue
			}
		}
		f.data = append([]byte(nil), f.data...)
		out = append(out, f)
	}
	return out, string(rest)
}

// chunked is a connection whose reads return at most the next chunk's length in bytes,
// then io.EOF.
type chunked struct {
	net.Conn
	b      []byte
	chunks []int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := len(c.b)
	if len(c.chunks) > 0 {
		n = max(1, min(n, c.chunks[0]))
		c.chunks = c.chunks[1:]
	}
	n = copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// readAll reads conn to its end with reads of readLen bytes, as gRPC's buffered reader does.
func readAll(tb testing.TB, conn net.Conn, readLen int) ([]byte, error) {
	tb.Helper()
	var out []byte
	p := make([]byte, readLen)
	for {
		n, err := conn.Read(p)
		out = append(out, p[:n]...)
		if err != nil {
			return out, err
		}
		require.NotZero(tb, n, "a read returned nothing and no error")
	}
}

func data(stream uint32, n int, end bool) frame {
	f := frame{typ: http2.FrameData, stream: stream, data: bytes.Repeat([]byte{byte(stream), byte(n)}, n)[:n]}
	if end {
		f.flags = http2.FlagDataEndStream
	}
	return f
}

func TestJoinsAdjacentDataFramesOfAStream(t *testing.T) {
	in := []frame{
		{typ: http2.FrameSettings},
		{typ: http2.FrameHeaders, flags: http2.FlagHeadersEndHeaders, stream: 1, data: []byte{0x88}},
		data(1, 900, false), data(1, 880, false), data(1, 0, false), data(1, 910, false),
		{typ: http2.FramePing, data: make([]byte, 8)},
		data(1, 700, false), data(3, 500, false), data(3, 600, false),
		{typ: http2.FrameData, flags: http2.FlagDataPadded, stream: 3, data: []byte("padded")},
		data(3, 300, false), data(3, 400, true), data(3, 100, false), // after END_STREAM: gRPC's to refuse
		{typ: http2.FrameWindowUpdate, data: []byte{0, 0, 1, 0}},
	}
	raw := encode(t, in)
	out, err := readAll(t, NewConn(&chunked{b: raw}), 32<<10)
	require.ErrorIs(t, err, io.EOF)

	got, rest := parse(out)
	assert.Empty(t, rest)
	want, _ := meaning(raw)
	gotMeaning, _ := meaning(out)
	assert.Equal(t, want, gotMeaning)
	var types []http2.FrameType
	var lengths []int
	for _, f := range got {
		types = append(types, f.typ)
		lengths = append(lengths, len(f.data))
	}
	d, p, w := http2.FrameData, http2.FramePing, http2.FrameWindowUpdate
	assert.Equal(t, []http2.FrameType{http2.FrameSettings, http2.FrameHeaders, d, p, d, d, d, d, d, w}, types)
	assert.Equal(t, []int{0, 1, 2690, 8, 700, 1100, 9, 700, 100, 4}, lengths, "frame lengths (the padded frame: 6 bytes, its pad length and 2 bytes of padding)")
	assert.Equal(t, http2.FlagDataEndStream, got[7].flags, "the joined frame ends the stream as its last part did")
}

func TestJoinedFramesStayWithinTheDefaultMaximum(t *testing.T) {
	var in []frame
	for range 100 {
		in = append(in, data(1, 1000, false))
	}
	in = append(in, data(1, maxFrameLen, false), data(1, 1, true))
	raw := encode(t, in)
	out, err := readAll(t, NewConn(&chunked{b: raw}), 32<<10)
	require.ErrorIs(t, err, io.EOF)
	got, rest := parse(out)
	require.Empty(t, rest)
	total := 0
	for _, f := range got {
		assert.LessOrEqual(t, len(f.data), maxFrameLen)
		total += len(f.data)
	}
	assert.Equal(t, 100*1000+maxFrameLen+1, total)
	assert.Less(t, len(got), 12, "100 frames of 1,000 bytes fit in 7 of 16 KiB")
	want, _ := meaning(raw)
	gotMeaning, _ := meaning(out)
	assert.Equal(t, want, gotMeaning)
}

// A frame that has arrived is handed on at once, not held back for one that might join it.
func TestAFrameIsNotHeldBack(t *testing.T) {
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	conn := NewConn(client)
	one := encode(t, []frame{data(1, 100, false)})
	go func() { _, _ = server.Write(one) }()

	got := make(chan []byte, 1)
	go func() {
		p := make([]byte, 1024)
		n, _ := conn.Read(p)
		got <- p[:n]
	}()
	select {
	case b := <-got:
		assert.Equal(t, one, b)
	case <-time.After(10 * time.Second):
		t.Fatal("Read waited for more than the one frame that had arrived")
	}
}

// What is not a frame this Conn can hold (a frame longer than the client accepts, or not
// HTTP/2 at all) is passed on unchanged, for gRPC's transport to refuse.
func TestPassesOnWhatIsNotAFrame(t *testing.T) {
	for name, raw := range map[string][]byte{
		"oversized frame": append(encode(t, []frame{data(1, 10, false), data(1, 10, false)}),
			append([]byte{0x01, 0x00, 0x00, 0x00, 0x00, 0, 0, 0, 1}, bytes.Repeat([]byte{7}, 100)...)...),
		"HTTP/1.1": []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := readAll(t, NewConn(&chunked{b: raw, chunks: []int{5, 3, 40}}), 1024)
			require.ErrorIs(t, err, io.EOF)
			wantFrames, wantRest := meaning(raw)
			gotFrames, gotRest := meaning(out)
			assert.Equal(t, wantFrames, gotFrames)
			assert.Equal(t, wantRest, gotRest)
		})
	}
}

// The bytes before a read error reach the reader before the error does, complete frames
// or not.
func TestBytesBeforeAnErrorArePassedOn(t *testing.T) {
	raw := encode(t, []frame{data(1, 10, false), data(1, 10, false), data(1, 10, false)})
	raw = raw[:len(raw)-4]
	boom := errors.New("connection reset")
	out, err := readAll(t, NewConn(&failing{chunked: chunked{b: raw}, err: boom}), 1024)
	require.ErrorIs(t, err, boom)
	wantFrames, wantRest := meaning(raw)
	gotFrames, gotRest := meaning(out)
	assert.Equal(t, wantFrames, gotFrames)
	assert.Equal(t, wantRest, gotRest)
}

type failing struct {
	chunked
	err error
}

func (f *failing) Read(p []byte) (int, error) {
	n, err := f.chunked.Read(p)
	if errors.Is(err, io.EOF) {
		err = f.err
	}
	return n, err
}

// FuzzConn: whatever the peer sends and however its bytes are split into reads, the reader
// gets bytes with the same meaning, in frames no longer than the peer's.
func FuzzConn(f *testing.F) {
	seed := encode(f, []frame{
		{typ: http2.FrameSettings}, data(1, 30, false), data(1, 20, false),
		{typ: http2.FramePing, data: make([]byte, 8)}, data(1, 5, true), data(3, 7, false),
	})
	f.Add(seed, []byte{3, 9, 200}, uint16(64))
	f.Add(seed[:len(seed)-3], []byte{1}, uint16(1))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"), []byte{}, uint16(4096))
	f.Fuzz(func(t *testing.T, raw, splits []byte, readLen uint16) {
		chunks := make([]int, len(splits))
		for i, s := range splits {
			chunks[i] = int(s)
		}
		out, err := readAll(t, NewConn(&chunked{b: raw, chunks: chunks}), max(1, int(readLen)))
		require.ErrorIs(t, err, io.EOF)
		wantFrames, wantRest := meaning(raw)
		gotFrames, gotRest := meaning(out)
		require.Equal(t, wantFrames, gotFrames)
		require.Equal(t, wantRest, gotRest)
	})
}
