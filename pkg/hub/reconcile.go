package hub

import (
	"context"
	"time"
)

// Reconciliation: the stream, not the live copy, is the truth (DESIGN §3).
// RePublish is at-most-once, so a channel that goes quiet right after a lost
// copy would hide the loss forever; after a NATS reconnect or a stream leader
// change copies may be missing. Reconcile compares every active channel with
// its stream and backfills what the live path missed.

// Reconcile checks every active channel against its stream now. A channel
// whose stream was recreated since it was synced (another epoch) resets its
// position and tells its subscribers to recover.
func (h *Hub) Reconcile(ctx context.Context, trigger string) {
	h.metrics.Reconciles.WithLabelValues(trigger).Inc()
	if _, err := h.reader.RefreshEpochs(ctx); err != nil {
		h.log.Warn("reconcile: read stream epochs", "err", err)
	}
	byStream := map[string][]*entry{}
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for _, e := range sh.channels {
			byStream[e.ch.Stream()] = append(byStream[e.ch.Stream()], e)
		}
		sh.mu.Unlock()
	}
	for stream, entries := range byStream {
		subjects := make([]string, 0, len(entries))
		for _, e := range entries {
			subjects = append(subjects, e.ch.Subject())
		}
		tops, err := h.reader.Tops(ctx, stream, subjects)
		if err != nil {
			h.log.Warn("reconcile: read channel positions", "stream", stream, "err", err)
			continue
		}
		epoch := h.reader.StreamEpoch(stream)
		for _, e := range entries {
			h.reconcileEntry(e, tops[e.ch.Subject()], epoch)
		}
	}
}

func (h *Hub) reconcileEntry(e *entry, top uint64, epoch string) {
	select {
	case <-e.ready:
	default:
		return // still starting: it reads its own position
	}
	if e.err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case epoch != "" && e.epoch != epoch:
		h.log.Warn("stream recreated: channel position reset, subscribers must recover", "channel", e.ch.Name())
		for _, s := range e.subs {
			s.InsufficientState()
		}
		e.lastOffset, e.epoch = top, epoch
		e.forget()
	case top > e.lastOffset:
		h.backfillLocked(e, top, "reconcile")
	}
}

// requestReconcile asks the loop for a reconcile soon, without blocking.
func (h *Hub) requestReconcile(trigger string) {
	select {
	case h.kick <- trigger:
	default:
	}
}

// RequestReconcile is for events outside the hub: a NATS reconnect, a stream
// leader election.
func (h *Hub) RequestReconcile(trigger string) { h.requestReconcile(trigger) }

// Run reconciles every interval and on request, at most once per
// minGap, until ctx ends.
func (h *Hub) Run(ctx context.Context, interval, minGap time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last time.Time
	for {
		trigger := "periodic"
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case trigger = <-h.kick:
			if wait := minGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		rctx, cancel := context.WithTimeout(ctx, interval)
		h.Reconcile(rctx, trigger)
		cancel()
	}
}
