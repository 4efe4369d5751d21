package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/protocol"
)

// subscription is one channel a client is subscribed to. It is the hub's
// subscriber: while its subscribe reply is being prepared (a recovery read
// from the stream) live publications are held back, then released after the
// reply, skipping what the reply already carried.
type subscription struct {
	c          *client
	ch         channel.Channel
	serverSide bool
	positioned bool // the client tracks its position: gaps must be reported
	viaToken   bool // granted by a subscription token, not the default rules
	presence   bool // counted in the channel's presence (joined)
	joinLeave  bool // gets join/leave pushes
	chanInfo   json.RawMessage
	expiresAt  time.Time // from a subscription token; zero = never
	expTimer   *time.Timer

	held atomic.Bool // live publications wait in buf
	dead atomic.Bool // insufficient state reported: deliver nothing more
	mu   sync.Mutex
	// floor is the offset the client is known to have; live publications
	// at or below it are dropped. Written before held is cleared.
	floor    uint64
	buf      []heldFrame
	bufBytes int
}

type heldFrame struct {
	offset uint64
	frame  []byte
	push   bool // join/leave: not a publication, never skipped by offset
}

func newSubscription(c *client, ch channel.Channel) *subscription {
	s := &subscription{c: c, ch: ch}
	s.held.Store(true)
	return s
}

// Deliver implements hub.Subscriber.
func (s *subscription) Deliver(offset uint64, frame []byte, writeNow bool) {
	if s.dead.Load() {
		return
	}
	if s.held.Load() {
		s.mu.Lock()
		if s.held.Load() {
			s.buf = append(s.buf, heldFrame{offset: offset, frame: frame})
			s.bufBytes += len(frame)
			over := s.bufBytes > s.c.g.cfg.Limits.QueueSize
			s.mu.Unlock()
			if over {
				s.c.slow()
			}
			return
		}
		s.mu.Unlock()
	}
	if offset > s.floor {
		s.c.enqueueFrame(frame, false, writeNow)
	}
}

// Push implements hub.Subscriber: join and leave pushes.
func (s *subscription) Push(frame []byte) {
	if !s.joinLeave || s.dead.Load() {
		return
	}
	if s.held.Load() {
		s.mu.Lock()
		if s.held.Load() {
			s.buf = append(s.buf, heldFrame{frame: frame, push: true})
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
	s.c.enqueue(frame)
}

// release queues the subscribe reply (if any), then what was held back,
// and lets live publications through.
func (s *subscription) release(reply []byte, floor uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.floor = floor
	if reply != nil {
		s.c.enqueueReply(reply)
	}
	for _, h := range s.buf {
		if h.push || h.offset > floor {
			s.c.enqueue(h.frame)
		}
	}
	s.buf, s.bufBytes = nil, 0
	s.held.Store(false)
}

// InsufficientState implements hub.Subscriber. It runs under the hub's
// channel lock, so it only marks and queues; the subscription is dropped in
// the background.
func (s *subscription) InsufficientState() {
	if !s.positioned || s.dead.Swap(true) {
		return
	}
	if s.serverSide {
		// Server-side subscriptions are restored by reconnecting (3010).
		s.c.disconnect(protocol.DisconnectInsufficientState, true)
		return
	}
	s.c.reply(&protocol.Reply{Push: &protocol.Push{Channel: s.ch.Name(),
		Unsubscribe: &protocol.UnsubscribePush{Code: protocol.UnsubscribeInsufficientState, Reason: "insufficient state"}}})
	go s.c.dropSubscription(s)
}

// dropSubscription removes s if it is still the client's subscription.
func (c *client) dropSubscription(s *subscription) {
	name := s.ch.Name()
	c.mu.Lock()
	cur, ok := c.subs[name]
	if ok && cur == s {
		delete(c.subs, name)
		if s.expTimer != nil {
			s.expTimer.Stop()
		}
	}
	c.mu.Unlock()
	if ok && cur == s {
		c.detach(s)
	}
}

// detach undoes a subscription already removed from c.subs: it leaves the
// channel's fan-out and presence.
func (c *client) detach(s *subscription) {
	c.g.hub.Unsubscribe(s.ch.Name(), s)
	c.g.metrics.Subscriptions.Dec()
	if s.presence {
		c.g.presence.Release(s.ch)
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		if err := c.g.presence.Leave(ctx, s.ch, c.id); err != nil {
			c.log.Warn("presence leave", "channel", s.ch.Name(), "err", err)
		}
	}
}
