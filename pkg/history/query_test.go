package history

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func ptr(u uint64) *uint64 { return &u }

func TestHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 20, text("deploy"))
	e.fill(subjGlobex, 5, text("later")) // the stream moves on past the channel's top
	top, epoch := s[len(s)-1], e.r.Epoch(ch)

	for _, tc := range []struct {
		name    string
		limit   int
		since   *uint64
		reverse bool
		want    []uint64
	}{
		{"oldest first from the start", 5, nil, false, s[:5]},
		{"forward from since, exclusive", 5, ptr(s[4]), false, s[5:10]},
		{"forward from an offset between the channel's", 5, ptr(s[4] + 1), false, s[5:10]},
		{"forward from since 0 is from the start", 5, ptr(0), false, s[:5]},
		{"forward page at the end is short", 5, ptr(s[17]), false, s[18:]},
		{"forward from the top is empty", 5, ptr(top), false, nil},
		{"forward limit above the channel's size", 100, nil, false, s},
		{"newest first without since", 5, nil, true, reversed(s[15:])},
		{"newest first before since, exclusive", 3, ptr(s[10]), true, reversed(s[7:10])},
		{"reverse from an offset between the channel's", 3, ptr(s[10] - 1), true, reversed(s[7:10])},
		{"reverse page at the start is short", 10, ptr(s[2]), true, reversed(s[:2])},
		{"reverse before the oldest is empty", 10, ptr(s[0]), true, nil},
		{"reverse limit above the channel's size", 100, nil, true, reversed(s)},
		{"reverse from beyond the top", 2, ptr(top + 100), true, reversed(s[18:])},
		{"limit 0 is the position only", 0, nil, false, nil},
		{"limit 0 reverse is the position only", 0, ptr(s[3]), true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.r.History(e.ctx, ch, tc.limit, tc.since, epoch, tc.reverse)
			if err != nil {
				t.Fatal(err)
			}
			onlySubject(t, p.Msgs, subjAcmeDeploy)
			if got := offsets(p.Msgs); !slices.Equal(got, tc.want) {
				t.Fatalf("History(limit %d, since %v, reverse %v) = %v, want %v", tc.limit, deref(tc.since), tc.reverse, got, tc.want)
			}
			if p.Top != top || p.Epoch != epoch {
				t.Fatalf("position top=%d epoch=%q, want top=%d epoch=%q", p.Top, p.Epoch, top, epoch)
			}
		})
	}
}

func deref(p *uint64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

func TestHistoryPagesThroughEverythingBothWays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 23, text("deploy"))
	epoch := e.r.Epoch(ch)

	var fwd []uint64
	var since *uint64
	for range 10 {
		p, err := e.r.History(e.ctx, ch, 4, since, epoch, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Msgs) == 0 {
			break
		}
		fwd = append(fwd, offsets(p.Msgs)...)
		since = ptr(p.Msgs[len(p.Msgs)-1].Sequence)
	}
	if !slices.Equal(fwd, s) {
		t.Fatalf("forward pages visited %v, want %v", fwd, s)
	}

	var rev []uint64
	since = nil
	for range 10 {
		p, err := e.r.History(e.ctx, ch, 4, since, epoch, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Msgs) == 0 {
			break
		}
		rev = append(rev, offsets(p.Msgs)...)
		since = ptr(p.Msgs[len(p.Msgs)-1].Sequence)
	}
	if !slices.Equal(rev, reversed(s)) {
		t.Fatalf("reverse pages visited %v, want %v", rev, reversed(s))
	}
}

