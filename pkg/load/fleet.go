package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/pulseplatform/pulse/pkg/auth"
	"github.com/pulseplatform/pulse/pkg/protocol"
)

// pongFrame is the v2 pong: an empty command, the answer to the server's
// empty-reply ping (reference §1.5).
var pongFrame = []byte("{}")

const (
	// readLimit bounds one inbound message; the gateway's default
	// -max-message-size is 64 KiB and batching joins a few.
	readLimit = 1 << 20
	// httpBufferSize is the handshake's HTTP buffers: the 101 response is a
	// few hundred bytes, and at 20k connections the default 4 KiB adds up.
	httpBufferSize = 1024
	writeTimeout   = 5 * time.Second
	// closeTimeout bounds the close phase, on top of Config.Timeout.
	closeTimeout  = 30 * time.Second
	closeWorkers  = 64
	maxErrorKinds = 16
	progressEvery = 2 * time.Second
)

// fleet is the set of client connections of one run. Each connection is one
// goroutine: it dials, connects, subscribes, then reads and answers pings
// until the fleet closes it.
type fleet struct {
	cfg     Config
	log     *slog.Logger
	dial    *websocket.DialOptions
	scraper *http.Client

	connCtx   context.Context // idle reads; ends after the close phase
	stopConns context.CancelFunc

	wg       sync.WaitGroup // one per connection goroutine
	stopping atomic.Bool
	mu       sync.Mutex
	open     map[*websocket.Conn]struct{}

	connected, failed, dropped, pings atomic.Int64
	errs                              errorTally
}

func newFleet(cfg Config, log *slog.Logger) *fleet {
	connCtx, stop := context.WithCancel(context.Background())
	return &fleet{
		cfg: cfg,
		log: log,
		dial: &websocket.DialOptions{
			HTTPClient: &http.Client{Transport: &http.Transport{
				DialContext:        loopbackDialer().DialContext,
				ReadBufferSize:     httpBufferSize,
				WriteBufferSize:    httpBufferSize,
				DisableCompression: true,
				DisableKeepAlives:  true,
			}},
			Subprotocols: []string{"centrifuge-json"},
		},
		scraper: &http.Client{
			Transport: &http.Transport{DialContext: loopbackDialer().DialContext},
			Timeout:   10 * time.Second,
		},
		connCtx:   connCtx,
		stopConns: stop,
		open:      make(map[*websocket.Conn]struct{}),
	}
}

// loopbackDialer refuses, before connecting, any address that is not
// loopback: a name that resolves elsewhere, or a redirect.
func loopbackDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("dial %s: %w", address, ErrNotLoopback)
			}
			return nil
		},
	}
}

// ramp opens Config.Conns connections at Config.RampRate, at most
// Config.MaxInFlight handshakes at a time, and waits until each has
// subscribed or failed. It returns the handshake latencies of the successes.
func (f *fleet) ramp(ctx context.Context) ([]time.Duration, error) {
	n := f.cfg.Conns
	results := make(chan time.Duration, n) // negative: failed
	sem := make(chan struct{}, f.cfg.MaxInFlight)
	latencies := make([]time.Duration, 0, n)
	got := 0
	collect := func(d time.Duration) {
		got++
		if d >= 0 {
			latencies = append(latencies, d)
		}
	}
	nextLog := time.Now().Add(progressEvery)
	progress := func() {
		if now := time.Now(); now.After(nextLog) {
			nextLog = now.Add(progressEvery)
			f.log.Info("ramp", "connected", f.connected.Load(), "failed", f.failed.Load(), "target", n)
		}
	}
	interval := time.Duration(float64(time.Second) / f.cfg.RampRate)
	next := time.Now()
	pace := time.NewTimer(0)
	defer pace.Stop()
	for i := range n {
		// Pace by schedule rather than by sleeping interval after each
		// spawn, so the rate holds when a spawn itself takes time.
		if wait := time.Until(next); wait > 0 {
			pace.Reset(wait)
			select {
			case <-pace.C:
			case <-ctx.Done():
				return nil, f.aborted(ctx, "ramp")
			}
		}
		next = next.Add(interval)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, f.aborted(ctx, "ramp")
		}
		f.wg.Add(1)
		go f.run(ctx, i, sem, results)
		for drained := false; !drained; {
			select {
			case d := <-results:
				collect(d)
			default:
				drained = true
			}
		}
		progress()
	}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for got < n {
		select {
		case d := <-results:
			collect(d)
		case <-tick.C:
			progress()
		case <-ctx.Done():
			return nil, f.aborted(ctx, "ramp")
		}
	}
	return latencies, nil
}

