package history

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pulseplatform/pulse/streams"
)

func TestRecover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 20, text("deploy"))
	top := s[len(s)-1]
	foreign := e.publish(pub{subjGlobex, []byte("g")})[0] // above the channel's top
	epoch := e.r.Epoch(ch)
	if epoch == "" {
		t.Fatal("no epoch for TENANTS")
	}

	for _, tc := range []struct {
		name        string
		epoch       string
		after, upTo uint64
		limit       int
		recovered   bool
		reason      string
		want        []uint64 // the replay, when recovered
	}{
		{"exactly the missed messages in order", epoch, s[11], top, 300, true, "", s[12:]},
		{"only up to the live position", epoch, s[3], s[9], 300, true, "", s[4:10]},
		{"gap of exactly the limit", epoch, s[9], top, 10, true, "", s[10:]},
		{"one more than the limit", epoch, s[8], top, 10, false, ReasonLimit, nil},
		{"epoch of another life of the stream", "0abc", s[11], top, 300, false, ReasonEpoch, nil},
		{"empty epoch", "", s[11], top, 300, false, ReasonEpoch, nil},
		{"client at the live position", epoch, top, top, 300, true, "", nil},
		{"client ahead of the live position", epoch, top, s[15], 300, true, "", nil},
		{"offset ahead of the live position that the channel never had", epoch, foreign, top, 300, false, ReasonUnknown, nil},
		{"offset beyond the stream", epoch, foreign + 1000, top, 300, false, ReasonUnknown, nil},
		{"from the beginning of an intact stream", epoch, 0, top, 300, true, "", s},
		{"from the beginning with nothing stored yet", epoch, 0, 0, 300, true, "", nil},
		{"from the beginning with more than the limit", epoch, 0, top, 5, false, ReasonLimit, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.r.Recover(e.ctx, ch, tc.epoch, tc.after, tc.upTo, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			onlySubject(t, got.Msgs, subjAcmeDeploy)
			if got.Recovered != tc.recovered || got.Reason != tc.reason || !slices.Equal(offsets(got.Msgs), tc.want) {
				t.Fatalf("Recover(%q, %d, %d, %d) = recovered=%v reason=%q msgs=%v; want recovered=%v reason=%q msgs=%v",
					tc.epoch, tc.after, tc.upTo, tc.limit, got.Recovered, got.Reason, offsets(got.Msgs),
					tc.recovered, tc.reason, tc.want)
			}
		})
	}
}

func TestRecoverPayloadsAreTheStoredOnes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 5, text("deploy"))
	rec, err := e.r.Recover(e.ctx, ch, e.r.Epoch(ch), s[1], s[4], 300)
	if err != nil || !rec.Recovered {
		t.Fatalf("Recover = %+v, %v", rec, err)
	}
	for i, m := range rec.Msgs {
		if want := string(text("deploy")(i + 2)); string(m.Data) != want {
			t.Fatalf("message %d has %q, want %q", m.Sequence, m.Data, want)
		}
	}
}

func TestRecoverAnchorTrimmed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 10, text("deploy"))
	e.fill(subjGlobex, 10, text("globex"))
	top := s[len(s)-1]
	epoch := e.r.Epoch(ch)
	e.purge(subjAcmeDeploy, 5) // s[0..4] gone

	for _, tc := range []struct {
		name  string
		after uint64
		want  Recovery
	}{
		{"anchor purged", s[2], Recovery{Reason: ReasonTrimmed}},
		{"anchor is the newest purged message", s[4], Recovery{Reason: ReasonTrimmed}},
		{"anchor is the oldest kept message", s[5], Recovery{Recovered: true}},
		// The stream lost messages, so "from the beginning" cannot be proved.
		{"from the beginning of a trimmed stream", 0, Recovery{Reason: ReasonTrimmed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.r.Recover(e.ctx, ch, epoch, tc.after, top, 300)
			if err != nil {
				t.Fatal(err)
			}
			if got.Recovered != tc.want.Recovered || got.Reason != tc.want.Reason {
				t.Fatalf("Recover(after %d) = recovered=%v reason=%q; want recovered=%v reason=%q",
					tc.after, got.Recovered, got.Reason, tc.want.Recovered, tc.want.Reason)
			}
			if got.Recovered && !slices.Equal(offsets(got.Msgs), after(s, tc.after)) {
				t.Fatalf("recovered %v, want %v", offsets(got.Msgs), after(s, tc.after))
			}
			if !got.Recovered && len(got.Msgs) != 0 {
				t.Fatal("not recovered but publications returned")
			}
		})
	}
}

