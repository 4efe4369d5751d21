package streams_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/natsembed"
	"github.com/pulseplatform/pulse/streams"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConfigsMatchChannelContract(t *testing.T) {
	t.Parallel()
	cfgs, err := streams.Configs(0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cfgs {
		names = append(names, c.Name)
		if !c.AllowDirect || c.Duplicates != 2*time.Minute || c.MaxMsgsPerSubject <= 0 || c.MaxAge <= 0 ||
			c.Storage != jetstream.FileStorage || c.Retention != jetstream.LimitsPolicy || c.Discard != jetstream.DiscardOld ||
			c.Replicas != 1 || c.RePublish == nil || c.RePublish.HeadersOnly {
			t.Errorf("%s: unexpected config %+v", c.Name, c)
		}
	}
	want := channel.Streams()
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("stream names %v, want %v", names, want)
	}

	// Every contract channel's subject is captured by exactly its stream and
	// RePublished to its live subject.
	for _, name := range []string{
		"tenant:12345:deployments", "tenant:acme:dashboard", "tenant:acme:user_login",
		"admin:metrics", "admin:alerts", "admin:platform:events", "system:health", "system:gateway:started",
	} {
		ch, err := channel.Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cfgs {
			captured := slices.ContainsFunc(c.Subjects, func(f string) bool { return server.SubjectMatchesFilter(ch.Subject(), f) })
			if captured != (c.Name == ch.Stream()) {
				t.Errorf("%s: subject %s captured by %s = %v", name, ch.Subject(), c.Name, captured)
			}
			if captured && !server.SubjectMatchesFilter(ch.Subject(), c.RePublish.Source) {
				t.Errorf("%s: republish source %q misses %s", c.Name, c.RePublish.Source, ch.Subject())
			}
		}
	}
}