func (f *fleet) aborted(ctx context.Context, phase string) error {
	return fmt.Errorf("%s: %w (%d of %d connected, %d failed)", phase, context.Cause(ctx), f.connected.Load(), f.cfg.Conns, f.failed.Load())
}

// run is the life of connection i. It releases sem and reports on results
// once the handshake is over, then stays idle until the fleet closes.
func (f *fleet) run(ctx context.Context, i int, sem <-chan struct{}, results chan<- time.Duration) {
	defer f.wg.Done()
	start := time.Now()
	ws, phase, err := f.handshake(ctx, i)
	<-sem
	if err == nil && !f.track(ws) {
		ws.CloseNow()
		err, phase = errClosing, "subscribe"
	}
	if err != nil {
		f.failed.Add(1)
		f.errs.add(phase, err)
		results <- -1
		return
	}
	f.connected.Add(1)
	results <- time.Since(start)
	defer f.untrack(ws)
	f.idle(ws)
}

// handshake dials and sends connect, then subscribe, each awaiting its
// reply. On failure it names the phase that failed.
func (f *fleet) handshake(ctx context.Context, i int) (*websocket.Conn, string, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ConnTimeout)
	defer cancel()
	tok, err := auth.MintHMAC(f.cfg.HMACSecret, "HS256", auth.TokenSpec{
		Subject: "load-" + strconv.Itoa(i), Tenant: f.cfg.Tenant, TTL: tokenTTL,
	})
	if err != nil {
		return nil, "mint", err
	}
	ws, _, err := websocket.Dial(ctx, f.cfg.URL, f.dial)
	if err != nil {
		return nil, "dial", err
	}
	ws.SetReadLimit(readLimit)
	steps := []struct {
		phase string
		cmd   protocol.Command
	}{
		{"connect", protocol.Command{ID: 1, Connect: &protocol.ConnectRequest{Token: tok, Name: "pulse-load"}}},
		{"subscribe", protocol.Command{ID: 2, Subscribe: &protocol.SubscribeRequest{Channel: f.cfg.channelName(i)}}},
	}
	for _, s := range steps {
		if err := f.call(ctx, ws, &s.cmd); err != nil {
			ws.CloseNow()
			return nil, s.phase, err
		}
	}
	return ws, "", nil
}

var (
	// errBadFrame is a server frame the tool cannot read.
	errBadFrame = errors.New("unreadable frame from server")
	// errClosing is a handshake that finished after the close phase began.
	errClosing = errors.New("run is closing")
)

// call sends cmd and reads until its reply, answering pings meanwhile. An
// error reply is returned as its *protocol.Error.
func (f *fleet) call(ctx context.Context, ws *websocket.Conn, cmd *protocol.Command) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		return err
	}
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			return fmt.Errorf("%w: binary message", errBadFrame)
		}
		var (
			answered bool
			replyErr error
		)
		for line := range bytes.Lines(data) {
			line = bytes.TrimSuffix(line, []byte("\n"))
			if bytes.Equal(line, protocol.PingFrame) {
				if err := f.pong(ctx, ws); err != nil {
					return err
				}
				continue
			}
			// Only the id and error matter here; pushes are skipped.
			var r struct {
				ID    uint32          `json:"id"`
				Error *protocol.Error `json:"error"`
			}
			if err := json.Unmarshal(line, &r); err != nil {
				return fmt.Errorf("%w: %v", errBadFrame, err)
			}
			if r.ID == cmd.ID {
				answered = true
				if r.Error != nil {
					replyErr = r.Error
				}
			}
		}
		if answered {
			return replyErr
		}
	}
}

