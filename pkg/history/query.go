package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/pulseplatform/pulse/pkg/channel"
)

// Named errors of history queries.
var (
	ErrEpochMismatch = errors.New("position is from another epoch of the stream")
	ErrReverseSince  = errors.New("reverse history needs since.offset > 0")
)

// Page is one page of a channel's history.
type Page struct {
	Msgs  []*Msg
	Top   uint64 // newest offset on the channel
	Epoch string
}

// History pages through ch: limit messages after since (oldest first) or,
// with reverse, before since (newest first); without since, from the oldest
// or the newest. limit 0 returns only the position.
func (r *Reader) History(ctx context.Context, ch channel.Channel, limit int, since *uint64, sinceEpoch string, reverse bool) (Page, error) {
	defer r.observe("history", time.Now())
	epoch, err := r.FreshEpoch(ctx, ch)
	if err != nil {
		return Page{}, err
	}
	p := Page{Epoch: epoch}
	if since != nil && sinceEpoch != "" && sinceEpoch != p.Epoch {
		return p, ErrEpochMismatch
	}
	if reverse && since != nil && *since == 0 {
		return p, ErrReverseSince
	}
	top, err := r.Top(ctx, ch)
	if err != nil {
		return p, err
	}
	p.Top = top
	if limit <= 0 || top == 0 {
		return p, nil
	}
	if !reverse {
		from := uint64(1)
		if since != nil {
			from = *since + 1
		}
		_, err = r.forward(ctx, ch, from, top, limit, func(m *Msg) bool {
			p.Msgs = append(p.Msgs, m)
			return len(p.Msgs) < limit
		})
		return p, err
	}
	hi := top
	if since != nil {
		hi = *since - 1
	}
	_, err = r.backward(ctx, ch, 1, hi, limit, func(m *Msg) bool {
		p.Msgs = append(p.Msgs, m)
		return len(p.Msgs) < limit
	})
	return p, err
}

// backward calls fn for the messages of ch with lo ≤ offset ≤ hi, newest
// first, until fn returns false; done reports that none is left below the
// last one passed to fn. It reads forward in windows of offsets that grow
// from the top down, so a few recent messages cost one small read. Each
// window's message count is asked for first (a one-message read), so a
// window is read with a batch that fits it, and with budget > 0 it is
// shrunk towards the top until it fits what is left of the budget: at most
// about budget messages are read in all.
func (r *Reader) backward(ctx context.Context, ch channel.Channel, lo, hi uint64, budget int, fn func(*Msg) bool) (done bool, err error) {
	if lo == 0 {
		lo = 1
	}
	if hi < lo {
		return true, nil
	}
	total, err := r.countFrom(ctx, ch, lo)
	if err != nil {
		return false, err
	}
	above, err := r.countFrom(ctx, ch, hi+1) // messages above hi
	if err != nil {
		return false, err
	}
	left := int64(total) - int64(above) // messages in [lo, hi]
	read := 0
	span := uint64(64)
	for left > 0 && hi >= lo {
		if budget > 0 && read >= budget {
			return false, nil
		}
		start := lo
		if hi-lo+1 > span {
			start = hi - span + 1
		}
		var inWin int64
		for {
			if start == lo {
				inWin = left
			} else {
				n, err := r.countFrom(ctx, ch, start)
				if err != nil {
					return false, err
				}
				inWin = int64(n) - int64(above)
			}
			if budget <= 0 || inWin <= int64(budget-read) || start == hi {
				break
			}
			// Shrink to what the budget covers at this window's density,
			// and by at least half.
			span := (hi - start + 1) * uint64(budget-read) / uint64(inWin)
			next := hi - max(span, 1) + 1
			if next <= start {
				next = start + (hi-start+1)/2
			}
			start = next
		}
		if inWin > 0 {
			var win []*Msg
			if _, err := r.forward(ctx, ch, start, hi, int(inWin), func(m *Msg) bool {
				win = append(win, m)
				return true
			}); err != nil {
				return false, err
			}
			read += len(win)
			above += uint64(len(win))
			left -= int64(len(win))
			for i := len(win) - 1; i >= 0; i-- {
				if !fn(win[i]) {
					return i == 0 && left <= 0, nil
				}
			}
		}
		if start == lo {
			break
		}
		hi = start - 1
		if span < 1<<30 {
			span *= 4
		}
	}
	return true, nil
}

