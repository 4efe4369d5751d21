package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/pulseplatform/pulse/pkg/auth"
	"github.com/pulseplatform/pulse/pkg/protocol"
)

// client is one WebSocket connection: a reader goroutine that runs commands
// in order, and the write side. A frame for an idle connection is written
// at once by whoever produced it, with a write that never blocks (the
// fan-out writes to a thousand sockets without a goroutine switch). When
// the socket is busy or full, frames wait in a bounded queue drained by a
// flusher goroutine that joins everything queued into one frame and one
// write. The flusher runs only while there is something to write, so an
// idle connection costs one goroutine.
type client struct {
	g      *Gateway
	conn   *websocket.Conn
	wire   *wire
	id     string
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger

	// Outbound queue. held keeps the writer quiet until the connect reply is
	// placed first, so no push can overtake it.
	qmu        sync.Mutex
	queue      [][]byte
	rest       []byte // the unwritten end of a frame a non-blocking write began; goes first
	spare      [][]byte
	qbytes     int
	held       bool
	closing    *protocol.Disconnect // Code 0: the peer is gone, no close frame
	flushFirst bool
	writing    bool          // a flusher is running
	lastWrite  int64         // monotonic nanoseconds (clock) when the last write began
	finished   bool          // the connection is closed for writing
	writerDone chan struct{} // closed when finished

	// Session state: written by the reader goroutine, read by timers.
	mu        sync.Mutex
	connected bool
	claims    *auth.Claims
	subs      map[string]*subscription
	expTimer  *time.Timer
	pingTimer *time.Timer
	pongTimer *time.Timer
	limiter   *rate.Limiter

	pingOutstanding atomic.Bool
}

func newClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newClient(ctx context.Context, g *Gateway, conn *websocket.Conn, w *wire) *client {
	ctx, cancel := context.WithCancel(ctx)
	id := newClientID()
	burst := int(2 * g.cfg.Limits.CommandRate)
	if burst < 1 {
		burst = 1
	}
	return &client{
		g:          g,
		conn:       conn,
		wire:       w,
		id:         id,
		ctx:        ctx,
		cancel:     cancel,
		log:        g.log.With("client", id),
		held:       true,
		writerDone: make(chan struct{}),
		subs:       make(map[string]*subscription),
		limiter:    rate.NewLimiter(rate.Limit(g.cfg.Limits.CommandRate), burst),
	}
}

// serve runs the connection until it ends. It returns only after the writer
// has stopped and every subscription is released. A panic in a command
// ends this connection with 3004, not the process.
func (c *client) serve() {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic serving connection", "panic", p, "stack", string(debug.Stack()))
			c.disconnect(protocol.DisconnectInternal, false)
			<-c.writerDone
			c.cancel()
			c.cleanup()
		}
	}()
	stale := time.AfterFunc(c.g.cfg.StaleTimeout, func() {
		c.mu.Lock()
		connected := c.connected
		c.mu.Unlock()
		if !connected {
			c.disconnect(protocol.DisconnectStale, false)
		}
	})
	c.readLoop()
	stale.Stop()
	c.qmu.Lock()
	if c.closing == nil {
		// The peer went away (or the read failed): nothing left to say.
		c.closing, c.flushFirst = &protocol.Disconnect{}, false
	}
	c.kickLocked()
	c.qmu.Unlock()
	// The flusher writes what explains the close, sends the close frame and
	// finishes; its writes and the close handshake are bounded.
	<-c.writerDone
	c.cancel()
	c.cleanup()
}

func (c *client) readLoop() {
	for {
		typ, data, err := c.conn.Read(c.ctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) && c.ctx.Err() == nil {
				c.log.Debug("read", "err", err)
			}
			return
		}
		if typ != websocket.MessageText {
			c.disconnect(protocol.DisconnectInappropriate, false)
			return
		}
		cmds, err := protocol.DecodeCommands(data)
		if err != nil {
			c.log.Info("bad frame", "err", err)
			c.disconnect(protocol.DisconnectBadRequest, true)
			return
		}
		for _, cmd := range cmds {
			if d := c.handle(cmd); d != nil {
				c.disconnect(*d, true)
				return
			}
		}
	}
}

// enqueue adds a frame for the writer. It never blocks: a client whose queue
// would exceed its limit is disconnected with 3008 instead.
func (c *client) enqueue(frame []byte) bool { return c.enqueueFrame(frame, false, true) }

// enqueueReply queues a command reply: replies are bounded by the command
// rate and may exceed the queue limit once (a recovery can be large), but
// they count towards it for what follows.
func (c *client) enqueueReply(frame []byte) bool { return c.enqueueFrame(frame, true, true) }

