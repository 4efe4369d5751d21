package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	publishTimeout = 5 * time.Second // one attempt's wait for its ack
	maxBackoff     = 2 * time.Second // between retries of one event
)

// ErrNotAcknowledged is returned when a run stops with events whose
// publish was never acknowledged: they may or may not be stored.
var ErrNotAcknowledged = errors.New("events not acknowledged")

// publisher stores events in JetStream with a window of asynchronous
// publishes awaiting their acks. Every message carries its Nats-Msg-Id, so
// a retry after a lost ack is dropped by the stream's duplicate window
// rather than stored twice.
//
// Order: acks are awaited oldest first. When one fails, every publish in
// flight is settled first and the failed ones are retried in their original
// order before anything new is sent. Within one connection the server
// stores messages in the order they were sent, so events of a channel stay
// in order unless the server refused one message and accepted the next.
type publisher struct {
	js       jetstream.JetStream
	log      *slog.Logger
	retryFor time.Duration
	ackWait  time.Duration // per attempt
	window   int
	inflight []*pending
	healthy  bool // the last publish was stored: pipeline again

	sent, acked, failed, dupes atomic.Int64
}

type pending struct {
	msg    *nats.Msg
	fut    jetstream.PubAckFuture
	err    error // set when the publish failed or settled with an error
	first  time.Time
	done   bool
	pubAck *jetstream.PubAck
}

func newPublisher(js jetstream.JetStream, cfg Config) *publisher {
	return &publisher{js: js, log: cfg.Logger, retryFor: cfg.RetryFor, ackWait: publishTimeout, window: cfg.MaxInFlight}
}

// send publishes msg; it blocks while the window is full. It fails only
// when an earlier event could not be stored within retryFor, or when ctx
// (the hard stop) is done.
//
// At start-up and after a failure the publisher probes: it sends one event
// at a time, synchronously, until one is stored. So a missing stream or an
// unreachable server costs one event's retries, not a window full of
// doomed publishes.
func (p *publisher) send(ctx context.Context, msg *nats.Msg) error {
	if !p.healthy {
		if err := p.flush(ctx); err != nil {
			return err
		}
		p.sent.Add(1)
		if err := p.publishSync(ctx, &pending{msg: msg, first: time.Now()}, 1); err != nil {
			return err
		}
		p.healthy = true
		return nil
	}
	for len(p.inflight) >= p.window {
		if err := p.settle(ctx); err != nil {
			return err
		}
	}
	pd := &pending{msg: msg, first: time.Now()}
	pd.fut, pd.err = p.js.PublishMsgAsync(msg)
	if pd.err != nil {
		pd.done = true
		p.failed.Add(1)
	}
	p.sent.Add(1)
	p.inflight = append(p.inflight, pd)
	p.poll()
	return nil
}

// poll settles, without blocking, the publishes at the head of the window
// that are already acknowledged, so the counters stay current. Failures
// are left to settle.
func (p *publisher) poll() {
	for len(p.inflight) > 0 {
		head := p.inflight[0]
		if !p.ready(head) || head.err != nil {
			return
		}
		p.inflight[0] = nil
		p.inflight = p.inflight[1:]
		p.ack(head, 1)
	}
}

// ready reports whether pd is resolved, taking its result if it just was.
func (p *publisher) ready(pd *pending) bool {
	if pd.done {
		return true
	}
	select {
	case pd.pubAck = <-pd.fut.Ok():
		pd.err = nil
	case err := <-pd.fut.Err():
		pd.err = err
		p.failed.Add(1)
	default:
		return false
	}
	pd.done = true
	return true
}

// flush waits until every publish in flight is acknowledged.
func (p *publisher) flush(ctx context.Context) error {
	for len(p.inflight) > 0 {
		if err := p.settle(ctx); err != nil {
			return err
		}
	}
	return nil
}

// unacked is the number of events sent but not (yet) acknowledged.
func (p *publisher) unacked() int64 { return p.sent.Load() - p.acked.Load() }

