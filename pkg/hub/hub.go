// Package hub keeps one live NATS subscription per channel that has at least
// one local subscriber, and fans each live message out in process.
//
// A message is encoded once per channel and the same bytes are handed to
// every subscriber; subscribers enqueue without blocking, so one slow client
// never delays the others. The hub keeps each channel's delivered position
// and follows the Nats-Last-Sequence chain of RePublish: a missed live copy
// is read back from the stream before anything newer is delivered, and a
// position that cannot be proven complete is reported to subscribers. The
// hub must never subscribe to a subject that was not produced by package
// channel.
package hub

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/history"
	"github.com/pulseplatform/pulse/pkg/metrics"
	"github.com/pulseplatform/pulse/pkg/protocol"
	"github.com/pulseplatform/pulse/pkg/publication"
)

// Subscriber receives encoded frames for the channels it is attached to.
type Subscriber interface {
	// Deliver enqueues a publication frame at offset. It must not block; a
	// subscriber that cannot keep up disconnects itself. writeNow says no
	// more messages of the channel are waiting: the subscriber may write to
	// its client from the calling goroutine, with a write that never
	// blocks. Otherwise it should only queue, so its writer can put several
	// publications in one write.
	Deliver(offset uint64, frame []byte, writeNow bool)
	// Push enqueues a frame that is not a publication (join, leave). It
	// must not block.
	Push(frame []byte)
	// InsufficientState tells the subscriber that messages of its channel
	// were lost and cannot be read back: a positioned subscriber must
	// resubscribe with recovery (unsubscribe push 2500).
	InsufficientState()
}

const numShards = 64

// flushTimeout bounds the wait for the server to register a new live
// subscription, and a backfill read, when the caller gave no deadline.
const flushTimeout = 5 * time.Second

// maxBackfill is the most messages read back to close one live gap; a larger
// gap is cheaper for subscribers to recover themselves.
const maxBackfill = 1000

// Hub is the per-node registry of live channel subscriptions.
type Hub struct {
	nc      *nats.Conn
	reader  *history.Reader
	log     *slog.Logger
	metrics *metrics.Metrics
	seed    maphash.Seed
	shards  [numShards]shard
	kick    chan string // asks the reconcile loop to run soon
	linger  time.Duration
}

type shard struct {
	mu       sync.Mutex
	channels map[string]*entry
}

// entry is one channel with local subscribers.
type entry struct {
	ch    channel.Channel
	ready chan struct{} // closed once sub is set up (or failed)
	err   error         // set before ready is closed when setup failed
	sub   *nats.Subscription

	// mu orders fan-out, backfill and attach: a subscriber joins between two
	// messages and knows the offset delivered last before it joined.
	mu         sync.Mutex
	subs       []Subscriber // copy-on-write; replaced, never mutated
	lastOffset uint64       // everything of the channel up to here was delivered
	synced     bool         // lastOffset has been read from the stream
	epoch      string       // of the stream when lastOffset was read
	refs       int          // guarded by the shard lock
	linger     *time.Timer  // drops the channel after its last subscriber left; guarded by the shard lock

	// recent are the latest publications delivered, oldest first, each
	// with the channel's offset before it: a chain without gaps ending at
	// lastOffset, from which clients that dropped moments ago recover
	// without a stream read.
	recent      []recentPub
	recentBytes int
}

// recentPub is one publication the hub delivered, and the channel's
// offset just before it.
type recentPub struct {
	prev uint64
	pub  *protocol.Publication
	at   time.Time
}

// Bounds of a channel's recent publications: enough for the clients of a
// gateway that all dropped at once (a network blip, a load balancer
// restart) to recover from memory, small next to the connections that use
// them.
const (
	recentMax      = 32
	recentMaxBytes = 16 << 10
	recentMaxAge   = time.Minute
)

