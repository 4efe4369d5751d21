package hub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/history"
	"github.com/pulseplatform/pulse/pkg/metrics"
	"github.com/pulseplatform/pulse/pkg/natsembed"
	"github.com/pulseplatform/pulse/streams"
)

// sink records frames like a client queue would.
type sink struct {
	mu     sync.Mutex
	frames [][]byte
	got    chan struct{}
}

func newSink() *sink { return &sink{got: make(chan struct{}, 1024)} }

func (s *sink) InsufficientState() {}

func (s *sink) Push([]byte) {}

func (s *sink) Deliver(_ uint64, f []byte, _ bool) {
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
	select {
	case s.got <- struct{}{}:
	default:
	}
}

func (s *sink) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		s.mu.Lock()
		if len(s.frames) >= n {
			out := append([][]byte(nil), s.frames...)
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("got %d frames, want %d", len(s.frames), n)
		}
	}
}

func newTestHub(t *testing.T) (*Hub, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := natsembed.RunForTest(t).ConnectForTest(t)
	if _, err := streams.Ensure(context.Background(), js, 1); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	r, err := history.NewReader(context.Background(), js, m)
	if err != nil {
		t.Fatal(err)
	}
	return New(nc, r, m, slog.New(slog.NewTextHandler(io.Discard, nil))), nc, js
}

