package history

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
)

func TestTopOfEmptyChannelIsZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	top, err := e.r.Top(e.ctx, ch)
	if err != nil || top != 0 {
		t.Fatalf("Top of an empty stream = %d, %v; want 0", top, err)
	}
	// Other channels' messages do not give ch a top.
	e.fill(subjGlobex, 3, text("globex"))
	top, err = e.r.Top(e.ctx, ch)
	if err != nil || top != 0 {
		t.Fatalf("Top of an empty channel on a busy stream = %d, %v; want 0", top, err)
	}
}

func TestTopIsLastOffsetOfTheSubjectNotOfTheStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	mine := e.fill(subjAcmeDeploy, 5, text("deploy"))
	later := e.publish(pub{subjGlobex, []byte("after")}, pub{subjAcmeBill, []byte("after")})
	top, err := e.r.Top(e.ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if want := mine[len(mine)-1]; top != want {
		t.Fatalf("Top = %d, want %d (the stream's last offset is %d)", top, want, later[1])
	}
	if e.reads("top") == 0 {
		t.Fatal("top reads are not counted")
	}
}

func TestTopsReturnsEachSubjectsNewestOffset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seqs := e.publish(
		pub{subjAcmeDeploy, []byte("a1")},
		pub{subjGlobex, []byte("g1")},
		pub{subjAcmeDeploy, []byte("a2")},
		pub{subjAcmeBill, []byte("b1")},
		pub{subjGlobex, []byte("g2")},
		pub{"tenants.initech.alerts", []byte("i1")}, // not asked for
	)
	got, err := e.r.Tops(e.ctx, "TENANTS", []string{subjAcmeDeploy, subjGlobex, subjAcmeBill, "tenants.empty.deployments"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{subjAcmeDeploy: seqs[2], subjGlobex: seqs[4], subjAcmeBill: seqs[3]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Tops = %v, want %v (channels without messages left out)", got, want)
	}
}

func TestTopsAcrossSeveralBatchesOfSubjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// More subjects than one multi-last read asks for (256).
	var msgs []pub
	var subjects []string
	for i := range 300 {
		s := fmt.Sprintf("tenants.t%03d.deployments", i)
		subjects = append(subjects, s)
		msgs = append(msgs, pub{s, []byte("x")})
	}
	seqs := e.publish(msgs...)
	got, err := e.r.Tops(e.ctx, "TENANTS", subjects)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(subjects) {
		t.Fatalf("Tops returned %d subjects, want %d", len(got), len(subjects))
	}
	for i, s := range subjects {
		if got[s] != seqs[i] {
			t.Fatalf("Tops[%s] = %d, want %d", s, got[s], seqs[i])
		}
	}
}

func TestRangeBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 10, text("deploy"))
	e.fill(subjGlobex, 3, text("later")) // stream moves on; the channel does not

	for _, tc := range []struct {
		name        string
		after, upTo uint64
		max         int
		want        []uint64
		more        bool
	}{
		{"everything from the start", 0, 0, 100, s, false},
		{"after is exclusive", s[2], 0, 100, s[3:], false},
		{"upTo is inclusive", s[2], s[6], 100, s[3:7], false},
		{"upTo between offsets of the channel", s[2], s[6] - 1, 100, s[3:6], false},
		{"after between offsets of the channel", s[2] + 1, 0, 100, s[3:], false},
		{"max cuts and reports more", 0, 0, 4, s[:4], true},
		{"exactly max is not more", s[5], 0, 4, s[6:], false},
		{"max with upTo: more only within upTo", s[1], s[5], 4, s[2:6], false},
		{"max with upTo: more within upTo", s[1], s[6], 4, s[2:6], true},
		{"nothing after the top", s[9], 0, 10, nil, false},
		{"after beyond the stream", s[9] + 1000, 0, 10, nil, false},
		{"empty interval", s[4], s[4], 10, nil, false},
		{"max 0", s[4], 0, 0, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, more, err := e.r.Range(e.ctx, ch, tc.after, tc.upTo, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			onlySubject(t, msgs, subjAcmeDeploy)
			if got := offsets(msgs); !slices.Equal(got, tc.want) || more != tc.more {
				t.Fatalf("Range(%d, %d, %d) = %v more=%v; want %v more=%v", tc.after, tc.upTo, tc.max, got, more, tc.want, tc.more)
			}
		})
	}
}

func TestRangeOfEmptyChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fill(subjGlobex, 3, text("globex"))
	msgs, more, err := e.r.Range(e.ctx, mustChannel(t, "tenant:acme:deployments"), 0, 0, 10)
	if err != nil || len(msgs) != 0 || more {
		t.Fatalf("Range of an empty channel = %v, %v, %v", offsets(msgs), more, err)
	}
}

func TestRangeLongerThanOneBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, maxBatch+150, text("deploy"))
	msgs, more, err := e.r.Range(e.ctx, ch, s[10], 0, len(s))
	if err != nil {
		t.Fatal(err)
	}
	if got := offsets(msgs); !slices.Equal(got, s[11:]) || more {
		t.Fatalf("Range over %d messages returned %d (more=%v), want %d", len(s)-11, len(got), more, len(s)-11)
	}
}

func TestHas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 6, text("deploy"))
	other := e.publish(pub{subjGlobex, []byte("g")})[0]
	e.purge(subjAcmeDeploy, 3) // s[0..2] gone

	for _, tc := range []struct {
		name   string
		offset uint64
		want   bool
	}{
		{"stored message of the channel", s[4], true},
		{"newest message of the channel", s[5], true},
		{"oldest kept message", s[3], true},
		{"purged message", s[1], false},
		{"message of another channel", other, false},
		{"offset between the channel's messages", s[4] - 1, false},
		{"offset beyond the stream", other + 100, false},
		{"zero", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.r.Has(e.ctx, ch, tc.offset)
			if err != nil || got != tc.want {
				t.Fatalf("Has(%d) = %v, %v; want %v", tc.offset, got, err, tc.want)
			}
		})
	}
}

func TestBackfill(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 12, text("deploy"))

	t.Run("returns the missed messages after the anchor up to upTo", func(t *testing.T) {
		msgs, err := e.r.Backfill(e.ctx, ch, s[3], s[8], 10)
		if err != nil {
			t.Fatal(err)
		}
		onlySubject(t, msgs, subjAcmeDeploy)
		if got := offsets(msgs); !slices.Equal(got, s[4:9]) {
			t.Fatalf("Backfill = %v, want %v", got, s[4:9])
		}
	})
	t.Run("exactly max messages", func(t *testing.T) {
		msgs, err := e.r.Backfill(e.ctx, ch, s[3], s[8], 5)
		if err != nil || !slices.Equal(offsets(msgs), s[4:9]) {
			t.Fatalf("Backfill = %v, %v; want %v", offsets(msgs), err, s[4:9])
		}
	})
	t.Run("more than max is a lost gap", func(t *testing.T) {
		msgs, err := e.r.Backfill(e.ctx, ch, s[3], s[8], 4)
		if !errors.Is(err, ErrGapLost) || msgs != nil {
			t.Fatalf("Backfill = %v, %v; want ErrGapLost", offsets(msgs), err)
		}
	})
	t.Run("from the channel's start", func(t *testing.T) {
		msgs, err := e.r.Backfill(e.ctx, ch, 0, s[2], 10)
		if err != nil || !slices.Equal(offsets(msgs), s[:3]) {
			t.Fatalf("Backfill = %v, %v; want %v", offsets(msgs), err, s[:3])
		}
	})
	t.Run("anchor that is not on the channel is a lost gap", func(t *testing.T) {
		_, err := e.r.Backfill(e.ctx, ch, s[3]-1, s[8], 10)
		if !errors.Is(err, ErrGapLost) {
			t.Fatalf("Backfill from an offset of another channel: %v, want ErrGapLost", err)
		}
	})
	t.Run("trimmed anchor is a lost gap", func(t *testing.T) {
		e.purge(subjAcmeDeploy, uint64(len(s)-6)) // s[0..5] gone
		msgs, err := e.r.Backfill(e.ctx, ch, s[5], s[8], 10)
		if !errors.Is(err, ErrGapLost) || msgs != nil {
			t.Fatalf("Backfill after the anchor was purged = %v, %v; want ErrGapLost", offsets(msgs), err)
		}
		msgs, err = e.r.Backfill(e.ctx, ch, s[6], s[8], 10)
		if err != nil || !slices.Equal(offsets(msgs), s[7:9]) {
			t.Fatalf("Backfill from the oldest kept message = %v, %v; want %v", offsets(msgs), err, s[7:9])
		}
	})
}