// settle resolves the oldest publish in flight, and on a failure all of
// them, retrying the failed ones in order.
func (p *publisher) settle(ctx context.Context) error {
	head := p.inflight[0]
	if p.await(ctx, head) == nil {
		p.inflight[0] = nil
		p.inflight = p.inflight[1:]
		p.ack(head, 1)
		return nil
	}
	if ctx.Err() != nil {
		return p.stopped(ctx)
	}
	var failed []*pending
	for _, pd := range p.inflight {
		if p.await(ctx, pd) != nil {
			failed = append(failed, pd)
			continue
		}
		p.ack(pd, 1)
	}
	if ctx.Err() != nil {
		return p.stopped(ctx)
	}
	p.inflight = p.inflight[:0]
	p.healthy = false
	for i, pd := range failed {
		if err := p.publishSync(ctx, pd, 2); err != nil {
			// Keep what is still unsettled so the caller's count is right.
			p.inflight = append(p.inflight, failed[i:]...)
			return err
		}
	}
	return nil
}

func (p *publisher) stopped(ctx context.Context) error {
	return fmt.Errorf("%w: %d of %d sent (%w)", ErrNotAcknowledged, p.unacked(), p.sent.Load(), context.Cause(ctx))
}

func (p *publisher) ack(pd *pending, attempt int) {
	p.acked.Add(1)
	if pd.pubAck != nil && pd.pubAck.Duplicate && attempt == 1 {
		// A first attempt reported as a duplicate: another run with the
		// same seed and start published this event within the duplicate
		// window, and the stream kept that copy.
		if p.dupes.Add(1) == 1 {
			p.log.Warn("stream dropped an event as a duplicate: another run with this seed and start published it within the duplicate window",
				"subject", pd.msg.Subject, "msg_id", pd.msg.Header.Get(jetstream.MsgIDHeader))
		}
	}
}

// await waits for one publish's ack, at most ackWait after it was sent.
func (p *publisher) await(ctx context.Context, pd *pending) error {
	// An ack that arrived long ago must win over the expired timer.
	if p.ready(pd) {
		return pd.err
	}
	timer := time.NewTimer(max(time.Until(pd.first.Add(p.ackWait)), 0))
	defer timer.Stop()
	select {
	case pd.pubAck = <-pd.fut.Ok():
		pd.err = nil
	case err := <-pd.fut.Err():
		pd.err = err
	case <-timer.C:
		pd.err = fmt.Errorf("no ack within %s: %w", p.ackWait, jetstream.ErrAsyncPublishTimeout)
	case <-ctx.Done():
		return ctx.Err() // not settled: may still be acked
	}
	pd.done = true
	if pd.err != nil {
		p.failed.Add(1)
	}
	return pd.err
}

// publishSync publishes pd synchronously, from the given attempt on and
// with the same Nats-Msg-Id every time, until it is acknowledged or
// retryFor has passed since its first attempt.
func (p *publisher) publishSync(ctx context.Context, pd *pending, attempt int) error {
	backoff := 100 * time.Millisecond
	for ; ; attempt++ {
		if attempt > 1 {
			if time.Since(pd.first) >= p.retryFor {
				return fmt.Errorf("publish %s (msg id %s): gave up after %d attempts in %s: %w",
					pd.msg.Subject, pd.msg.Header.Get(jetstream.MsgIDHeader), attempt-1, time.Since(pd.first).Round(time.Millisecond), pd.err)
			}
			msg := "publish failed; retrying with the same msg id"
			switch {
			case p.js.Conn() != nil && !p.js.Conn().IsConnected():
				// nats.go reports odd errors (e.g. "headers not supported")
				// before the first connection is made.
				msg = "not connected to NATS; retrying"
			case errors.Is(pd.err, jetstream.ErrNoStreamResponse), errors.Is(pd.err, nats.ErrNoResponders):
				msg = "no stream for the subject yet (the gateway creates it); retrying"
			}
			p.log.Warn(msg, "subject", pd.msg.Subject, "msg_id", pd.msg.Header.Get(jetstream.MsgIDHeader), "attempt", attempt, "err", pd.err)
			select {
			case <-ctx.Done():
				return p.stopped(ctx)
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, maxBackoff)
		}
		actx, cancel := context.WithTimeout(ctx, p.ackWait)
		ack, err := p.js.PublishMsg(actx, pd.msg, jetstream.WithRetryAttempts(0))
		cancel()
		if err == nil {
			pd.pubAck, pd.err = ack, nil
			p.ack(pd, attempt)
			return nil
		}
		p.failed.Add(1)
		pd.err = err
		if ctx.Err() != nil {
			return p.stopped(ctx)
		}
	}
}
