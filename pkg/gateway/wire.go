package gateway

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Buffer sizes of the WebSocket library's reader and writer for one
// connection. The library keeps both for the connection's life, and with
// net/http's 4 KiB each they were a third of an idle connection's memory.
// Commands from browsers are small, and a larger one is read straight into
// the message buffer; the writer only ever carries control frames (pong,
// close: at most 2+125 bytes), because data frames go through wire.
const (
	readBufferSize    = 512
	controlBufferSize = 256
)

// wire is the write side of one connection's socket. Data frames (replies,
// publications) are written here, as whole text frames, by the connection's
// flusher or, when the connection is idle, straight from the fan-out with a
// write that never blocks. The WebSocket library writes its control frames
// (pong, close) through Write. mu keeps frames whole on the socket.
type wire struct {
	mu   sync.Mutex
	conn net.Conn
	raw  syscall.RawConn // nil: no non-blocking writes (not a socket)

	// blockedSince is when the current blocking write began (Unix
	// nanoseconds), 0 when none runs. The gateway's watchdog closes a
	// socket stuck longer than the write timeout: cheaper than a deadline
	// (two timer updates) on every write.
	blockedSince atomic.Int64

	// Arguments and results of tryWriteFn, under mu: a method value made
	// once, so a non-blocking write allocates nothing.
	hdr        [maxHeaderLen]byte
	hdrLen     int
	payload    []byte
	n          int
	tryWriteFn func(fd uintptr) bool
}

const maxHeaderLen = 10

func newWire(conn net.Conn) *wire {
	w := &wire{conn: conn}
	if sc, ok := conn.(syscall.Conn); ok && canTryWrite {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
			w.tryWriteFn = w.tryWrite
		}
	}
	return w
}

// Write carries the library's control frames. Its buffer is larger than
// any control frame, so each call is one whole frame.
func (w *wire) Write(p []byte) (int, error) {
	if err := w.writeRaw(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// putTextHeader writes the header of an unmasked, final text frame of n
// payload bytes at the end of dst (RFC 6455 §5.2) and returns its length.
func putTextHeader(dst *[maxHeaderLen]byte, n int) int {
	switch {
	case n <= 125:
		dst[8], dst[9] = 0x81, byte(n)
		return 2
	case n <= 0xffff:
		dst[6], dst[7] = 0x81, 126
		binary.BigEndian.PutUint16(dst[8:], uint16(n))
		return 4
	default:
		dst[0], dst[1] = 0x81, 127
		binary.BigEndian.PutUint64(dst[2:], uint64(n))
		return 10
	}
}

// writeFrame writes buf[maxHeaderLen:] as one text frame. buf's first
// maxHeaderLen bytes are room for the header.
func (w *wire) writeFrame(buf []byte) error {
	var h [maxHeaderLen]byte
	hl := putTextHeader(&h, len(buf)-maxHeaderLen)
	start := maxHeaderLen - hl
	copy(buf[start:maxHeaderLen], h[maxHeaderLen-hl:])
	return w.writeRaw(buf[start:])
}

// writeRaw writes p, waiting while the socket is full; the watchdog ends a
// wait longer than the write timeout by closing the socket.
func (w *wire) writeRaw(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.blockedSince.Store(time.Now().UnixNano())
	_, err := w.conn.Write(p)
	w.blockedSince.Store(0)
	return err
}

// stuck reports whether a blocking write has waited longer than timeout.
func (w *wire) stuck(now time.Time, timeout time.Duration) bool {
	since := w.blockedSince.Load()
	return since != 0 && now.UnixNano()-since > int64(timeout)
}

// tryFrame writes payload as one text frame if the socket takes it now,
// without waiting. done: all of it went out. Otherwise rest is what must
// follow on the socket before anything else (a frame cut short by a full
// socket), or nil when nothing went out: the socket was full or busy with
// another write, or this platform has no non-blocking write.
func (w *wire) tryFrame(payload []byte) (done bool, rest []byte) {
	if w.raw == nil || !w.mu.TryLock() {
		return false, nil
	}
	defer w.mu.Unlock()
	w.hdrLen = putTextHeader(&w.hdr, len(payload))
	w.payload, w.n = payload, 0
	err := w.raw.Write(w.tryWriteFn)
	n := w.n
	w.payload = nil
	total := w.hdrLen + len(payload)
	if err != nil || n <= 0 {
		// Nothing written (the socket is full, or broken: the flusher's
		// blocking write will say which).
		return false, nil
	}
	if n == total {
		return true, nil
	}
	// A part went out: the rest must follow before anything else.
	rest = make([]byte, 0, total-n)
	if n < w.hdrLen {
		rest = append(rest, w.hdr[maxHeaderLen-w.hdrLen+n:]...)
		n = w.hdrLen
	}
	return false, append(rest, payload[n-w.hdrLen:]...)
}

// upgrader lets the WebSocket library upgrade with small buffers and keeps
// the socket for wire. It is the http.ResponseWriter given to Accept.
type upgrader struct {
	http.ResponseWriter
	wire *wire
}

func (u *upgrader) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := u.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be taken over for a WebSocket")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	var src io.Reader = conn
	size := readBufferSize
	n := brw.Reader.Buffered()
	if n > 0 {
		// Bytes the client sent right after its request: keep them first.
		b, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(b)), conn)
		size = max(size, n)
	}
	br := bufio.NewReaderSize(src, size)
	if n > 0 {
		_, _ = br.Peek(n) // the library takes them from br's buffer
	}
	u.wire = newWire(conn)
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(u.wire, controlBufferSize)), nil
}