func TestBackfillAfterPerSubjectLimitTrims(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s, err := e.js.Stream(e.ctx, "TENANTS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgsPerSubject = 5
	if _, err := e.js.UpdateStream(e.ctx, cfg); err != nil {
		t.Fatal(err)
	}
	seqs := e.fill(subjAcmeDeploy, 9, text("deploy")) // seqs[0..3] trimmed by the stream itself
	if _, err := e.r.Backfill(e.ctx, ch, seqs[3], seqs[8], 10); !errors.Is(err, ErrGapLost) {
		t.Fatalf("Backfill from a trimmed anchor: %v, want ErrGapLost", err)
	}
	msgs, err := e.r.Backfill(e.ctx, ch, seqs[4], seqs[8], 10)
	if err != nil || !slices.Equal(offsets(msgs), seqs[5:]) {
		t.Fatalf("Backfill from the oldest kept message = %v, %v; want %v", offsets(msgs), err, seqs[5:])
	}
}

// Each stored message read should cross the wire once. jetstreamext's
// direct gets (natsext.RequestMany) listen on nc.NewRespInbox(), under the
// connection's request-mux wildcard _INBOX.<id>.*, which exists as soon as
// the connection has made one ordinary request (NewReader does, for the
// epochs; the gateway's shared connection does for KV and stream info), so
// the server sends every reply twice. nats-io/jsm.go#820 fixed the same
// thing by subscribing on nc.NewInbox().
func TestStoredMessagesCrossTheWireOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 200, text("deploy"))
	e.freshEpochs()
	in := e.rnc.Stats().InMsgs
	msgs, _, err := e.r.Range(e.ctx, ch, 0, 0, 300)
	if err != nil || len(msgs) != len(s) {
		t.Fatalf("Range = %d messages, %v", len(msgs), err)
	}
	// The messages plus an end-of-batch marker or two.
	if got := e.rnc.Stats().InMsgs - in; got > uint64(len(s))+4 {
		t.Fatalf("reading %d messages received %d messages on the connection", len(s), got)
	}
}

// A read's garbage should be about its messages. nats.go's SubscribeSync
// allocates a 64k-slot channel (512 KB) per subscription, so a direct get
// made on a fresh SubscribeSync costs half a megabyte before any message:
// a history page that takes nine requests makes 4.5 MB of garbage.
// ChanSubscribe with a channel sized to the batch (batch + the end marker;
// the server sends no more) avoids it. Not parallel: it reads the process's
// allocation counter, so nothing else may run meanwhile.
func TestReadsAllocateAboutTheirMessages(t *testing.T) {
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 20, text("deploy"))
	e.freshEpochs()
	const reads = 50
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range reads {
		if top, err := e.r.Top(e.ctx, ch); err != nil || top != s[len(s)-1] {
			t.Fatalf("Top = %d, %v", top, err)
		}
		if ok, err := e.r.Has(e.ctx, ch, s[3]); err != nil || !ok {
			t.Fatalf("Has = %v, %v", ok, err)
		}
	}
	runtime.ReadMemStats(&after)
	// Client and embedded server together; a few KB per read is plenty.
	if per := (after.TotalAlloc - before.TotalAlloc) / (2 * reads); per > 128<<10 {
		t.Fatalf("one single-message read allocates %d KB", per>>10)
	}
}
