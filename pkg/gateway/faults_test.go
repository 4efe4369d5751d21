package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/natsembed"
)

// ledger is the truth of a fault test: every publication JetStream
// acknowledged, per channel, in order.
type ledger struct {
	mu    sync.Mutex
	acked map[string][]uint64
}

func (l *ledger) add(ch string, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.acked[ch]; len(s) > 0 && s[len(s)-1] == seq {
		return // a retry acknowledged as a duplicate of what is recorded
	}
	l.acked[ch] = append(l.acked[ch], seq)
}

func (l *ledger) snapshot() map[string][]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]uint64{}
	for k, v := range l.acked {
		out[k] = append([]uint64(nil), v...)
	}
	return out
}

// publishUntil publishes like a worker (acks, Nats-Msg-Id, retries with the
// same id until acknowledged) round-robin on channels until stop is set. A
// publication in flight is always finished, so the ledger holds everything
// stored.
func publishUntil(stop *atomic.Bool, t *testing.T, url string, channels []string, every time.Duration, l *ledger) {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Error(err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for i := 0; !stop.Load(); i++ {
		ch := channels[i%len(channels)]
		subject := mustParse(t, ch).Subject()
		id := fmt.Sprintf("%s-%d", ch, i)
		deadline := time.Now().Add(30 * time.Second)
		for {
			pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			ack, err := js.Publish(pctx, subject, []byte(fmt.Sprintf(`{"i":%d}`, i)), jetstream.WithMsgID(id))
			cancel()
			if err == nil {
				l.add(ch, ack.Sequence)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("publication %s never acknowledged: %v", id, err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(every)
	}
}

// watcher is an SDK client subscribed to channels, recording what arrives
// and whether every recovery succeeded.
type watcher struct {
	name string
	c    *sdkClient
	mu   sync.Mutex
	got  map[string][]uint64
	lost []string // recoveries that failed
}

func (e *env) newWatcher(t *testing.T, url, name string, channels []string) *watcher {
	w := &watcher{name: name, got: map[string][]uint64{}}
	w.c = e.sdkVia(url, e.token(acme(name)))
	for _, ch := range channels {
		s, err := w.c.NewSubscription(ch)
		if err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{}, 1)
		s.OnSubscribed(func(ev centrifuge.SubscribedEvent) {
			if ev.WasRecovering && !ev.Recovered {
				w.mu.Lock()
				w.lost = append(w.lost, ch)
				w.mu.Unlock()
			}
			select {
			case ready <- struct{}{}:
			default:
			}
		})
		s.OnPublication(func(ev centrifuge.PublicationEvent) {
			w.mu.Lock()
			w.got[ch] = append(w.got[ch], ev.Offset)
			w.mu.Unlock()
		})
		if err := s.Subscribe(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: not subscribed to %s", name, ch)
		}
	}
	return w
}

// check compares what w received with the ledger: the same offsets, in the
// same order, none missing, none twice.
func (w *watcher) check(want map[string][]uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lost) > 0 {
		return fmt.Errorf("%s: recovery failed on %v", w.name, w.lost)
	}
	for ch, offs := range want {
		got := w.got[ch]
		if len(got) != len(offs) {
			return fmt.Errorf("%s on %s: received %d publications, %d acknowledged; missing %v, unexpected %v",
				w.name, ch, len(got), len(offs), minus(offs, got), minus(got, offs))
		}
		for i := range offs {
			if got[i] != offs[i] {
				return fmt.Errorf("%s on %s: publication %d has offset %d, want %d", w.name, ch, i, got[i], offs[i])
			}
		}
	}
	return nil
}

// TestZeroLossUnderFaults runs a 3-node JetStream cluster (streams with 3
// replicas), gateways behind a load balancer, SDK clients and a publisher,
// and injects the faults of production one after another. Every
// acknowledged publication must reach every client once, in order.
func TestZeroLossUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection on a cluster takes about a minute")
	}
	cluster := natsembed.RunClusterForTest(t, 3)
	replicas := func(c *Config) { c.StreamReplicas = 3; c.ReconcileInterval = 2 * time.Second }
	gwA := startGatewayAt(t, cluster.URLs(), replicas)
	gwB := startGatewayAt(t, cluster.URLs(), replicas)
	lb := newProxy(t, gwA)

	channels := []string{"tenant:acme:deployments", "tenant:acme:billing", "tenant:acme:metrics"}
	var watchers []*watcher
	for i := range 4 {
		watchers = append(watchers, gwA.newWatcher(t, lb.url(), fmt.Sprintf("w%d", i), channels))
	}
	// One client connected straight to gateway B, whose NATS link will be
	// cut later.
	natsLink := newTCPProxy(t, strings.TrimPrefix(cluster.URL(0), "nats://"))
	gwN := startGatewayAt(t, "nats://"+natsLink.addr(), replicas, nats.IgnoreDiscoveredServers(), nats.DontRandomize())
	watchers = append(watchers, gwN.newWatcher(t, gwN.ws, "direct", channels))

	l := &ledger{acked: map[string][]uint64{}}
	var stopPublishing atomic.Bool
	var pubs sync.WaitGroup
	pubs.Add(1)
	go func() {
		defer pubs.Done()
		publishUntil(&stopPublishing, t, cluster.URLs(), channels, 10*time.Millisecond, l)
	}()
	pause := func() { time.Sleep(1500 * time.Millisecond) }
	pause()

	t.Log("fault: the TENANTS stream leader node is killed and restarted")
	leader := cluster.StreamLeader("TENANTS")
	if leader < 0 {
		t.Fatal("no TENANTS leader")
	}
	cluster.Stop(leader)
	pause()
	cluster.Start(leader)
	pause()

	t.Log("fault: gateway A is killed; its clients reconnect to B")
	lb.route(gwB)
	gwA.srv.CloseClientConnections() // no close frames, as after SIGKILL
	gwA.nc.Close()
	lb.dropAll()
	pause()

	t.Log("fault: rolling update, B replaced by C then C by D (SIGTERM: 3001)")
	gwC := startGatewayAt(t, cluster.URLs(), replicas)
	lb.route(gwC)
	gwB.stop()
	pause()
	gwD := startGatewayAt(t, cluster.URLs(), replicas)
	lb.route(gwD)
	gwC.stop()
	pause()

	t.Log("fault: gateway N loses NATS for 3s")
	natsLink.routeAddr("")
	natsLink.dropAll()
	deadline := time.Now().Add(5 * time.Second)
	for ready(gwN) {
		if time.Now().After(deadline) {
			t.Fatal("readiness stayed true while NATS was unreachable")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	natsLink.routeAddr(strings.TrimPrefix(cluster.URL(0), "nats://"))
	deadline = time.Now().Add(10 * time.Second)
	for !ready(gwN) {
		if time.Now().After(deadline) {
			t.Fatal("readiness not back after NATS returned")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pause()

	stopPublishing.Store(true)
	pubs.Wait()
	want := l.snapshot()
	total := 0
	for _, v := range want {
		total += len(v)
	}
	t.Logf("%d publications acknowledged", total)
	deadline = time.Now().Add(30 * time.Second)
	for _, w := range watchers {
		for {
			err := w.check(want)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func ready(e *env) bool {
	resp, err := http.Get(e.srv.URL + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// minus lists the offsets of a that b lacks.
func minus(a, b []uint64) []uint64 {
	in := make(map[uint64]bool, len(b))
	for _, x := range b {
		in[x] = true
	}
	var out []uint64
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}