// Linger is how long a channel stays live after its last local subscriber
// left: a client that reconnects within it finds the channel's position and
// recent publications in memory, and a reconnect storm does not tear down
// and re-create every channel's subscription.
const Linger = 30 * time.Second

// SetLinger changes how long channels without subscribers stay live (0:
// torn down at once). Call it before the hub is used.
func (h *Hub) SetLinger(d time.Duration) { h.linger = d }

// Window is a channel's recent publications, valid only during the attach
// callback of Subscribe.
type Window struct{ e *entry }

// Epoch is the stream epoch of the channel's offsets.
func (w Window) Epoch() string { return w.e.epoch }

// Since returns the publications after offset `after` up to the channel's
// delivered position, oldest first, if the hub still holds all of them and
// they are at most limit; ok is false otherwise (read the stream).
func (w Window) Since(after uint64, limit int) (pubs []*protocol.Publication, ok bool) {
	e := w.e
	if after == 0 || after > e.lastOffset {
		return nil, false
	}
	if after == e.lastOffset {
		return nil, true
	}
	oldest := time.Now().Add(-recentMaxAge)
	for i, r := range e.recent {
		if r.prev != after {
			continue
		}
		if r.at.Before(oldest) || len(e.recent)-i > limit {
			return nil, false
		}
		pubs = make([]*protocol.Publication, 0, len(e.recent)-i)
		for _, r := range e.recent[i:] {
			pubs = append(pubs, r.pub)
		}
		return pubs, true
	}
	return nil, false
}

// remember appends a delivered publication to the channel's chain. e.mu
// must be held; prev is the offset delivered before it.
func (e *entry) remember(prev uint64, pub *protocol.Publication) {
	e.recent = append(e.recent, recentPub{prev: prev, pub: pub, at: time.Now()})
	e.recentBytes += len(pub.Data)
	drop := 0
	for len(e.recent)-drop > recentMax || (e.recentBytes > recentMaxBytes && len(e.recent)-drop > 1) {
		e.recentBytes -= len(e.recent[drop].pub.Data)
		drop++
	}
	if drop > 0 {
		n := copy(e.recent, e.recent[drop:])
		clear(e.recent[n:])
		e.recent = e.recent[:n]
	}
}

// forget drops the chain: the position moved without delivering (a gap
// that could not be read back, a recreated stream).
func (e *entry) forget() {
	clear(e.recent)
	e.recent, e.recentBytes = e.recent[:0], 0
}

// New creates a hub on a NATS connection; reader serves backfills.
func New(nc *nats.Conn, reader *history.Reader, m *metrics.Metrics, log *slog.Logger) *Hub {
	h := &Hub{nc: nc, reader: reader, log: log, metrics: m, seed: maphash.MakeSeed(), kick: make(chan string, 1), linger: Linger}
	for i := range h.shards {
		h.shards[i].channels = make(map[string]*entry)
	}
	return h
}

func (h *Hub) shard(name string) *shard {
	return &h.shards[maphash.String(h.seed, name)%numShards]
}

// Subscribe attaches s to ch, creating the channel's NATS subscription on the
// first local subscriber. attach, if not nil, runs after the subscription is
// live and just before s starts receiving, with the offset up to which the
// channel was delivered: s then receives exactly the messages after it, in
// order. w holds the channel's recent publications during attach.
func (h *Hub) Subscribe(ctx context.Context, ch channel.Channel, s Subscriber, attach func(lastOffset uint64, w Window)) error {
	sh := h.shard(ch.Name())
	sh.mu.Lock()
	e, ok := sh.channels[ch.Name()]
	if !ok {
		e = &entry{ch: ch, ready: make(chan struct{})}
		sh.channels[ch.Name()] = e
	}
	e.refs++
	if e.linger != nil {
		e.linger.Stop()
		e.linger = nil
	}
	sh.mu.Unlock()

	if !ok {
		e.err = h.start(ctx, e)
		close(e.ready)
	} else {
		select {
		case <-e.ready:
		case <-ctx.Done():
			h.release(ch.Name(), e)
			return ctx.Err()
		}
	}
	if e.err != nil {
		h.release(ch.Name(), e)
		return e.err
	}

	e.mu.Lock()
	if attach != nil {
		attach(e.lastOffset, Window{e})
	}
	next := make([]Subscriber, len(e.subs), len(e.subs)+1)
	copy(next, e.subs)
	e.subs = append(next, s)
	e.mu.Unlock()
	return nil
}

