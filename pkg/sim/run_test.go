package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/events"
	"github.com/pulseplatform/pulse/pkg/natsembed"
	"github.com/pulseplatform/pulse/streams"
)

// startJS runs an embedded server, connects, and creates the streams when
// withStreams.
func startJS(tb testing.TB, withStreams bool) jetstream.JetStream {
	tb.Helper()
	_, js := natsembed.RunForTest(tb).ConnectForTest(tb)
	if withStreams {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := streams.Ensure(ctx, js, 1); err != nil {
			tb.Fatal(err)
		}
	}
	return js
}

// stored returns every message of a stream, in stream order.
func stored(tb testing.TB, js jetstream.JetStream, stream string) []jetstream.Msg {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var out []jetstream.Msg
	if info.State.Msgs == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	for uint64(len(out)) < info.State.Msgs {
		batch, err := c.Fetch(int(min(500, info.State.Msgs-uint64(len(out)))), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if err := batch.Error(); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// logCapture records a run's logs so tests can read its final counts.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// last returns the last log record with message msg.
func (l *logCapture) last(tb testing.TB, msg string) map[string]any {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var found map[string]any
	for line := range strings.SplitSeq(l.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			found = rec
		}
	}
	if found == nil {
		tb.Fatalf("no %q log line in:\n%s", msg, l.buf.String())
	}
	return found
}

// checkStored validates every stored event of a run and returns them by
// type. Events of a subject must be stored in the order they were sent.
func checkStored(t *testing.T, js jetstream.JetStream, name string, seed int64, streams ...string) (map[string]int, int) {
	t.Helper()
	v := schemaValidator(t)
	counts := map[string]int{}
	total := 0
	lastSeq := map[string]int64{}
	prefix := msgID(name, seed, 0)
	prefix = prefix[:len(prefix)-1]
	for _, stream := range streams {
		for _, m := range stored(t, js, stream) {
			total++
			if err := v.Validate(m.Data()); err != nil {
				t.Fatalf("%s: %v\n%s", m.Subject(), err, m.Data())
			}
			ev, err := events.Parse(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			if id := m.Headers().Get(jetstream.MsgIDHeader); id != ev.ID || !strings.HasPrefix(id, prefix) {
				t.Fatalf("Nats-Msg-Id %q, event id %q", id, ev.ID)
			}
			info, _ := events.Lookup(ev.Type)
			ch, err := channel.FromSubject(m.Subject())
			if err != nil || ch.Name() != info.ChannelFor(ch.Tenant()) {
				t.Fatalf("%s stored on %s (%v)", ev.Type, m.Subject(), err)
			}
			seq, _ := strconv.ParseInt(ev.ID[len(prefix):], 10, 64)
			if last, ok := lastSeq[m.Subject()]; ok && seq <= last {
				t.Fatalf("%s: event %d stored after %d", m.Subject(), seq, last)
			}
			lastSeq[m.Subject()] = seq
			counts[ev.Type]++
		}
	}
	return counts, total
}

func TestRunDeployerStoresValidEvents(t *testing.T) {
	t.Parallel()
	js := startJS(t, true)
	logs := &logCapture{}
	cfg := Config{Tenants: []string{"acme", "globex", "12345"}, Rate: 500, Speed: 3600, Seed: 7, Start: testStart,
		Duration: time.Second, MetricsInterval: time.Minute, Logger: logs.logger()}
	if err := RunDeployer(context.Background(), js, cfg); err != nil {
		t.Fatalf("RunDeployer: %v", err)
	}
	counts, total := checkStored(t, js, "deployer", 7, "TENANTS", "SYSTEM")
	t.Logf("%d events stored: %v", total, counts)
	stop := logs.last(t, "simulator stopped")
	if stop["acked"] != float64(total) || stop["sent"] != float64(total) {
		t.Fatalf("run says sent %v, acked %v; %d stored", stop["sent"], stop["acked"], total)
	}
	for _, typ := range []string{events.TypeDeploymentQueued, events.TypeDeploymentProgress, events.TypeDeploymentCompleted,
		events.TypeMetricsSample, events.TypeSystemHealth} {
		if counts[typ] == 0 {
			t.Errorf("no %s stored", typ)
		}
	}
	if total < 300 {
		t.Fatalf("only %d events at -rate 500 for 1s", total)
	}
}

func TestRunBillingStoresValidEvents(t *testing.T) {
	t.Parallel()
	js := startJS(t, true)
	logs := &logCapture{}
	cfg := Config{Tenants: []string{"acme", "globex"}, Rate: 300, Speed: 30 * 86400, Seed: 9, Start: testStart,
		Duration: time.Second, Logger: logs.logger()}
	if err := RunBilling(context.Background(), js, cfg); err != nil {
		t.Fatalf("RunBilling: %v", err)
	}
	counts, total := checkStored(t, js, "billing", 9, "TENANTS", "ADMIN", "SYSTEM")
	t.Logf("%d events stored: %v", total, counts)
	if stop := logs.last(t, "simulator stopped"); stop["acked"] != float64(total) {
		t.Fatalf("run says acked %v; %d stored", stop["acked"], total)
	}
	for _, typ := range []string{events.TypeBillingInvoice, events.TypeBillingPayment, events.TypeBillingUsageAlert, events.TypeSystemHealth} {
		if counts[typ] == 0 {
			t.Errorf("no %s stored", typ)
		}
	}
}

// The same seed and start store byte-identical events, with the same
// Nats-Msg-Ids, in the same order.
func TestRunSameSeedSameStream(t *testing.T) {
	t.Parallel()
	dump := func(seed int64) string {
		js := startJS(t, true)
		cfg := Config{Tenants: []string{"acme", "globex"}, Rate: 300, Speed: 600, Seed: seed, Start: testStart,
			Duration: 500 * time.Millisecond, MetricsInterval: 30 * time.Second}
		if err := RunDeployer(context.Background(), js, cfg); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, m := range stored(t, js, "TENANTS") {
			fmt.Fprintf(&b, "%s %s %s\n", m.Subject(), m.Headers().Get(jetstream.MsgIDHeader), m.Data())
		}
		return b.String()
	}
	a, b, c := dump(42), dump(42), dump(43)
	if strings.Count(a, "\n") < 50 {
		t.Fatalf("too few events: %d", strings.Count(a, "\n"))
	}
	if a != b {
		t.Fatal("same seed, different stored events")
	}
	if a == c {
		t.Fatal("different seeds, same stored events")
	}
}

// lossyJS stores every message but hides the ack of every n-th one, as if
// the ack were lost on the way back.
type lossyJS struct {
	jetstream.JetStream
	every, n int
}

type lostAck struct{ jetstream.PubAckFuture }

func (lostAck) Ok() <-chan *jetstream.PubAck { return nil }
func (lostAck) Err() <-chan error            { return nil }

func (l *lossyJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	l.n++
	f, err := l.JetStream.PublishMsgAsync(m, opts...)
	if err == nil && l.n%l.every == 0 {
		return lostAck{f}, nil
	}
	return f, err
}

// A retry after an ack timeout reuses the Nats-Msg-Id, so the stream keeps
// one copy.
func TestRetryAfterLostAckDoesNotDuplicate(t *testing.T) {
	t.Parallel()
	js := startJS(t, true)
	p := newPublisher(&lossyJS{JetStream: js, every: 7}, Config{RetryFor: 10 * time.Second, MaxInFlight: 16}.withDefaults(1))
	p.ackWait = 100 * time.Millisecond
	const n = 100
	for i := range n {
		msg := nats.NewMsg("tenants.acme.deployments")
		msg.Data = []byte(fmt.Sprintf(`{"n":%d}`, i))
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("lossy-%d", i))
		if err := p.send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	msgs := stored(t, js, "TENANTS")
	if len(msgs) != n || p.acked.Load() != n || p.failed.Load() < 5 {
		t.Fatalf("%d stored, %d acked, %d failed attempts; want %d stored and acked", len(msgs), p.acked.Load(), p.failed.Load(), n)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf(`{"n":%d}`, i); string(m.Data()) != want {
			t.Fatalf("message %d is %s, want %s: order or duplicates", i, m.Data(), want)
		}
	}
}

func TestRunWaitsForTheStream(t *testing.T) {
	t.Parallel()
	js := startJS(t, false)
	done := make(chan error, 1)
	go func() {
		done <- RunDeployer(context.Background(), js, Config{Tenants: []string{"acme"}, Rate: 50, Speed: 60, Seed: 1,
			Duration: 1500 * time.Millisecond, RetryFor: 10 * time.Second})
	}()
	time.Sleep(400 * time.Millisecond) // the sim is retrying now
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("RunDeployer: %v", err)
	}
	if len(stored(t, js, "SYSTEM")) == 0 || len(stored(t, js, "TENANTS")) == 0 {
		t.Fatal("nothing stored once the streams existed")
	}
}

func TestRunGivesUpWithoutStream(t *testing.T) {
	t.Parallel()
	js := startJS(t, false)
	err := RunBilling(context.Background(), js, Config{Tenants: []string{"acme"}, Rate: 50, RetryFor: 300 * time.Millisecond})
	if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("err = %v, want no stream", err)
	}
}

// A stop (SIGINT in the CLI) ends generation; everything sent is
// acknowledged and stored before the run returns.
func TestRunStopsOnCancelWithNothingLost(t *testing.T) {
	t.Parallel()
	js := startJS(t, true)
	logs := &logCapture{}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	if err := RunDeployer(ctx, js, Config{Tenants: []string{"acme", "globex"}, Rate: 2000, Speed: 1000, Logger: logs.logger()}); err != nil {
		t.Fatalf("RunDeployer after cancel: %v", err)
	}
	stop := logs.last(t, "simulator stopped")
	total := len(stored(t, js, "TENANTS")) + len(stored(t, js, "SYSTEM"))
	if stop["acked"] != float64(total) || stop["sent"] != float64(total) || total < 100 {
		t.Fatalf("sent %v, acked %v, stored %d", stop["sent"], stop["acked"], total)
	}
}

func TestConfigRejectsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no tenants", Config{Rate: 1}, "no tenants"},
		{"dotted tenant", Config{Tenants: []string{"ac.me"}, Rate: 1}, "ac.me"},
		{"wildcard tenant", Config{Tenants: []string{"*"}, Rate: 1}, `"*"`},
		{"duplicate tenant", Config{Tenants: []string{"a", "a"}, Rate: 1}, "twice"},
		{"zero rate", Config{Tenants: []string{"a"}}, "rate"},
		{"negative speed", Config{Tenants: []string{"a"}, Rate: 1, Speed: -1}, "speed"},
		{"negative duration", Config{Tenants: []string{"a"}, Rate: 1, Duration: -time.Second}, "duration"},
		{"negative window", Config{Tenants: []string{"a"}, Rate: 1, MaxInFlight: -1}, "MaxInFlight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A nil JetStream is never reached: validation comes first.
			for _, run := range []Runner{RunDeployer, RunBilling} {
				err := run(context.Background(), nil, tt.cfg)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
				}
			}
		})
	}
}

// At a low rate, an ack that arrived long before anyone looked at it counts
// as an ack, not as a timeout: nothing is retried and the counters are
// current.
func TestTrickleIsAcknowledgedWithoutRetries(t *testing.T) {
	t.Parallel()
	js := startJS(t, true)
	p := newPublisher(js, Config{MaxInFlight: 8}.withDefaults(1))
	p.ackWait = 50 * time.Millisecond
	for i := range 6 {
		msg := nats.NewMsg("tenants.acme.billing")
		msg.Data = []byte(`{}`)
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("trickle-%d", i))
		if err := p.send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(120 * time.Millisecond) // longer than ackWait
	}
	if got := p.acked.Load(); got < 5 {
		t.Fatalf("only %d of 6 acks counted while sending", got)
	}
	if err := p.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.acked.Load() != 6 || p.failed.Load() != 0 || len(stored(t, js, "TENANTS")) != 6 {
		t.Fatalf("acked %d, failed attempts %d", p.acked.Load(), p.failed.Load())
	}
}
