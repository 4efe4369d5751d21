package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// upgradeServer serves WebSockets upgraded through upgrader, handing each
// connection and its wire to serve, and returns the ws:// URL.
func upgradeServer(tb testing.TB, serve func(conn *websocket.Conn, w *wire)) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := &upgrader{ResponseWriter: w}
		conn, err := websocket.Accept(u, r, nil)
		if err != nil {
			tb.Errorf("accept: %v", err)
			return
		}
		serve(conn, u.wire)
	}))
	tb.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// wireServer hands the wire of one upgraded connection to serve, while a
// goroutine reads (so the library answers pings).
func wireServer(t *testing.T, serve func(w *wire)) string {
	t.Helper()
	return upgradeServer(t, func(conn *websocket.Conn, w *wire) {
		go func() {
			for {
				if _, _, err := conn.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		serve(w)
	})
}

func dialWire(t *testing.T, url string, rcvBuf int) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil && rcvBuf > 0 {
				_ = c.(*net.TCPConn).SetReadBuffer(rcvBuf)
			}
			return c, err
		},
	}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	conn.SetReadLimit(1 << 22)
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

func payloadOf(size, seq int) []byte {
	p := bytes.Repeat([]byte{'a' + byte(seq%26)}, size)
	copy(p, fmt.Sprintf("%08d", seq))
	return p
}

func readFrames(t *testing.T, conn *websocket.Conn, want [][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, w := range want {
		typ, got, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("frame %d: read: %v", i, err)
		}
		if typ != websocket.MessageText || !bytes.Equal(got, w) {
			t.Fatalf("frame %d: got %v of %d bytes (%.20q), want text of %d bytes (%.20q)", i, typ, len(got), got, len(w), w)
		}
	}
}

// Every header length (7-bit, 16-bit and 64-bit payload lengths, at their
// edges) reaches a standard client as a whole text frame, from both the
// non-blocking and the blocking write, with the library's pongs between.
func TestWireFramesReachAClientWhole(t *testing.T) {
	t.Parallel()
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 70000, 1 << 20}
	var want [][]byte
	for i, n := range sizes {
		want = append(want, payloadOf(n, i), payloadOf(n, i+100))
	}
	ready := make(chan struct{})
	url := wireServer(t, func(w *wire) {
		<-ready
		for i := 0; i < len(want); i += 2 {
			done, rest := w.tryFrame(want[i])
			switch {
			case done:
			case rest != nil:
				if err := w.writeRaw(rest); err != nil {
					t.Errorf("rest of frame %d: %v", i, err)
				}
			default:
				b := append(make([]byte, maxHeaderLen), want[i]...)
				if err := w.writeFrame(b); err != nil {
					t.Errorf("frame %d: %v", i, err)
				}
			}
			b := append(make([]byte, maxHeaderLen), want[i+1]...)
			if err := w.writeFrame(b); err != nil {
				t.Errorf("frame %d: %v", i+1, err)
			}
		}
	})
	conn := dialWire(t, url, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _ = conn.Ping(ctx) }() // answered through wire.Write while frames flow
	close(ready)
	readFrames(t, conn, want)
}

// A non-blocking write that fills the socket midway leaves the rest of its
// frame, which must go out before anything else: the client sees every
// frame whole and in order.
func TestWirePartialWriteIsCompleted(t *testing.T) {
	t.Parallel()
	if !canTryWrite {
		t.Skip("no non-blocking writes on this platform")
	}
	var want [][]byte
	sawPartial := make(chan bool, 1)
	url := wireServer(t, func(w *wire) {
		partial := false
		for i := 0; i < 2000 && !partial; i++ {
			p := payloadOf(50_000, i)
			done, rest := w.tryFrame(p)
			switch {
			case done:
				want = append(want, p)
			case rest != nil:
				want = append(want, p)
				partial = true
				if err := w.writeRaw(rest); err != nil {
					t.Errorf("rest: %v", err)
				}
			default:
				// Full socket at a frame boundary: try again a little later.
				time.Sleep(time.Millisecond)
			}
		}
		tail := payloadOf(10, 9999)
		want = append(want, tail)
		if err := w.writeFrame(append(make([]byte, maxHeaderLen), tail...)); err != nil {
			t.Errorf("tail: %v", err)
		}
		sawPartial <- partial
	})
	conn := dialWire(t, url, 16<<10)
	// Do not read until the server has filled the socket and is blocked on
	// the rest of a frame (or gave up finding a partial write).
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			got = append(got, b)
			if len(b) == 10 {
				return
			}
		}
	}()
	if !<-sawPartial {
		t.Fatal("no write was cut short by a full socket; the test did not exercise the partial path")
	}
	<-done
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs (%d bytes, want %d)", i, len(got[i]), len(want[i]))
		}
	}
}

// A client that stops reading while its queue is still under the slow
// limit would hold a blocked write forever; the watchdog closes it after
// the write timeout.
func TestStuckWriteIsClosedByWatchdog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.WriteTimeout = 300 * time.Millisecond
		c.Limits.QueueSize = 256 << 20 // never slow: only the watchdog can end it
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, e.ws, &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				_ = c.(*net.TCPConn).SetReadBuffer(16 << 10)
			}
			return c, err
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	r := &raw{t: t, conn: conn, ctx: ctx}
	r.connect(e.token(acme("stuck")))
	r.send(`{"id":2,"subscribe":{"channel":"tenant:acme:metrics"}}`)
	if rep := r.reply(2); rep.Error != nil {
		t.Fatalf("subscribe: %+v", rep.Error)
	}
	// From here on the client reads nothing.
	pad := `{"pad":"` + strings.Repeat("x", 60000) + `"}`
	before := testutil.ToFloat64(e.g.metrics.Disconnects.WithLabelValues("3009"))
	deadline := time.Now().Add(45 * time.Second)
	for e.g.numConns.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stuck connection was never closed")
		}
		for i := 0; i < 20; i++ {
			if _, err := e.js.PublishAsync("tenants.acme.metrics", []byte(pad)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-e.js.PublishAsyncComplete():
		case <-time.After(10 * time.Second):
			t.Fatal("publishes not acknowledged")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := testutil.ToFloat64(e.g.metrics.Disconnects.WithLabelValues("3009")); got <= before {
		t.Fatalf("disconnects with 3009 = %v, want more than %v", got, before)
	}
	if got := testutil.ToFloat64(e.g.metrics.SlowDisconnects); got != 0 {
		t.Fatalf("slow disconnects = %v: the queue limit fired, not the watchdog", got)
	}
}
