package presence

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/metrics"
	"github.com/pulseplatform/pulse/pkg/natsembed"
)

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(e Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

func (r *recorder) wait(tb testing.TB, n int, d time.Duration) []Event {
	tb.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		if len(r.events) >= n {
			out := append([]Event(nil), r.events...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatalf("got %d presence events, want %d", len(r.events), n)
	return nil
}

func newManager(tb testing.TB, js jetstream.JetStream, node string, ttl time.Duration, rec *recorder) (*Manager, *metrics.Metrics) {
	tb.Helper()
	m := metrics.New(prometheus.NewRegistry())
	on := func(Event) {}
	if rec != nil {
		on = rec.add
	}
	p, err := New(context.Background(), js, Config{Bucket: "PULSE_PRESENCE", TTL: ttl, Node: node,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m}, on)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p, m
}

func connect(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	_, js := natsembed.RunForTest(tb).ConnectForTest(tb)
	return js
}

func TestJoinLeaveCountsAndIsolation(t *testing.T) {
	t.Parallel()
	js := connect(t)
	rec := &recorder{}
	a, _ := newManager(t, js, "a", 30*time.Second, rec)
	b, _ := newManager(t, js, "b", 30*time.Second, nil)
	acme, _ := channel.Parse("tenant:acme:presence")
	globex, _ := channel.Parse("tenant:globex:presence")
	ctx := context.Background()
	if err := a.Acquire(acme); err != nil {
		t.Fatal(err)
	}
	for i, m := range []*Member{{Client: "c1", User: "alice"}, {Client: "c2", User: "bob"}, {Client: "c3", User: "bob"}} {
		mgr := a
		if i > 0 {
			mgr = b // written by another gateway
		}
		if err := mgr.Join(ctx, acme, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Join(ctx, globex, &Member{Client: "g1", User: "gina"}); err != nil {
		t.Fatal(err)
	}
	ev := rec.wait(t, 3, 5*time.Second)
	for _, e := range ev {
		if !e.Join || e.Channel.Name() != "tenant:acme:presence" {
			t.Fatalf("event %+v", e)
		}
	}
	clients, users, err := a.Stats(ctx, acme)
	if err != nil || clients != 3 || users != 2 {
		t.Fatalf("stats %d %d %v", clients, users, err)
	}
	members, total, next, err := b.Members(ctx, acme, "", 2)
	if err != nil || total != 3 || len(members) != 2 || next != "c2" {
		t.Fatalf("page 1: %v %d %q %v", members, total, next, err)
	}
	members, _, next, _ = b.Members(ctx, acme, next, 2)
	if len(members) != 1 || members[0].Client != "c3" || next != "" {
		t.Fatalf("page 2: %v %q", members, next)
	}
	if err := b.Leave(ctx, acme, "c3"); err != nil {
		t.Fatal(err)
	}
	ev = rec.wait(t, 4, 5*time.Second)
	if ev[3].Join || ev[3].Member.Client != "c3" {
		t.Fatalf("leave event %+v", ev[3])
	}
	if clients, users, _ := a.Stats(ctx, acme); clients != 2 || users != 2 {
		t.Fatalf("after leave: %d %d", clients, users)
	}
}

func TestExpiredEntriesLeave(t *testing.T) {
	t.Parallel()
	js := connect(t)
	rec := &recorder{}
	watcher, _ := newManager(t, js, "w", 2*time.Second, rec)
	dying, _ := newManager(t, js, "d", 2*time.Second, nil)
	ch, _ := channel.Parse("tenant:acme:presence")
	if err := watcher.Acquire(ch); err != nil {
		t.Fatal(err)
	}
	if err := dying.Join(context.Background(), ch, &Member{Client: "gone", User: "x"}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1, 5*time.Second)
	start := time.Now()
	// dying never refreshes (its Run loop is not started), like a dead gateway.
	ev := rec.wait(t, 2, 10*time.Second)
	if ev[1].Join || ev[1].Member.Client != "gone" {
		t.Fatalf("event %+v", ev[1])
	}
	t.Logf("expired after %v", time.Since(start))
}

func TestRefreshOfManyEntries(t *testing.T) {
	t.Parallel()
	js := connect(t)
	p, m := newManager(t, js, "a", time.Minute, nil)
	ch, _ := channel.Parse("tenant:acme:presence")
	ctx := context.Background()
	const n = 6000 // more than the client's cap of outstanding async acks
	for i := range n {
		p.mu.Lock()
		p.local[key(ch, "c"+strconv.Itoa(i))] = &localKey{value: []byte(fmt.Sprintf(`{"client":"c%d","user":"u"}`, i))}
		p.mu.Unlock()
	}
	p.refresh(ctx)
	if w := testutil.ToFloat64(m.PresenceWrites); w != n {
		t.Fatalf("refresh wrote %v keys, want %d", w, n)
	}
	if clients, _, err := p.Stats(ctx, ch); err != nil || clients != n {
		t.Fatalf("stats after refresh: %d %v", clients, err)
	}
}

func TestRefreshKeepsEntriesAlive(t *testing.T) {
	t.Parallel()
	js := connect(t)
	rec := &recorder{}
	watcher, _ := newManager(t, js, "w", 3*time.Second, rec)
	alive, m := newManager(t, js, "a", 3*time.Second, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go alive.Run(ctx)
	ch, _ := channel.Parse("tenant:acme:presence")
	_ = watcher.Acquire(ch)
	if err := alive.Join(ctx, ch, &Member{Client: "here", User: "x"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(7 * time.Second) // more than two TTLs
	rec.mu.Lock()
	n := len(rec.events)
	rec.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d events, want just the join: the refreshed entry must not expire", n)
	}
	if w := testutil.ToFloat64(m.PresenceWrites); w < 3 {
		t.Fatalf("%v KV writes, want the join and at least two refreshes", w)
	}
}

// BenchmarkPresence measures presence and presence_stats on channels with
// 1,000 and 10,000 members: from a gateway's warm view (every call after the
// first) and cold (the first call on a gateway, which reads the bucket).
func BenchmarkPresence(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		js := connect(b)
		newManager(b, js, "w", time.Minute, nil) // creates the bucket
		ch, _ := channel.Parse("tenant:acme:presence")
		ctx := context.Background()
		for i := 0; i < n; i++ {
			if _, err := js.PublishAsync("$KV.PULSE_PRESENCE."+ch.Subject()+".c"+strconv.Itoa(i),
				[]byte(fmt.Sprintf(`{"client":"c%d","user":"u%d","conn_info":{"name":"User %d"}}`, i, i%(n/2), i))); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 999 {
				<-js.PublishAsyncComplete()
			}
		}
		<-js.PublishAsyncComplete()
		b.Run(fmt.Sprintf("members=%d/cold_stats", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p, _ := newManager(b, js, "r", time.Minute, nil)
				if c, _, err := p.Stats(ctx, ch); err != nil || c != n {
					b.Fatalf("%d %v", c, err)
				}
				p.Close()
			}
		})
		reader, _ := newManager(b, js, "r", time.Minute, nil)
		_ = reader.Acquire(ch)
		b.Run(fmt.Sprintf("members=%d/presence_stats", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if c, u, err := reader.Stats(ctx, ch); err != nil || c != n || u != n/2 {
					b.Fatalf("%d %d %v", c, u, err)
				}
			}
		})
		b.Run(fmt.Sprintf("members=%d/presence", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if ms, _, _, err := reader.Members(ctx, ch, "", 0); err != nil || len(ms) != n {
					b.Fatalf("%d %v", len(ms), err)
				}
			}
		})
	}
}
