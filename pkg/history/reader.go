// Package history reads channels' stored events from JetStream: the top
// position of a channel, ranges after an offset (recovery and live
// backfill), pages in either direction (the history command) and text and
// time search. Every read is a batched direct get on the stream
// ($JS.API.DIRECT.GET): no consumer is created, so reads are cheap and do not
// pile up state on the servers.
//
// It must never read outside the one subject of the channel it is asked
// about: tenant isolation depends on it.
package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/metrics"
	"github.com/pulseplatform/pulse/streams"
)

// maxBatch is the most messages asked for in one direct get, and
// maxBatchBytes the most bytes: a larger reply could make the server cut
// the gateway's connection as a slow consumer.
const (
	maxBatch      = 1000
	maxBatchBytes = 1 << 20
)

// Msg is one stored message of a channel.
type Msg = jetstream.RawStreamMsg

// Reader reads channel history. It is safe for concurrent use.
type Reader struct {
	js      jetstream.JetStream
	metrics *metrics.Metrics

	mu          sync.Mutex
	epochs      map[string]string // stream → epoch
	refreshedAt time.Time         // zero: stale, reload before trusting
	refreshMu   sync.Mutex        // one reload at a time

	flight flightGroup // coalesces identical range reads
}

// NewReader returns a reader; it learns each stream's epoch now.
func NewReader(ctx context.Context, js jetstream.JetStream, m *metrics.Metrics) (*Reader, error) {
	r := &Reader{js: js, metrics: m, epochs: map[string]string{}}
	if _, err := r.RefreshEpochs(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Epoch is the current epoch of the stream holding ch.
func (r *Reader) Epoch(ch channel.Channel) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.epochs[ch.Stream()]
}

// StreamEpoch is the current epoch of a stream by name.
func (r *Reader) StreamEpoch(stream string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.epochs[stream]
}

// EpochMaxAge is how long a read epoch is trusted for decisions that
// depend on it (recovery, history since a position). Stream create and
// delete advisories invalidate it sooner.
const EpochMaxAge = time.Second

// InvalidateEpochs makes the next decision reload the epochs, e.g. on a
// stream created or deleted advisory.
func (r *Reader) InvalidateEpochs() {
	r.mu.Lock()
	r.refreshedAt = time.Time{}
	r.mu.Unlock()
}

// FreshEpoch is ch's epoch, reloaded first if older than EpochMaxAge: a
// recreated stream reuses offsets, and a stale epoch would let an old
// position "recover" from the new stream's messages.
func (r *Reader) FreshEpoch(ctx context.Context, ch channel.Channel) (string, error) {
	r.mu.Lock()
	fresh := time.Since(r.refreshedAt) < EpochMaxAge
	r.mu.Unlock()
	if !fresh {
		r.refreshMu.Lock()
		r.mu.Lock()
		fresh = time.Since(r.refreshedAt) < EpochMaxAge // someone else just did it
		r.mu.Unlock()
		var err error
		if !fresh {
			_, err = r.RefreshEpochs(ctx)
		}
		r.refreshMu.Unlock()
		if err != nil {
			return "", err
		}
	}
	return r.Epoch(ch), nil
}

// RefreshEpochs reloads every stream's epoch and returns the streams whose
// epoch changed (recreated since last seen).
func (r *Reader) RefreshEpochs(ctx context.Context) ([]string, error) {
	start := time.Now()
	var changed []string
	for _, name := range channel.Streams() {
		s, err := r.js.Stream(ctx, name)
		if err != nil {
			return changed, fmt.Errorf("stream %s: %w", name, err)
		}
		e := streams.Epoch(s.CachedInfo())
		r.mu.Lock()
		old, seen := r.epochs[name]
		r.epochs[name] = e
		r.mu.Unlock()
		if seen && old != e {
			changed = append(changed, name)
		}
	}
	r.mu.Lock()
	r.refreshedAt = start
	r.mu.Unlock()
	return changed, nil
}

// observe records one history read.
func (r *Reader) observe(kind string, start time.Time) {
	r.metrics.HistoryReads.WithLabelValues(kind).Inc()
	r.metrics.HistoryReadLatency.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}

// Top is the offset of the newest stored message of ch, 0 if none.
func (r *Reader) Top(ctx context.Context, ch channel.Channel) (uint64, error) {
	defer r.observe("top", time.Now())
	var top uint64
	err := r.direct(ctx, ch.Stream(), directRequest{MultiLastFor: []string{ch.Subject()}}, func(m *Msg) bool {
		if m.Subject == ch.Subject() {
			top = max(top, m.Sequence)
		}
		return true
	})
	if err != nil && !errors.Is(err, errNoMessages) {
		return 0, fmt.Errorf("top of %s: %w", ch, err)
	}
	return top, nil
}

// forward reads messages of ch with offset ≥ from, oldest first, calling fn
// for each until fn returns false, the messages end, or upTo (if not 0) is
// passed, reading at most batch messages in all (0: no bound). pending,
// from the first reply, is how many messages of ch exist at or after from.
//
// A read is complete or an error: each reply says how many matching
// messages remain after it (Nats-Num-Pending), so a batch cut short by the
// byte limit is continued, and one cut short by a deadline or a lost
// connection fails instead of passing for the end of the channel.
func (r *Reader) forward(ctx context.Context, ch channel.Channel, from, upTo uint64, batch int, fn func(*Msg) bool) (pending uint64, err error) {
	if from == 0 {
		from = 1
	}
	first := true
	read := 0
	for {
		// batch bounds the whole read (0: none), so the server never sends
		// more than the caller can use.
		size := maxBatch
		if batch > 0 {
			if read >= batch {
				return pending, nil
			}
			size = min(size, batch-read)
		}
		n := 0
		left := uint64(0)
		stop := false
		var ferr error
		err := r.direct(ctx, ch.Stream(), directRequest{Seq: from, NextBySubj: ch.Subject(), Batch: size, MaxBytes: maxBatchBytes},
			func(m *Msg) bool {
				if m.Subject != ch.Subject() {
					// Cannot happen with next_by_subj on a literal subject; if
					// a server ever did it, never hand another channel's data out.
					ferr = fmt.Errorf("read %s: got a message of %s", ch, m.Subject)
					return false
				}
				np, perr := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				if perr != nil {
					ferr = fmt.Errorf("read %s: reply without Nats-Num-Pending", ch)
					return false
				}
				left = np
				if first {
					first = false
					pending = np + 1
				}
				n++
				read++
				if upTo != 0 && m.Sequence > upTo || !fn(m) {
					stop = true
					return false
				}
				from = m.Sequence + 1
				return true
			})
		switch {
		case ferr != nil:
			return pending, ferr
		case errors.Is(err, errNoMessages):
			return pending, nil
		case err != nil:
			return pending, fmt.Errorf("read %s from %d: %w", ch, from, err)
		case stop:
			return pending, nil
		case n == 0:
			return pending, fmt.Errorf("read %s from %d: %w", ch, from, errIncomplete)
		case left == 0 || (upTo != 0 && from > upTo):
			return pending, nil
		}
	}
}

// errIncomplete means a batch ended before any message or end marker.
var errIncomplete = errors.New("the reply ended without messages or an end marker")

// Range returns the messages of ch with after < offset ≤ upTo (upTo 0: no
// bound), oldest first, at most max of them; more reports that there were
// more than max.
func (r *Reader) Range(ctx context.Context, ch channel.Channel, after, upTo uint64, max int) (msgs []*Msg, more bool, err error) {
	defer r.observe("range", time.Now())
	_, err = r.forward(ctx, ch, after+1, upTo, max+1, func(m *Msg) bool {
		if len(msgs) == max {
			more = true
			return false
		}
		msgs = append(msgs, m)
		return true
	})
	return msgs, more, err
}

// Has reports whether the message at offset is still stored on ch.
func (r *Reader) Has(ctx context.Context, ch channel.Channel, offset uint64) (bool, error) {
	defer r.observe("has", time.Now())
	found := false
	_, err := r.forward(ctx, ch, offset, offset, 1, func(m *Msg) bool {
		found = m.Sequence == offset
		return false
	})
	return found, err
}

// Intact reports whether the stream holding ch has never dropped a message
// (nothing trimmed, purged or deleted), so a position of 0 is recoverable.
func (r *Reader) Intact(ctx context.Context, ch channel.Channel) (bool, error) {
	s, err := r.js.Stream(ctx, ch.Stream())
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", ch.Stream(), err)
	}
	st := s.CachedInfo().State
	return st.FirstSeq <= 1 && st.NumDeleted == 0, nil
}

// countFrom is how many messages of ch have an offset ≥ seq: one small read.
func (r *Reader) countFrom(ctx context.Context, ch channel.Channel, seq uint64) (uint64, error) {
	return r.forward(ctx, ch, seq, 0, 1, func(*Msg) bool { return false })
}