// enqueueFrame queues frame, or writes it at once when writeNow allows, the
// connection is idle and its socket takes the frame without waiting.
func (c *client) enqueueFrame(frame []byte, reply, writeNow bool) bool {
	c.qmu.Lock()
	if c.closing != nil {
		c.qmu.Unlock()
		return false
	}
	if !reply && c.qbytes+len(frame) > c.g.cfg.Limits.QueueSize {
		c.qmu.Unlock()
		c.slow()
		return false
	}
	if writeNow && !c.held && !c.writing && len(c.queue) == 0 && (reply || c.paced()) {
		// Idle: write now if the socket takes it without waiting.
		done, rest := c.wire.tryFrame(frame)
		if done || rest != nil {
			c.lastWrite = clock()
		}
		if done {
			c.qmu.Unlock()
			return true
		}
		if rest != nil {
			c.rest = rest
			c.qbytes += len(rest)
			c.kickLocked()
			c.qmu.Unlock()
			return true
		}
	}
	c.queue = append(c.queue, frame)
	c.qbytes += len(frame)
	c.kickLocked()
	c.qmu.Unlock()
	return true
}

// slow cuts the client off with 3008: it cannot keep up, and queuing more
// for it would cost memory and never help.
func (c *client) slow() {
	c.qmu.Lock()
	if c.closing != nil {
		c.qmu.Unlock()
		return
	}
	d := protocol.DisconnectSlow
	c.closing, c.flushFirst = &d, false
	// The end of a frame already begun stays: the close frame must not land
	// inside it.
	c.queue, c.qbytes = nil, len(c.rest)
	c.kickLocked()
	c.qmu.Unlock()
	c.g.metrics.SlowDisconnects.Inc()
	c.log.Warn("slow client disconnected", "user", c.user(), "queue_limit", c.g.cfg.Limits.QueueSize)
}

// release puts first at the head of the queue and lets the writer run.
func (c *client) release(first []byte) {
	c.qmu.Lock()
	if c.closing == nil || c.flushFirst {
		c.queue = append([][]byte{first}, c.queue...)
		c.qbytes += len(first)
	}
	c.held = false
	c.kickLocked()
	c.qmu.Unlock()
}

// paced reports whether the connection may be written to now: the last
// write began at least the minimum write interval ago. c.qmu must be held.
func (c *client) paced() bool {
	iv := c.g.cfg.MinWriteInterval
	return iv == 0 || clock()-c.lastWrite >= int64(iv)
}

// clock is a monotonic time in nanoseconds.
func clock() int64 { return int64(time.Since(clockStart)) }

var clockStart = time.Now()

// kickLocked starts a flusher if there is something to do and none runs.
// c.qmu must be held.
func (c *client) kickLocked() {
	if c.writing || c.finished {
		return
	}
	if c.nothingToWriteLocked() {
		return
	}
	c.writing = true
	go c.flush()
}

// nothingToWriteLocked reports whether a flusher would have nothing to do:
// not closing, and nothing queued (or held back until the connect reply).
// c.qmu must be held.
func (c *client) nothingToWriteLocked() bool {
	return c.closing == nil && (c.held || len(c.queue) == 0) && c.rest == nil
}

// disconnect closes the connection with d. With flush, what is queued is
// written first (replies explaining why); without, it is dropped.
func (c *client) disconnect(d protocol.Disconnect, flush bool) {
	c.qmu.Lock()
	if c.closing == nil {
		c.closing, c.flushFirst = &d, flush
	}
	c.kickLocked()
	c.qmu.Unlock()
}

// flush writes what is queued, in as few writes as possible, until the
// queue is empty (then it returns; the next enqueue starts another) or the
// connection is closing (then it closes it).
func (c *client) flush() {
	for {
		c.qmu.Lock()
		if wait := c.lastWrite + int64(c.g.cfg.MinWriteInterval) - clock(); wait > 0 && c.closing == nil {
			// Written to moments ago: let more frames join the next write
			// (fewer write system calls, the main cost of fan-out).
			c.qmu.Unlock()
			time.Sleep(time.Duration(wait))
			c.qmu.Lock()
		}
		closing, flush := c.closing, c.flushFirst
		if c.nothingToWriteLocked() {
			c.writing = false
			c.qmu.Unlock()
			return
		}
		q, rest := c.queue, c.rest
		c.queue, c.spare, c.rest = c.spare[:0], nil, nil
		c.qbytes = 0
		c.lastWrite = clock()
		c.qmu.Unlock()

		if !(closing == nil || flush) {
			clear(q) // dropped; only the end of a begun frame must still go out
			q = q[:0]
		}
		if rest != nil || len(q) > 0 {
			err := c.write(rest, q)
			if err != nil {
				if closing == nil {
					c.g.metrics.Disconnects.WithLabelValues("3009").Inc()
				}
				c.finish(nil)
				return
			}
		}
		clear(q)
		c.qmu.Lock()
		if c.spare == nil && cap(q) <= 1024 {
			c.spare = q[:0]
		}
		c.qmu.Unlock()

		if closing != nil {
			c.finish(closing)
			return
		}
	}
}