// An offset the client cannot have got from this channel (it belongs to
// another channel) is "unknown", not "trimmed", also below the live
// position: the channel still stores messages older than it, and history is
// trimmed oldest first, so nothing was trimmed at that offset.
func TestRecoverOffsetOfAnotherChannelIsUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 10, text("deploy"))
	foreign := s[5] - 1 // a neighbour's message between two of ours
	got, err := e.r.Recover(e.ctx, ch, e.r.Epoch(ch), foreign, s[9], 300)
	if err != nil {
		t.Fatal(err)
	}
	if got.Recovered || got.Reason != ReasonUnknown {
		t.Fatalf("Recover from another channel's offset %d = recovered=%v reason=%q; want reason %q",
			foreign, got.Recovered, got.Reason, ReasonUnknown)
	}
}

func TestRecoverAfterStreamRecreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 5, text("deploy"))
	old := e.r.Epoch(ch)

	if err := e.js.DeleteStream(e.ctx, "TENANTS"); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Ensure(e.ctx, e.js, 1); err != nil {
		t.Fatal(err)
	}
	changed, err := e.r.RefreshEpochs(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []string{"TENANTS"}) {
		t.Fatalf("RefreshEpochs reported %v, want [TENANTS]", changed)
	}
	if e.r.Epoch(ch) == old {
		t.Fatal("epoch unchanged after the stream was recreated")
	}
	s2 := e.fill(subjAcmeDeploy, 8, text("again")) // the same offsets exist again
	got, err := e.r.Recover(e.ctx, ch, old, s[2], s2[len(s2)-1], 300)
	if err != nil {
		t.Fatal(err)
	}
	if got.Recovered || got.Reason != ReasonEpoch {
		t.Fatalf("Recover with the old epoch = recovered=%v reason=%q; want %q", got.Recovered, got.Reason, ReasonEpoch)
	}
}

// recoverAll runs n Recover calls (call(ctx, i)) at once while the reader's
// connection is held back, so that they overlap for certain, and returns
// their results once the gate opens.
func recoverAll(t *testing.T, e *env, n int, call func(ctx context.Context, i int) (Recovery, error)) ([]Recovery, []error) {
	t.Helper()
	recs := make([]Recovery, n)
	errs := make([]error, n)
	e.freshEpochs()
	e.gate.shut()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { recs[i], errs[i] = call(e.ctx, i) })
	}
	time.Sleep(200 * time.Millisecond) // every call is waiting on the one read
	e.gate.open()
	wg.Wait()
	return recs, errs
}

func TestRecoverCoalescesIdenticalConcurrentReads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 40, text("deploy"))
	top, epoch := s[len(s)-1], e.r.Epoch(ch)
	before := e.reads("recover")

	const clients = 50
	recs, errs := recoverAll(t, e, clients, func(ctx context.Context, _ int) (Recovery, error) {
		return e.r.Recover(ctx, ch, epoch, s[9], top, 300)
	})
	leaders := 0
	for i, rec := range recs {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		if !rec.Recovered || !slices.Equal(offsets(rec.Msgs), s[10:]) {
			t.Fatalf("client %d: recovered=%v reason=%q msgs=%v; want %v", i, rec.Recovered, rec.Reason, offsets(rec.Msgs), s[10:])
		}
		if !rec.Shared {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d clients read the stream themselves, want 1 read shared by all", leaders)
	}
	if got := e.reads("recover") - before; got != 1 {
		t.Fatalf("pulse_history_reads_total{kind=recover} grew by %v, want 1", got)
	}

	// Different positions are different reads.
	before = e.reads("recover")
	positions := []uint64{s[9], s[19]}
	recs, errs = recoverAll(t, e, len(positions), func(ctx context.Context, i int) (Recovery, error) {
		return e.r.Recover(ctx, ch, epoch, positions[i], top, 300)
	})
	for i, rec := range recs {
		if errs[i] != nil || !rec.Recovered || rec.Shared {
			t.Fatalf("distinct recovery %d: %+v, %v; want its own read", i, rec, errs[i])
		}
	}
	if got := e.reads("recover") - before; got != 2 {
		t.Fatalf("two distinct recoveries made %v reads, want 2", got)
	}

	// The same offset with different live positions (publishing goes on
	// during a reconnect storm) is still one read; each gets its own range.
	before = e.reads("recover")
	ups := []uint64{s[20], s[30], top}
	recs, errs = recoverAll(t, e, len(ups)*10, func(ctx context.Context, i int) (Recovery, error) {
		return e.r.Recover(ctx, ch, epoch, s[9], ups[i%len(ups)], 300)
	})
	for i, rec := range recs {
		end := slices.Index(s, ups[i%len(ups)])
		if errs[i] != nil || !rec.Recovered || !slices.Equal(offsets(rec.Msgs), s[10:end+1]) {
			t.Fatalf("client %d up to %d: %v %v, %v", i, ups[i%len(ups)], rec.Recovered, offsets(rec.Msgs), errs[i])
		}
	}
	if got := e.reads("recover") - before; got != 1 {
		t.Fatalf("recoveries from one offset to several positions made %v reads, want 1", got)
	}
}