// Reverse reads walk down in windows of offsets that grow; a sparse channel
// (its messages far apart among busy neighbours) and a dense one longer
// than one batch must both come back complete and newest first.
func TestHistoryReverseAcrossWindows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sparse := mustChannel(t, "tenant:acme:deployments")
	dense := mustChannel(t, "tenant:acme:billing")
	var msgs []pub
	var idx []int
	for i := range 40 {
		for j := range 30 + i%7 {
			msgs = append(msgs, pub{subjGlobex, fmt.Appendf(nil, "noise %d/%d", i, j)})
		}
		idx = append(idx, len(msgs))
		msgs = append(msgs, pub{subjAcmeDeploy, fmt.Appendf(nil, "sparse %d", i)})
	}
	for i := range maxBatch + 300 {
		msgs = append(msgs, pub{subjAcmeBill, fmt.Appendf(nil, "dense %d", i)})
	}
	seqs := e.publish(msgs...)
	var s []uint64
	for _, k := range idx {
		s = append(s, seqs[k])
	}
	d := seqs[len(seqs)-(maxBatch+300):]
	epoch := e.r.Epoch(sparse)

	p, err := e.r.History(e.ctx, sparse, 100, nil, epoch, true)
	if err != nil || !slices.Equal(offsets(p.Msgs), reversed(s)) {
		t.Fatalf("sparse reverse = %v, %v; want %v", offsets(p.Msgs), err, reversed(s))
	}
	p, err = e.r.History(e.ctx, sparse, 7, ptr(s[30]), epoch, true)
	if err != nil || !slices.Equal(offsets(p.Msgs), reversed(s[23:30])) {
		t.Fatalf("sparse reverse before %d = %v, %v; want %v", s[30], offsets(p.Msgs), err, reversed(s[23:30]))
	}
	p, err = e.r.History(e.ctx, dense, maxBatch+100, ptr(d[len(d)-50]), epoch, true)
	want := reversed(d[len(d)-50-(maxBatch+100) : len(d)-50])
	if err != nil || !slices.Equal(offsets(p.Msgs), want) {
		t.Fatalf("dense reverse = %d messages, %v; want %d newest first", len(p.Msgs), err, len(want))
	}
	onlySubject(t, p.Msgs, subjAcmeBill)
}

func TestHistoryOfEmptyChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	e.fill(subjGlobex, 4, text("globex"))
	for _, reverse := range []bool{false, true} {
		p, err := e.r.History(e.ctx, ch, 10, nil, "", reverse)
		if err != nil || len(p.Msgs) != 0 || p.Top != 0 || p.Epoch != e.r.Epoch(ch) {
			t.Fatalf("History(reverse %v) of an empty channel = %v top=%d epoch=%q, %v", reverse, offsets(p.Msgs), p.Top, p.Epoch, err)
		}
	}
}

func TestHistoryEpochMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 3, text("deploy"))
	epoch := e.r.Epoch(ch)

	for _, reverse := range []bool{false, true} {
		p, err := e.r.History(e.ctx, ch, 10, ptr(s[1]), "other-life", reverse)
		if !errors.Is(err, ErrEpochMismatch) || len(p.Msgs) != 0 {
			t.Fatalf("History from another epoch (reverse %v) = %v, %v; want ErrEpochMismatch", reverse, offsets(p.Msgs), err)
		}
		if p.Epoch != epoch {
			t.Fatalf("the mismatch reply carries epoch %q, want the current %q", p.Epoch, epoch)
		}
	}
	// Without a position the client's epoch does not matter, and a position
	// without an epoch is taken as of the current one.
	if _, err := e.r.History(e.ctx, ch, 10, nil, "other-life", false); err != nil {
		t.Fatalf("History without since but with an old epoch: %v", err)
	}
	p, err := e.r.History(e.ctx, ch, 10, ptr(s[0]), "", false)
	if err != nil || !slices.Equal(offsets(p.Msgs), s[1:]) {
		t.Fatalf("History with since and no epoch = %v, %v; want %v", offsets(p.Msgs), err, s[1:])
	}
}

func TestHistoryReverseNeedsSince(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	e.fill(subjAcmeDeploy, 3, text("deploy"))
	if _, err := e.r.History(e.ctx, ch, 10, ptr(0), e.r.Epoch(ch), true); !errors.Is(err, ErrReverseSince) {
		t.Fatalf("reverse with since.offset 0: %v, want ErrReverseSince", err)
	}
}