func TestHubFansOutAndReleasesSubscription(t *testing.T) {
	t.Parallel()
	h, nc, js := newTestHub(t)
	h.SetLinger(0)
	ch, _ := channel.Parse("tenant:acme:deployments")
	a, b := newSink(), newSink()
	ctx := context.Background()
	var attachedAt []uint64
	base := nc.NumSubscriptions() // JetStream's own reply subscription
	for _, s := range []*sink{a, b} {
		if err := h.Subscribe(ctx, ch, s, func(last uint64, _ Window) { attachedAt = append(attachedAt, last) }); err != nil {
			t.Fatal(err)
		}
	}
	if h.NumChannels() != 1 || nc.NumSubscriptions() != base+1 {
		t.Fatalf("channels %d, NATS subscriptions %d; want one of each", h.NumChannels(), nc.NumSubscriptions())
	}
	ack, err := js.Publish(ctx, "tenants.acme.deployments", []byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"push":{"channel":"tenant:acme:deployments","pub":{"data":{"x":1},"offset":%d}}}`, ack.Sequence)
	for _, s := range []*sink{a, b} {
		if f := s.wait(t, 1); string(f[0]) != want {
			t.Fatalf("frame %s, want %s", f[0], want)
		}
	}
	if attachedAt[0] != 0 || attachedAt[1] != 0 {
		t.Fatalf("attach offsets %v, want 0 before any message", attachedAt)
	}
	h.Unsubscribe(ch.Name(), a)
	if nc.NumSubscriptions() != base+1 {
		t.Fatal("NATS subscription dropped while a subscriber remains")
	}
	h.Unsubscribe(ch.Name(), b)
	if h.NumChannels() != 0 || nc.NumSubscriptions() != base {
		t.Fatalf("after last unsubscribe: channels %d, NATS subscriptions %d", h.NumChannels(), nc.NumSubscriptions())
	}
}

// A channel whose last subscriber left stays live for the linger time: a
// subscriber coming back meanwhile finds it (and its position) as it was;
// after that it is torn down.
func TestHubChannelLingers(t *testing.T) {
	t.Parallel()
	h, nc, js := newTestHub(t)
	h.SetLinger(300 * time.Millisecond)
	ch, _ := channel.Parse("tenant:acme:deployments")
	ctx := context.Background()
	base := nc.NumSubscriptions()
	a := newSink()
	if err := h.Subscribe(ctx, ch, a, nil); err != nil {
		t.Fatal(err)
	}
	h.Unsubscribe(ch.Name(), a)
	ack, err := js.Publish(ctx, "tenants.acme.deployments", []byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if h.NumChannels() != 1 || nc.NumSubscriptions() != base+1 {
		t.Fatalf("lingering: channels %d, NATS subscriptions %d; want the channel still live", h.NumChannels(), nc.NumSubscriptions())
	}
	var at uint64
	b := newSink()
	if err := h.Subscribe(ctx, ch, b, func(last uint64, _ Window) { at = last }); err != nil {
		t.Fatal(err)
	}
	if at != ack.Sequence {
		t.Fatalf("back within the linger time: attached at %d, want %d (the channel kept following)", at, ack.Sequence)
	}
	time.Sleep(500 * time.Millisecond)
	if h.NumChannels() != 1 {
		t.Fatal("a channel with a subscriber was torn down by an old linger timer")
	}
	h.Unsubscribe(ch.Name(), b)
	deadline := time.Now().Add(5 * time.Second)
	for h.NumChannels() != 0 || nc.NumSubscriptions() != base {
		if time.Now().After(deadline) {
			t.Fatalf("after the linger time: channels %d, NATS subscriptions %d", h.NumChannels(), nc.NumSubscriptions())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Window.Since serves a recovery from the publications the hub delivered,
// only when they reach back to the client's offset without a gap.
func TestHubWindowServesRecentPublications(t *testing.T) {
	t.Parallel()
	h, _, js := newTestHub(t)
	ch, _ := channel.Parse("tenant:acme:deployments")
	other, _ := channel.Parse("tenant:acme:billing")
	ctx := context.Background()
	first, err := js.Publish(ctx, "tenants.acme.deployments", []byte(`{"i":0}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	if err := h.Subscribe(ctx, ch, s, nil); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for i := 1; i <= 5; i++ {
		ack, err := js.Publish(ctx, "tenants.acme.deployments", []byte(fmt.Sprintf(`{"i":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
		// Another channel's messages interleave in the stream: offsets of
		// this channel are not consecutive.
		if _, err := js.Publish(ctx, other.Subject(), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	s.wait(t, 5)
	since := func(after uint64, limit int) (got []uint64, ok bool) {
		t.Helper()
		probe := newSink()
		if err := h.Subscribe(ctx, ch, probe, func(_ uint64, w Window) {
			pubs, found := w.Since(after, limit)
			ok = found
			for _, p := range pubs {
				got = append(got, p.Offset)
			}
		}); err != nil {
			t.Fatal(err)
		}
		h.Unsubscribe(ch.Name(), probe)
		return got, ok
	}
	for _, tc := range []struct {
		name  string
		after uint64
		limit int
		want  []uint64
		ok    bool
	}{
		{"from the position before the first delivered", first.Sequence, 300, seqs, true},
		{"from the middle", seqs[1], 300, seqs[2:], true},
		{"up to date", seqs[4], 300, nil, true},
		{"more than the limit", first.Sequence, 3, nil, false},
		{"an offset of another channel", seqs[1] + 1, 300, nil, false},
		{"before what the hub delivered", first.Sequence - 1, 300, nil, false},
		{"zero", 0, 300, nil, false},
		{"ahead of the channel", seqs[4] + 100, 300, nil, false},
	} {
		got, ok := since(tc.after, tc.limit)
		if ok != tc.ok || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: Since(%d, %d) = %v, %v; want %v, %v", tc.name, tc.after, tc.limit, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHubDropsRepeatedAndForeignLiveCopies(t *testing.T) {
	t.Parallel()
	h, nc, js := newTestHub(t)
	ch, _ := channel.Parse("system:health")
	s := newSink()
	if err := h.Subscribe(context.Background(), ch, s, nil); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(context.Background(), "system.health", []byte(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	s.wait(t, 1)
	// A repeated live copy (as around a leader change) and a message without
	// a stream sequence are both dropped.
	dup := nats.NewMsg("live.system.health")
	dup.Header.Set(jetstream.SequenceHeader, strconv.FormatUint(ack.Sequence, 10))
	dup.Data = []byte(`{"n":1}`)
	_ = nc.PublishMsg(dup)
	_ = nc.Publish("live.system.health", []byte(`{"forged":1}`))
	ack2, _ := js.Publish(context.Background(), "system.health", []byte(`{"n":2}`))
	frames := s.wait(t, 2)
	time.Sleep(100 * time.Millisecond)
	s.mu.Lock()
	n := len(s.frames)
	s.mu.Unlock()
	if n != 2 {
		t.Fatalf("got %d frames: %q", n, frames)
	}
	want := fmt.Sprintf(`"offset":%d}`, ack2.Sequence)
	if got := string(frames[1]); got[len(got)-len(want)-2:len(got)-2] != want {
		t.Fatalf("second frame %s, want offset %d", got, ack2.Sequence)
	}
}

// BenchmarkFanOut measures one live message handed to N local subscribers:
// decode headers, encode the push once, enqueue to each.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			m := metrics.New(prometheus.NewRegistry())
			h := New(nil, nil, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
			ch, _ := channel.Parse("tenant:acme:deployments")
			e := &entry{ch: ch, synced: true}
			sinks := make([]*queueSink, n)
			for i := range sinks {
				sinks[i] = &queueSink{}
				e.subs = append(e.subs, sinks[i])
			}
			msg := nats.NewMsg("live.tenants.acme.deployments")
			msg.Data = []byte(`{"tenantId":"acme","deploymentId":"dep-42","status":"in_progress","progress":40,"currentStep":"start containers"}`)
			msg.Header.Set(jetstream.TimeStampHeaer, time.Now().UTC().Format(time.RFC3339Nano))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				msg.Header.Set(jetstream.SequenceHeader, strconv.Itoa(i+1))
				msg.Header.Set(jetstream.LastSequenceHeader, strconv.Itoa(i))
				h.onMessage(e, msg)
				if i%64 == 63 {
					for _, s := range sinks {
						s.drain()
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}

// queueSink mimics a client's outbound queue: a lock and an append.
type queueSink struct {
	mu sync.Mutex
	q  [][]byte
}

func (s *queueSink) InsufficientState() {}

func (s *queueSink) Push([]byte) {}

func (s *queueSink) Deliver(_ uint64, f []byte, _ bool) {
	s.mu.Lock()
	s.q = append(s.q, f)
	s.mu.Unlock()
}

func (s *queueSink) drain() {
	s.mu.Lock()
	s.q = s.q[:0]
	s.mu.Unlock()
}