// start makes the live subscription, waits until the server has it, then
// reads the channel's position: every message after it arrives live.
func (h *Hub) start(ctx context.Context, e *entry) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, flushTimeout)
		defer cancel()
	}
	sub, err := h.nc.Subscribe(e.ch.LiveSubject(), func(m *nats.Msg) { h.onMessage(e, m) })
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", e.ch, err)
	}
	// Messages queue in nats.go's per-subscription buffer; a channel that gets
	// bursts must not be dropped by the client library's default limits.
	if err := sub.SetPendingLimits(1<<20, 256<<20); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("subscribe %s: %w", e.ch, err)
	}
	if err := h.nc.FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("subscribe %s: flush: %w", e.ch, err)
	}
	top, err := h.reader.Top(ctx, e.ch)
	if err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("subscribe %s: %w", e.ch, err)
	}
	e.mu.Lock()
	e.lastOffset = max(e.lastOffset, top)
	e.synced = true
	e.epoch = h.reader.Epoch(e.ch)
	e.mu.Unlock()
	e.sub = sub
	h.metrics.Channels.Inc()
	return nil
}

// Unsubscribe detaches s from the channel; the last one out drops the NATS
// subscription.
func (h *Hub) Unsubscribe(name string, s Subscriber) {
	sh := h.shard(name)
	sh.mu.Lock()
	e, ok := sh.channels[name]
	sh.mu.Unlock()
	if !ok {
		return
	}
	<-e.ready
	e.mu.Lock()
	removed := false
	next := make([]Subscriber, 0, len(e.subs))
	for _, x := range e.subs {
		if x == s && !removed {
			removed = true
			continue
		}
		next = append(next, x)
	}
	e.subs = next
	e.mu.Unlock()
	if removed {
		h.release(name, e)
	}
}

// release drops one reference. At zero the channel lingers, still live,
// and is torn down if nobody subscribes within Linger (at once if it never
// started).
func (h *Hub) release(name string, e *entry) {
	sh := h.shard(name)
	sh.mu.Lock()
	e.refs--
	if e.refs == 0 && e.err == nil && e.sub != nil && h.linger > 0 {
		if e.linger == nil {
			e.linger = time.AfterFunc(h.linger, func() { h.drop(name, e) })
		}
		sh.mu.Unlock()
		return
	}
	sh.mu.Unlock()
	h.drop(name, e)
}

// drop tears the channel down if it still has no subscriber.
func (h *Hub) drop(name string, e *entry) {
	sh := h.shard(name)
	sh.mu.Lock()
	last := e.refs == 0
	if last && sh.channels[name] == e {
		delete(sh.channels, name)
	}
	if last {
		e.linger = nil
	}
	sh.mu.Unlock()
	if last && e.sub != nil {
		if err := e.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			h.log.Warn("drop live subscription", "channel", name, "err", err)
		}
		h.metrics.Channels.Dec()
	}
}

// Push hands frame to every local subscriber of the channel, if any.
func (h *Hub) Push(name string, frame []byte) {
	sh := h.shard(name)
	sh.mu.Lock()
	e, ok := sh.channels[name]
	sh.mu.Unlock()
	if !ok {
		return
	}
	select {
	case <-e.ready:
	default:
		return // nobody attached yet
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.subs {
		s.Push(frame)
	}
}

// NumChannels is the number of channels with local subscribers.
func (h *Hub) NumChannels() int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		n += len(sh.channels)
		sh.mu.Unlock()
	}
	return n
}