// A client that gives up (its subscribe context ends: it disconnected) must
// not fail the recovery of every other client sharing its read — in a
// reconnect storm some clients always go away mid-recovery.
func TestRecoverSharedReadSurvivesTheFirstCallerLeaving(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 40, text("deploy"))
	top, epoch := s[len(s)-1], e.r.Epoch(ch)
	key := flightKey{subject: ch.Subject(), after: s[9], max: 300}

	e.freshEpochs()
	e.gate.shut()
	leaving, leave := context.WithCancel(e.ctx)
	leftErr := make(chan error, 1)
	go func() {
		_, err := e.r.Recover(leaving, ch, epoch, s[9], top, 300)
		leftErr <- err
	}()
	// Wait until the leaving client's read is the one in flight.
	for deadline := time.Now().Add(5 * time.Second); ; {
		e.r.flight.mu.Lock()
		_, inFlight := e.r.flight.calls[key]
		e.r.flight.mu.Unlock()
		if inFlight {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first recovery never started its read")
		}
		time.Sleep(time.Millisecond)
	}
	const stayers = 5
	recs := make([]Recovery, stayers)
	errs := make([]error, stayers)
	var wg sync.WaitGroup
	for i := range stayers {
		wg.Go(func() { recs[i], errs[i] = e.r.Recover(e.ctx, ch, epoch, s[9], top, 300) })
	}
	time.Sleep(100 * time.Millisecond) // the others now wait on the leaving client's read
	leave()
	select {
	case <-leftErr:
	case <-time.After(5 * time.Second):
		t.Fatal("the leaving client's Recover did not return after its context ended")
	}
	e.gate.open()
	wg.Wait()
	for i := range stayers {
		if errs[i] != nil || !recs[i].Recovered || !slices.Equal(offsets(recs[i].Msgs), s[10:]) {
			t.Errorf("client %d, still connected, got recovered=%v reason=%q msgs=%d err=%v; want the %d missed messages",
				i, recs[i].Recovered, recs[i].Reason, len(recs[i].Msgs), errs[i], len(s[10:]))
		}
	}
}

// Telling "trimmed" from "unknown" must not read the other channel's
// message at that offset: the package never reads outside the channel it
// is asked about (tenant isolation), even to look at a subject. The
// channel's own oldest stored offset answers it: history is trimmed oldest
// first, so a channel that still stores a message older than the offset
// lost nothing there.
func TestRecoverNeverReadsAnotherChannelsMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	secret := bytes.Repeat([]byte("globex secret "), 4<<10) // 56 KB
	seqs := e.publish(
		pub{subjAcmeDeploy, []byte("a1")},
		pub{subjGlobex, secret},
		pub{subjAcmeDeploy, []byte("a2")},
		pub{subjAcmeDeploy, []byte("a3")},
	)
	e.freshEpochs()
	in := e.rnc.Stats().InBytes
	rec, err := e.r.Recover(e.ctx, ch, e.r.Epoch(ch), seqs[1], seqs[3], 300)
	if err != nil || rec.Recovered {
		t.Fatalf("Recover from another channel's offset = %+v, %v", rec, err)
	}
	if got := e.rnc.Stats().InBytes - in; got > uint64(len(secret))/2 {
		t.Fatalf("recovering tenant:acme:deployments from globex's offset %d received %d bytes: globex's message was read", seqs[1], got)
	}
	if rec.Reason != ReasonUnknown {
		t.Fatalf("reason %q, want %q: acme still stores an older message", rec.Reason, ReasonUnknown)
	}
}
