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
	srv := natsembed.RunForTest(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
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
	ch, _ := channel.Parse("tenant:acme:deployments")
	a, b := newSink(), newSink()
	ctx := context.Background()
	var attachedAt []uint64
	base := nc.NumSubscriptions() // JetStream's own reply subscription
	for _, s := range []*sink{a, b} {
		if err := h.Subscribe(ctx, ch, s, func(last uint64) { attachedAt = append(attachedAt, last) }); err != nil {
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