// write puts rest (the end of a frame already begun) on the socket, then
// the frames of q joined into one WebSocket frame, in one write.
func (c *client) write(rest []byte, q [][]byte) error {
	if rest != nil {
		if err := c.wire.writeRaw(rest); err != nil {
			return err
		}
	}
	if len(q) == 0 {
		return nil
	}
	n := maxHeaderLen + len(q) - 1
	for _, f := range q {
		n += len(f)
	}
	bp := writeBufs.Get().(*[]byte)
	b := *bp
	if cap(b) < n {
		b = make([]byte, 0, max(n, 4<<10))
	}
	b = append(b[:0], make([]byte, maxHeaderLen)...)
	for i, f := range q {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, f...)
	}
	err := c.wire.writeFrame(b)
	if cap(b) <= 64<<10 { // do not keep a burst's buffer
		*bp = b[:0]
		writeBufs.Put(bp)
	}
	return err
}

// writeBufs are the flushers' buffers for joining frames.
var writeBufs = sync.Pool{New: func() any { return new([]byte) }}

// finish closes the connection for good: with d's close frame, or at once
// when d is nil or the peer is gone.
func (c *client) finish(d *protocol.Disconnect) {
	if d != nil && d.Code != 0 {
		c.g.metrics.Disconnects.WithLabelValues(itoa(int(d.Code))).Inc()
		c.log.Debug("disconnect", "code", d.Code, "reason", d.Reason)
		// Close writes the close frame and waits (bounded) for the peer's.
		_ = c.conn.Close(websocket.StatusCode(d.Code), d.Reason)
	} else {
		c.conn.CloseNow()
	}
	c.cancel()
	c.qmu.Lock()
	c.writing, c.finished = false, true
	c.qmu.Unlock()
	close(c.writerDone)
}

// cleanup releases everything the connection held.
func (c *client) cleanup() {
	c.mu.Lock()
	for _, t := range []*time.Timer{c.expTimer, c.pingTimer, c.pongTimer} {
		if t != nil {
			t.Stop()
		}
	}
	subs := c.subs
	c.subs = map[string]*subscription{}
	connected := c.connected
	c.connected = false
	c.mu.Unlock()
	for _, s := range subs {
		if s.expTimer != nil {
			s.expTimer.Stop()
		}
		c.detach(s)
	}
	if connected {
		c.g.metrics.Connections.Dec()
		c.g.removeUser(c.claims.Subject)
	}
	c.g.removeClient(c)
}

// user is the connection's user id, "" before connect.
func (c *client) user() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.claims == nil {
		return ""
	}
	return c.claims.Subject
}

// startPings arms the v2 ping: an empty reply every interval, answered by an
// empty command within the pong timeout, or 3012.
func (c *client) startPings() {
	iv := c.g.cfg.PingInterval
	// The first ping is spread over [iv/2, iv] so a reconnect storm does not
	// ping in lockstep.
	first := iv/2 + time.Duration(randInt63n(int64(iv/2)+1))
	c.mu.Lock()
	c.pingTimer = time.AfterFunc(first, c.ping)
	c.mu.Unlock()
}

func (c *client) ping() {
	if c.ctx.Err() != nil {
		return
	}
	c.pingOutstanding.Store(true)
	if !c.enqueue(protocol.PingFrame) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pongTimer == nil {
		c.pongTimer = time.AfterFunc(c.g.cfg.PongTimeout, c.checkPong)
	} else {
		c.pongTimer.Reset(c.g.cfg.PongTimeout)
	}
	c.pingTimer.Reset(c.g.cfg.PingInterval)
}

func (c *client) checkPong() {
	if c.pingOutstanding.Load() {
		c.disconnect(protocol.DisconnectNoPong, false)
	}
}

// pong handles an empty command. A pong nobody asked for is a protocol
// violation (reference §1.5).
func (c *client) pong() *protocol.Disconnect {
	if !c.pingOutstanding.Swap(false) {
		return &protocol.DisconnectBadRequest
	}
	return nil
}
