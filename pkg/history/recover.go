package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pulseplatform/pulse/pkg/channel"
)

// Why a recovery failed, for logs and metrics.
const (
	ReasonEpoch   = "epoch"   // the stream was recreated: old offsets mean nothing
	ReasonTrimmed = "trimmed" // the message at the client's offset is gone
	ReasonLimit   = "limit"   // more missed messages than the recovery limit
	ReasonUnknown = "unknown" // the client's offset is not on this channel
)

// Recovery is the outcome of a recovery read.
type Recovery struct {
	Msgs      []*Msg // after the client's offset up to the live position, oldest first
	Recovered bool
	Reason    string // when not recovered
	Shared    bool   // the read was shared with other clients recovering alike
}

// Recover reads what a client at (epoch, after) missed up to upTo, the
// position from which the live path takes over. It is all or nothing
// (DESIGN §3): recovered only when the epoch matches, the message at after is
// still stored on the channel (so nothing after it was trimmed; history is
// trimmed oldest first) and the gap holds at most limit messages. upTo must
// be an offset of the channel (or 0 for an empty one): a read is complete
// only when it reaches it.
func (r *Reader) Recover(ctx context.Context, ch channel.Channel, epoch string, after, upTo uint64, limit int) (Recovery, error) {
	start := time.Now()
	defer func() { r.metrics.RecoveryLatency.Observe(time.Since(start).Seconds()) }()
	current, err := r.FreshEpoch(ctx, ch)
	if err != nil {
		return Recovery{}, err
	}
	if epoch != current {
		return Recovery{Reason: ReasonEpoch}, nil
	}
	if after == 0 {
		// From the very beginning: provable only if the stream never lost a
		// message.
		intact, err := r.Intact(ctx, ch)
		if err != nil {
			return Recovery{}, err
		}
		if !intact {
			return Recovery{Reason: ReasonTrimmed}, nil
		}
	}
	if after >= upTo {
		// The client is at or ahead of our live position (it was served by a
		// gateway that saw newer messages): nothing to replay, but its offset
		// must be real.
		if after == 0 {
			return Recovery{Recovered: true}, nil
		}
		ok, err := r.Has(ctx, ch, after)
		if err != nil {
			return Recovery{}, err
		}
		if !ok {
			return Recovery{Reason: ReasonUnknown}, nil
		}
		return Recovery{Recovered: true}, nil
	}
	// Clients recovering a channel from the same offset share one read,
	// even though each asks up to its own live position (which moves while
	// publishing goes on): the read goes to the channel's end, and each
	// takes what is at or below its position.
	key := flightKey{subject: ch.Subject(), after: after, max: limit}
	msgs, more, shared, err := r.flight.do(ctx, key, func() ([]*Msg, bool, error) {
		// The read serves every client waiting on it: the first one leaving
		// must not cancel it for the others.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedReadTimeout)
		defer cancel()
		return r.readAfter(rctx, ch, after, 0, limit)
	})
	if err == nil {
		mine := msgs
		for len(mine) > 0 && mine[len(mine)-1].Sequence > upTo {
			mine = mine[:len(mine)-1]
		}
		passed := len(mine) < len(msgs) // the read went beyond upTo: complete up to it
		switch {
		case passed || (!more && len(mine) > 0 && mine[len(mine)-1].Sequence == upTo):
			return Recovery{Msgs: mine[:len(mine):len(mine)], Recovered: true, Shared: shared}, nil
		case more:
			// More than limit after `after`, all at or below upTo so far:
			// decide on this client's own range.
		default:
			// The shared read ended before this client's position (a
			// replica behind, or the read began before it was stored).
		}
		msgs, more, err = r.readAfter(ctx, ch, after, upTo, limit)
	}
	if errors.Is(err, errAnchorGone) {
		reason, err := r.whyGone(ctx, ch, after)
		if err != nil {
			return Recovery{}, err
		}
		return Recovery{Reason: reason, Shared: shared}, nil
	}
	if err != nil {
		return Recovery{}, err
	}
	if more {
		return Recovery{Reason: ReasonLimit, Shared: shared}, nil
	}
	return Recovery{Msgs: msgs, Recovered: true, Shared: shared}, nil
}

// sharedReadTimeout bounds a recovery read shared by several clients.
const sharedReadTimeout = 10 * time.Second

var errAnchorGone = errors.New("message at the recovery offset is gone")