// idle reads until the connection ends, answering every ping.
func (f *fleet) idle(ws *websocket.Conn) {
	for {
		typ, data, err := ws.Read(f.connCtx)
		if err == nil {
			err = f.answerPings(ws, typ, data)
		}
		if err != nil {
			if !f.stopping.Load() {
				f.dropped.Add(1)
				f.errs.add("idle", err)
			}
			return
		}
	}
}

// answerPings pongs every ping line of a frame and skips everything else.
func (f *fleet) answerPings(ws *websocket.Conn, typ websocket.MessageType, frame []byte) error {
	if typ != websocket.MessageText {
		return fmt.Errorf("%w: binary message", errBadFrame)
	}
	for line := range bytes.Lines(frame) {
		if bytes.Equal(bytes.TrimSuffix(line, []byte("\n")), protocol.PingFrame) {
			if err := f.pong(f.connCtx, ws); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fleet) pong(ctx context.Context, ws *websocket.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, pongFrame); err != nil {
		return fmt.Errorf("pong: %w", err)
	}
	f.pings.Add(1)
	return nil
}

// track registers an open connection for closeAll; false once closing.
func (f *fleet) track(ws *websocket.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopping.Load() {
		return false
	}
	f.open[ws] = struct{}{}
	return true
}

func (f *fleet) untrack(ws *websocket.Conn) {
	f.mu.Lock()
	delete(f.open, ws)
	f.mu.Unlock()
	ws.CloseNow()
}

func (f *fleet) numOpen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.open)
}

// closeAll closes every connection with a close handshake (normal closure),
// a few at a time, within closeTimeout; then cuts whatever is left and waits
// for every connection goroutine. Only the first call does anything.
func (f *fleet) closeAll() time.Duration {
	f.mu.Lock()
	if f.stopping.Swap(true) {
		f.mu.Unlock()
		return 0
	}
	conns := make([]*websocket.Conn, 0, len(f.open))
	for ws := range f.open {
		conns = append(conns, ws)
	}
	f.mu.Unlock()

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	work := make(chan *websocket.Conn)
	var closers sync.WaitGroup
	for range min(closeWorkers, len(conns)) {
		closers.Go(func() {
			for ws := range work {
				_ = ws.Close(websocket.StatusNormalClosure, "pulse-load done")
			}
		})
	}
feed:
	for _, ws := range conns {
		select {
		case work <- ws:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	closers.Wait()
	f.stopConns() // cuts what is left, ends idle reads
	f.wg.Wait()
	f.scraper.CloseIdleConnections()
	return time.Since(start)
}

// errorTally counts errors by phase and kind, keeping at most
// maxErrorKinds distinct kinds so that 20k unique messages stay readable.
type errorTally struct {
	mu     sync.Mutex
	counts map[string]int
}

func (t *errorTally) add(phase string, err error) {
	key := phase + ": " + errorKind(err)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = make(map[string]int)
	}
	if _, ok := t.counts[key]; !ok && len(t.counts) >= maxErrorKinds {
		key = phase + ": other"
	}
	t.counts[key]++
}

func (t *errorTally) snapshot() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.counts)
}

// errorKind reduces an error to a stable description, without the ports
// and addresses that make every dial error unique.
func errorKind(err error) string {
	var (
		ce    websocket.CloseError
		pe    *protocol.Error
		errno syscall.Errno
	)
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("closed by server: %d %s", ce.Code, ce.Reason)
	case errors.As(err, &pe):
		return "error reply " + pe.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout (-conn-timeout or -timeout)"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, ErrNotLoopback):
		return ErrNotLoopback.Error()
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without a close frame"
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