// onMessage handles one live copy from RePublish. nats.go calls it from one
// goroutine per subscription, so messages of a channel arrive in order.
func (h *Hub) onMessage(e *entry, m *nats.Msg) {
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil || seq == 0 {
		// Not a RePublish copy (someone published on live.* directly): it is
		// not stored, has no offset, and must not reach clients.
		h.metrics.LiveDropped.WithLabelValues("not_from_stream").Inc()
		return
	}
	prev, _ := strconv.ParseUint(m.Header.Get(jetstream.LastSequenceHeader), 10, 64)

	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.synced {
		// Before the position is read nobody is attached; just remember it.
		e.lastOffset = max(e.lastOffset, seq)
		return
	}
	if seq <= e.lastOffset {
		// A repeat or a late copy (around a stream leader change), already
		// delivered or backfilled. Or the stream was recreated and offsets
		// started again: let the reconcile loop check the epoch.
		h.metrics.LiveDropped.WithLabelValues("stale_offset").Inc()
		h.requestReconcile("stale_offset")
		return
	}
	if prev > e.lastOffset {
		// The chain says a message of this channel was missed.
		h.backfillLocked(e, prev, "live_gap")
	} else if prev < e.lastOffset {
		// Not a continuation of what was delivered: deliver it, but do not
		// vouch for the chain.
		e.forget()
	}
	// Writing to a thousand sockets from here takes milliseconds; when
	// messages pile up meanwhile, queue instead and let each connection's
	// writer batch them. (nats.go counts m itself as pending until this
	// callback returns.)
	pending, _, _ := m.Sub.Pending()
	h.fanOutLocked(e, seq, publication.FromNATS(m.Data, m.Header, seq), pending <= 1)
	if ts, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer)); err == nil {
		h.metrics.DeliveryLatency.Observe(time.Since(ts).Seconds())
	}
}

// backfillLocked reads the messages after lastOffset up to upTo from the
// stream and delivers them. If they cannot be read completely, subscribers
// are told their state is insufficient and the position moves on to upTo.
// e.mu must be held.
func (h *Hub) backfillLocked(e *entry, upTo uint64, why string) {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	msgs, err := h.reader.Backfill(ctx, e.ch, e.lastOffset, upTo, maxBackfill)
	if err != nil || len(msgs) == 0 || msgs[len(msgs)-1].Sequence != upTo {
		h.metrics.GapsUnrecoverable.Inc()
		h.log.Warn("live gap cannot be backfilled; subscribers must recover", "channel", e.ch.Name(),
			"after", e.lastOffset, "up_to", upTo, "why", why, "err", err)
		for _, s := range e.subs {
			s.InsufficientState()
		}
		e.lastOffset = upTo
		e.forget()
		return
	}
	for _, m := range msgs {
		h.fanOutLocked(e, m.Sequence, publication.FromNATS(m.Data, m.Header, m.Sequence), false)
	}
	h.metrics.GapsBackfilled.Add(float64(len(msgs)))
	h.log.Info("live gap backfilled from the stream", "channel", e.ch.Name(), "messages", len(msgs), "why", why)
}

// fanOutLocked encodes pub once, hands it to every subscriber and counts
// the deliveries. e.mu must be held.
func (h *Hub) fanOutLocked(e *entry, offset uint64, pub *protocol.Publication, writeNow bool) {
	frame, err := protocol.EncodePublication(e.ch.Name(), pub)
	if err != nil {
		h.log.Error("encode publication", "channel", e.ch.Name(), "err", err)
		return
	}
	e.remember(e.lastOffset, pub)
	e.lastOffset = offset
	for _, s := range e.subs {
		s.Deliver(offset, frame, writeNow)
	}
	h.metrics.Publications.WithLabelValues(string(e.ch.Namespace()), metrics.DirectionOut).Add(float64(len(e.subs)))
}