func TestConfigsOverrideReplicas(t *testing.T) {
	t.Parallel()
	cfgs, err := streams.Configs(3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfgs {
		if c.Replicas != 3 {
			t.Errorf("%s: replicas %d, want 3", c.Name, c.Replicas)
		}
	}
}

func TestEnsureIsIdempotent(t *testing.T) {
	t.Parallel()
	s := natsembed.RunForTest(t)
	_, js := s.ConnectForTest(t)
	ctx := testCtx(t)

	first, err := streams.Ensure(ctx, js, 1)
	if err != nil {
		t.Fatalf("first Ensure: %v", err)
	}
	second, err := streams.Ensure(ctx, js, 1)
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if len(first) != 3 || len(second) != 3 {
		t.Fatalf("got %d and %d streams, want 3", len(first), len(second))
	}
	for i := range first {
		a, b := first[i].CachedInfo(), second[i].CachedInfo()
		if a.Config.Name != b.Config.Name || streams.Epoch(a) != streams.Epoch(b) || streams.Epoch(a) == "" {
			t.Errorf("stream %s: epoch %q then %q", a.Config.Name, streams.Epoch(a), streams.Epoch(b))
		}
	}
}

func TestRePublishCarriesSequenceChain(t *testing.T) {
	t.Parallel()
	s := natsembed.RunForTest(t)
	nc, js := s.ConnectForTest(t)
	ctx := testCtx(t)
	if _, err := streams.Ensure(ctx, js, 0); err != nil {
		t.Fatal(err)
	}

	live, err := nc.SubscribeSync("live.tenants.acme.deployments")
	if err != nil {
		t.Fatal(err)
	}
	other, err := nc.SubscribeSync("live.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// Interleave another subject so the per-subject chain differs from the
	// stream sequence.
	ack1, err := js.Publish(ctx, "tenants.acme.deployments", []byte(`{"n":1}`), jetstream.WithMsgID("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "tenants.acme.billing", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	ack2, err := js.Publish(ctx, "tenants.acme.deployments", []byte(`{"n":2}`), jetstream.WithMsgID("m2"))
	if err != nil {
		t.Fatal(err)
	}
	if ack1.Stream != "TENANTS" || ack2.Sequence != ack1.Sequence+2 {
		t.Fatalf("acks %+v %+v", ack1, ack2)
	}

	for i, want := range []struct{ seq, last uint64 }{{ack1.Sequence, 0}, {ack2.Sequence, ack1.Sequence}} {
		m, err := live.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("live message %d: %v", i+1, err)
		}
		if got := m.Header.Get(jetstream.SequenceHeader); got != strconv.FormatUint(want.seq, 10) {
			t.Errorf("message %d: Nats-Sequence %q, want %d", i+1, got, want.seq)
		}
		if got := m.Header.Get("Nats-Last-Sequence"); got != strconv.FormatUint(want.last, 10) {
			t.Errorf("message %d: Nats-Last-Sequence %q, want %d", i+1, got, want.last)
		}
		if got := m.Header.Get(jetstream.StreamHeader); got != "TENANTS" {
			t.Errorf("message %d: Nats-Stream %q", i+1, got)
		}
	}

	// A retry with the same Nats-Msg-Id is acknowledged as a duplicate and
	// neither stored nor republished.
	dup, err := js.Publish(ctx, "tenants.acme.deployments", []byte(`{"n":2}`), jetstream.WithMsgID("m2"))
	if err != nil {
		t.Fatal(err)
	}
	if !dup.Duplicate || dup.Sequence != ack2.Sequence {
		t.Fatalf("duplicate ack %+v, want duplicate of seq %d", dup, ack2.Sequence)
	}
	if m, err := live.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("duplicate was republished: %v", m.Header)
	}

	// A subject outside the grammar is not captured by any stream.
	_, err = js.Publish(ctx, "tenants.acme", []byte(`{}`), jetstream.WithRetryAttempts(0))
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("publish to tenants.acme: err = %v, want %v", err, jetstream.ErrNoStreamResponse)
	}
	stream, err := js.Stream(ctx, "TENANTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("TENANTS holds %d messages, want 3", info.State.Msgs)
	}

	// Count what live.> saw: 3 tenant messages, nothing for the duplicate or
	// the stray subject.
	for range 3 {
		if _, err := other.NextMsg(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := other.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("unexpected live message on %s", m.Subject)
	}
}

func TestRePublishEveryNamespace(t *testing.T) {
	t.Parallel()
	s := natsembed.RunForTest(t)
	nc, js := s.ConnectForTest(t)
	ctx := testCtx(t)
	if _, err := streams.Ensure(ctx, js, 0); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"admin:metrics", "admin:platform:events", "system:health", "system:gateway:started"} {
		ch, err := channel.Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := nc.SubscribeSync(ch.LiveSubject())
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(ctx, ch.Subject(), []byte(`{}`))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ack.Stream != ch.Stream() {
			t.Errorf("%s stored in %s, want %s", name, ack.Stream, ch.Stream())
		}
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("%s: no live copy on %s: %v", name, ch.LiveSubject(), err)
		}
		if m.Header.Get(jetstream.SequenceHeader) != strconv.FormatUint(ack.Sequence, 10) || m.Header.Get("Nats-Last-Sequence") != "0" {
			t.Errorf("%s: headers %v", name, m.Header)
		}
		_ = sub.Unsubscribe()
	}
}

func TestEpochSurvivesRestartAndChangesOnRecreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := func() *natsembed.Server {
		s, err := natsembed.Start(context.Background(), natsembed.Options{Listen: "127.0.0.1:-1", DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	epoch := func(js jetstream.JetStream) string {
		t.Helper()
		st, err := streams.Ensure(testCtx(t), js, 0)
		if err != nil {
			t.Fatal(err)
		}
		return streams.Epoch(st[slices.IndexFunc(st, func(s jetstream.Stream) bool { return s.CachedInfo().Config.Name == "TENANTS" })].CachedInfo())
	}

	s := start()
	nc, js := s.ConnectForTest(t)
	e1 := epoch(js)
	nc.Close()
	s.Shutdown()

	s = start()
	defer s.Shutdown()
	_, js = s.ConnectForTest(t)
	if e2 := epoch(js); e2 != e1 {
		t.Fatalf("epoch changed across restart: %q then %q", e1, e2)
	}
	if err := js.DeleteStream(testCtx(t), "TENANTS"); err != nil {
		t.Fatal(err)
	}
	if e3 := epoch(js); e3 == e1 {
		t.Fatalf("epoch %q unchanged after the stream was recreated", e3)
	}
}