// SearchQuery asks for matching publications of one channel, newest first.
type SearchQuery struct {
	Text    string    // case-insensitive substring of the payload; "" matches all
	Since   time.Time // stored at or after (zero: no bound)
	Until   time.Time // stored at or before (zero: no bound)
	Before  uint64    // page cursor: only offsets below it (0: from the newest)
	Limit   int       // matches per page
	ScanCap int       // most messages examined per request
}

// SearchResult is one page of matches.
type SearchResult struct {
	Msgs       []*Msg
	Epoch      string
	Scanned    int
	CapHit     bool   // stopped because ScanCap messages were examined
	NextBefore uint64 // cursor for the next page; 0 when the range is exhausted
}

// Search finds publications of ch by text and stored time, newest first,
// with bounded work: at most q.ScanCap messages are read per call.
func (r *Reader) Search(ctx context.Context, ch channel.Channel, q SearchQuery) (SearchResult, error) {
	defer r.observe("search", time.Now())
	res := SearchResult{Epoch: r.Epoch(ch)}
	hi, err := r.Top(ctx, ch)
	if err != nil || hi == 0 {
		return res, err
	}
	if q.Before > 0 && q.Before-1 < hi {
		hi = q.Before - 1
	}
	if !q.Until.IsZero() {
		u, err := r.lastUpToTime(ctx, ch, q.Until)
		if err != nil {
			return res, err
		}
		if u < hi {
			hi = u
		}
	}
	lo := uint64(1)
	if !q.Since.IsZero() {
		s, err := r.firstFromTime(ctx, ch, q.Since)
		if err != nil {
			return res, err
		}
		if s == 0 {
			return res, nil // nothing stored since then
		}
		lo = s
	}
	if hi == 0 || hi < lo {
		return res, nil
	}
	needle := bytes.ToLower([]byte(q.Text))
	var lowest uint64
	done, err := r.backward(ctx, ch, lo, hi, q.ScanCap, func(m *Msg) bool {
		if res.Scanned == q.ScanCap {
			return false
		}
		res.Scanned++
		lowest = m.Sequence
		if !q.Since.IsZero() && m.Time.Before(q.Since) || !q.Until.IsZero() && m.Time.After(q.Until) {
			return true
		}
		if len(needle) > 0 && !containsFold(m.Data, needle) {
			return true
		}
		res.Msgs = append(res.Msgs, m)
		return len(res.Msgs) < q.Limit
	})
	if err != nil {
		return res, err
	}
	if !done {
		// More below: the next page starts under the last message examined.
		res.NextBefore = lowest
		res.CapHit = len(res.Msgs) < q.Limit
	}
	return res, nil
}

// containsFold reports whether data contains the lower-case needle, ignoring
// case for ASCII and UTF-8 letters alike.
func containsFold(data, lowerNeedle []byte) bool {
	if utf8.Valid(data) {
		return bytes.Contains(bytes.ToLower(data), lowerNeedle)
	}
	return bytes.Contains(data, lowerNeedle)
}

// firstFromTime is the offset of the first message of ch stored at or after
// t, 0 if none.
func (r *Reader) firstFromTime(ctx context.Context, ch channel.Channel, t time.Time) (uint64, error) {
	var first uint64
	err := r.direct(ctx, ch.Stream(), directRequest{StartTime: &t, NextBySubj: ch.Subject(), Batch: 1}, func(m *Msg) bool {
		if m.Subject == ch.Subject() {
			first = m.Sequence
		}
		return false
	})
	if err != nil && !errors.Is(err, errNoMessages) {
		return 0, fmt.Errorf("read %s from %s: %w", ch, t.Format(time.RFC3339), err)
	}
	return first, nil
}

// lastUpToTime is the offset of the last message of ch stored at or before
// t, 0 if none.
func (r *Reader) lastUpToTime(ctx context.Context, ch channel.Channel, t time.Time) (uint64, error) {
	// The server's up_to_time excludes messages stored at exactly t; one
	// nanosecond later includes them.
	upTo := t.Add(time.Nanosecond)
	var last uint64
	err := r.direct(ctx, ch.Stream(), directRequest{MultiLastFor: []string{ch.Subject()}, UpToTime: &upTo}, func(m *Msg) bool {
		if m.Subject == ch.Subject() {
			last = max(last, m.Sequence)
		}
		return true
	})
	if err != nil && !errors.Is(err, errNoMessages) {
		return 0, fmt.Errorf("read %s up to %s: %w", ch, t.Format(time.RFC3339), err)
	}
	return last, nil
}
