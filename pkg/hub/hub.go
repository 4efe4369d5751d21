// Package hub keeps one live NATS subscription per channel that has at least
// one local subscriber, and fans each live message out in process.
//
// A message is encoded once per channel and the same bytes are handed to
// every subscriber; subscribers enqueue without blocking, so one slow client
// never delays the others. The hub must never subscribe to a subject that was
// not produced by package channel.
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
	"github.com/pulseplatform/pulse/pkg/metrics"
	"github.com/pulseplatform/pulse/pkg/protocol"
)

// Headers that carry publication metadata through NATS. Workers may set
// HeaderTags; HeaderInfo is set by the gateway for client-side publishes.
const (
	HeaderTags = "Pulse-Tags" // JSON object of string → string
	HeaderInfo = "Pulse-Info" // JSON protocol.ClientInfo of the publishing client
)

// Subscriber receives encoded frames for the channels it is attached to.
type Subscriber interface {
	// Deliver enqueues a frame for writing. It must not block; a subscriber
	// that cannot keep up disconnects itself.
	Deliver(frame []byte)
}

const numShards = 64

// flushTimeout bounds the wait for the server to register a new live
// subscription when the caller gave no deadline.
const flushTimeout = 5 * time.Second

// Hub is the per-node registry of live channel subscriptions.
type Hub struct {
	nc      *nats.Conn
	log     *slog.Logger
	metrics *metrics.Metrics
	seed    maphash.Seed
	shards  [numShards]shard
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

	// mu orders fan-out against attach, so a subscriber is added between two
	// messages and knows the last offset delivered before it joined.
	mu         sync.Mutex
	subs       []Subscriber // copy-on-write; replaced, never mutated
	lastOffset uint64
	refs       int // guarded by the shard lock
}

// New creates a hub on a NATS connection.
func New(nc *nats.Conn, m *metrics.Metrics, log *slog.Logger) *Hub {
	h := &Hub{nc: nc, log: log, metrics: m, seed: maphash.MakeSeed()}
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
// live and just before s starts receiving, with the offset of the last
// message delivered on the channel (0 if none yet); a reply enqueued there
// therefore precedes every publication s receives.
func (h *Hub) Subscribe(ctx context.Context, ch channel.Channel, s Subscriber, attach func(lastOffset uint64)) error {
	sh := h.shard(ch.Name())
	sh.mu.Lock()
	e, ok := sh.channels[ch.Name()]
	if !ok {
		e = &entry{ch: ch, ready: make(chan struct{})}
		sh.channels[ch.Name()] = e
	}
	e.refs++
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
		attach(e.lastOffset)
	}
	next := make([]Subscriber, len(e.subs), len(e.subs)+1)
	copy(next, e.subs)
	e.subs = append(next, s)
	e.mu.Unlock()
	return nil
}

// start makes the live subscription and waits until the server has it, so a
// message published after Subscribe returns is delivered.
func (h *Hub) start(ctx context.Context, e *entry) error {
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
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, flushTimeout)
		defer cancel()
	}
	if err := h.nc.FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("subscribe %s: flush: %w", e.ch, err)
	}
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

// release drops one reference, tearing the channel down at zero.
func (h *Hub) release(name string, e *entry) {
	sh := h.shard(name)
	sh.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && sh.channels[name] == e {
		delete(sh.channels, name)
	}
	sh.mu.Unlock()
	if last && e.sub != nil {
		if err := e.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			h.log.Warn("drop live subscription", "channel", name, "err", err)
		}
		h.metrics.Channels.Dec()
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
	pub := &protocol.Publication{Data: protocol.ToRaw(m.Data), Offset: seq}
	decodeMeta(m.Header, pub)
	frame, err := protocol.EncodePublication(e.ch.Name(), pub)
	if err != nil {
		h.log.Error("encode publication", "channel", e.ch.Name(), "err", err)
		return
	}
	n, delivered := h.fanOut(e, seq, frame)
	if !delivered {
		h.metrics.LiveDropped.WithLabelValues("stale_offset").Inc()
		return
	}
	h.metrics.Publications.WithLabelValues(string(e.ch.Namespace()), metrics.DirectionOut).Add(float64(n))
	if ts, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer)); err == nil {
		h.metrics.DeliveryLatency.Observe(time.Since(ts).Seconds())
	}
}

// fanOut hands frame to every subscriber unless offset is not above the last
// delivered one (a repeated or reordered live copy).
func (h *Hub) fanOut(e *entry, offset uint64, frame []byte) (int, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if offset <= e.lastOffset {
		return 0, false
	}
	e.lastOffset = offset
	for _, s := range e.subs {
		s.Deliver(frame)
	}
	return len(e.subs), true
}