// whyGone tells a trimmed offset from one that never was this channel's
// without reading outside the channel: history is trimmed oldest first, so
// if the channel still stores a message older than offset, nothing of it
// was trimmed at offset.
func (r *Reader) whyGone(ctx context.Context, ch channel.Channel, offset uint64) (string, error) {
	reason := ReasonTrimmed
	err := r.direct(ctx, ch.Stream(), directRequest{Seq: 1, NextBySubj: ch.Subject(), Batch: 1}, func(m *Msg) bool {
		if m.Subject == ch.Subject() && m.Sequence < offset {
			reason = ReasonUnknown
		}
		return false
	})
	if err != nil && !errors.Is(err, errNoMessages) {
		return "", fmt.Errorf("read %s: %w", ch, err)
	}
	return reason, nil
}

// readAfter reads from after (inclusive, which must still exist unless it
// is 0) to upTo, returning what follows after; one stream read.
func (r *Reader) readAfter(ctx context.Context, ch channel.Channel, after, upTo uint64, limit int) (msgs []*Msg, more bool, err error) {
	defer r.observe("recover", time.Now())
	// upTo is the live position: an offset of this channel that the live
	// path has seen, so a complete read ends on it. On a replicated stream a
	// direct get may be answered by a follower that has not yet applied it:
	// wait for the replica rather than hand out a read short at the end.
	for attempt := 0; ; attempt++ {
		msgs, more, err = r.readAfterOnce(ctx, ch, after, upTo, limit)
		if err != nil || more || upTo <= after || (len(msgs) > 0 && msgs[len(msgs)-1].Sequence == upTo) {
			return msgs, more, err
		}
		if attempt == replicaRetries {
			return nil, false, fmt.Errorf("read %s up to %d: %w", ch, upTo, errReplicaBehind)
		}
		select {
		case <-ctx.Done():
			return nil, false, fmt.Errorf("read %s up to %d: %w", ch, upTo, ctx.Err())
		case <-time.After(replicaRetryWait):
		}
	}
}

// A replica that lags is waited for this many times, this long each.
const (
	replicaRetries   = 40
	replicaRetryWait = 25 * time.Millisecond
)

// errReplicaBehind means every read came from a replica that has not yet
// stored what the live path already delivered.
var errReplicaBehind = errors.New("the stream replica answering reads is behind the live position")

func (r *Reader) readAfterOnce(ctx context.Context, ch channel.Channel, after, upTo uint64, limit int) (msgs []*Msg, more bool, err error) {
	anchored := after == 0
	_, err = r.forward(ctx, ch, after, upTo, limit+2, func(m *Msg) bool {
		if !anchored {
			if m.Sequence != after {
				return false
			}
			anchored = true
			return true
		}
		if len(msgs) == limit {
			more = true
			return false
		}
		msgs = append(msgs, m)
		return true
	})
	if err != nil {
		return nil, false, err
	}
	if !anchored {
		return nil, false, errAnchorGone
	}
	return msgs, more, nil
}

// ErrGapLost means a live gap cannot be filled: the messages are no longer
// stored, or there are too many of them.
var ErrGapLost = errors.New("missed messages are no longer stored")

// Backfill reads the messages of ch after `after` up to upTo for the live
// path, which missed them. It fails with ErrGapLost unless it can prove the
// range complete: the message at after (if any) is still stored, and at most
// max messages follow. upTo must be an offset of the channel.
func (r *Reader) Backfill(ctx context.Context, ch channel.Channel, after, upTo uint64, max int) ([]*Msg, error) {
	msgs, more, err := r.readAfter(ctx, ch, after, upTo, max)
	switch {
	case errors.Is(err, errAnchorGone), err == nil && more:
		return nil, ErrGapLost
	case err != nil:
		return nil, err
	}
	return msgs, nil
}

// Tops returns the newest offset of each channel (all in one stream) with
// one read per batch of subjects; channels with no message are left out.
func (r *Reader) Tops(ctx context.Context, stream string, subjects []string) (map[string]uint64, error) {
	defer r.observe("tops", time.Now())
	out := make(map[string]uint64, len(subjects))
	const per = 256
	for i := 0; i < len(subjects); i += per {
		batch := subjects[i:min(i+per, len(subjects))]
		err := r.direct(ctx, stream, directRequest{MultiLastFor: batch}, func(m *Msg) bool {
			out[m.Subject] = max(out[m.Subject], m.Sequence)
			return true
		})
		if err != nil && !errors.Is(err, errNoMessages) {
			return out, fmt.Errorf("tops of %s: %w", stream, err)
		}
	}
	return out, nil
}
