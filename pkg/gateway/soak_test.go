package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/natsembed"
	"github.com/pulseplatform/pulse/pkg/protocol"
	"github.com/pulseplatform/pulse/pkg/sim"
)

// TestSoak runs both simulators against two gateways on one JetStream while
// clients subscribe, drop their connections at random and come back with
// recovery. At the end every client must hold exactly the stream's
// publications of its channels from its first subscription on: nothing
// lost, nothing twice, in order. PULSE_SOAK_DURATION and PULSE_SOAK_CLIENTS
// size it (task soak runs 30 minutes); by default it is a short CI run.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak")
	}
	duration := envDuration(t, "PULSE_SOAK_DURATION", 15*time.Second)
	clients := envInt(t, "PULSE_SOAK_CLIENTS", 150)
	ns := natsembed.RunForTest(t)
	mod := func(c *Config) { c.Limits.MaxChannelsPerClient = 16 }
	gws := []*env{startGateway(t, ns, mod), startGateway(t, ns, mod)}

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var sims sync.WaitGroup
	for i, run := range []func(context.Context, jetstream.JetStream, sim.Config) error{sim.RunDeployer, sim.RunBilling} {
		sims.Add(1)
		go func() {
			defer sims.Done()
			cfg := sim.Config{Tenants: []string{"acme", "globex"}, Rate: 20, Seed: int64(i + 1)}
			if err := run(ctx, gws[0].js, cfg); err != nil && ctx.Err() == nil {
				t.Errorf("simulator: %v", err)
			}
		}()
	}

	channels := []string{"tenant:acme:deployments", "tenant:globex:deployments", "tenant:acme:billing", "tenant:globex:billing", "system:health"}
	// The clients keep every offset they received, to check them against
	// the stream at the end: that record grows with the run and is not the
	// gateways' memory, so the heap bound leaves it out.
	var record atomic.Int64
	var cs []*soakClient
	var wg sync.WaitGroup
	for i := range clients {
		tenant := []string{"acme", "globex"}[i%2]
		var mine []string
		for _, ch := range channels {
			if strings.HasPrefix(ch, "system:") || strings.Contains(ch, ":"+tenant+":") {
				mine = append(mine, ch)
			}
		}
		c := &soakClient{name: fmt.Sprintf("c%d", i), gws: gws, token: gws[0].token(acme(fmt.Sprintf("c%d", i))), channels: mine,
			pos: map[string]*protocol.StreamPosition{}, start: map[string]uint64{}, got: map[string][]uint64{}, record: &record}
		if tenant == "globex" {
			c.token = gws[0].token(globex(c.name))
		}
		cs = append(cs, c)
		wg.Add(1)
		go func() { defer wg.Done(); c.run(ctx, rand.New(rand.NewPCG(uint64(i), 99))) }()
	}

	// Memory of the process over time (gateways and clients share it); it
	// must stay under PULSE_SOAK_MAX_HEAP_MIB however long the run.
	maxHeap := uint64(envInt(t, "PULSE_SOAK_MAX_HEAP_MIB", 512)) << 20
	var peak atomic.Uint64
	go func() {
		tick := time.NewTicker(max(duration/10, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				// Live memory, not garbage waiting for the collector (which
				// grows with the heap under GOGC).
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				rec := uint64(record.Load())
				heap := m.HeapInuse - min(rec, m.HeapInuse)
				if heap > peak.Load() {
					peak.Store(heap)
				}
				t.Logf("heap in use %.1f MiB (%.1f MiB without the clients' record of %.1f MiB), goroutines %d, connections %d+%d",
					float64(m.HeapInuse)/(1<<20), float64(heap)/(1<<20), float64(rec)/(1<<20), runtime.NumGoroutine(),
					gws[0].g.numConns.Load(), gws[1].g.numConns.Load())
			}
		}
	}()
	<-ctx.Done()
	sims.Wait()
	wg.Wait()

	// Everyone comes back once more and catches up with what was stored,
	// then what each holds is compared with the stream.
	settle, stop := context.WithTimeout(context.Background(), 60*time.Second)
	defer stop()
	var final sync.WaitGroup
	for _, c := range cs {
		final.Add(1)
		go func() {
			defer final.Done()
			sctx, cancel := context.WithTimeout(context.WithValue(settle, debugKey{}, true), 5*time.Second)
			defer cancel()
			_ = c.session(sctx, gws[0])
		}()
	}
	final.Wait()
	var total, drops, notRecovered atomic.Int64
	for _, c := range cs {
		drops.Add(int64(c.drops))
		notRecovered.Add(int64(c.notRecovered))
	}
	for _, ch := range channels {
		want, err := streamOffsets(settle, gws[0], ch)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if !slices.Contains(c.channels, ch) {
				continue
			}
			if err := c.caughtUp(settle, gws, ch, want); err != nil {
				t.Fatal(err)
			}
			total.Add(int64(len(c.got[ch])))
		}
	}
	t.Logf("%d clients, %v: %d deliveries checked, %d random drops, %d recoveries not possible, 0 lost, 0 duplicated",
		clients, duration, total.Load(), drops.Load(), notRecovered.Load())
	if notRecovered.Load() > 0 {
		t.Fatalf("%d recoveries failed", notRecovered.Load())
	}
	if peak.Load() > maxHeap {
		t.Fatalf("heap in use (without the clients' record) peaked at %d MiB, bound %d MiB", peak.Load()>>20, maxHeap>>20)
	}
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// streamOffsets is the truth: every offset the stream holds for ch.
func streamOffsets(ctx context.Context, e *env, ch string) ([]uint64, error) {
	msgs, _, err := e.g.reader.Range(ctx, parseKnown(ch), 0, 0, 1_000_000)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Sequence
	}
	return out, nil
}

// soakClient is a raw protocol client that drops its connection at random
// and resubscribes with recovery, as a browser tab on a bad network would.
type soakClient struct {
	name, token  string
	gws          []*env
	channels     []string
	mu           sync.Mutex
	pos          map[string]*protocol.StreamPosition
	start        map[string]uint64 // offset of the first subscription
	got          map[string][]uint64
	record       *atomic.Int64 // bytes of got, over all clients
	drops        int
	notRecovered int
}

func (c *soakClient) run(ctx context.Context, rng *rand.Rand) {
	for ctx.Err() == nil {
		gw := c.gws[rng.IntN(len(c.gws))]
		life := time.Duration(200+rng.IntN(3000)) * time.Millisecond
		lctx, cancel := context.WithTimeout(ctx, life)
		_ = c.session(lctx, gw)
		cancel()
		c.drops++
	}
}

// session connects, (re)subscribes with recovery and reads until ctx ends.
func (c *soakClient) session(ctx context.Context, gw *env) error {
	conn, _, err := websocket.Dial(ctx, gw.ws, nil)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20)
	lines := []string{fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, c.token)}
	c.mu.Lock()
	for i, ch := range c.channels {
		req := protocol.SubscribeRequest{Channel: ch, Flag: 1}
		if p := c.pos[ch]; p != nil {
			req.Recover, req.Offset, req.Epoch = true, p.Offset, p.Epoch
		}
		b, _ := json.Marshal(protocol.Command{ID: uint32(i + 2), Subscribe: &req})
		lines = append(lines, string(b))
	}
	c.mu.Unlock()
	if err := conn.Write(ctx, websocket.MessageText, []byte(strings.Join(lines, "\n"))); err != nil {
		return err
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			var r protocol.Reply
			if json.Unmarshal([]byte(line), &r) != nil {
				continue
			}
			switch {
			case r.ID == 0 && r.Push == nil && r.Error == nil:
				_ = conn.Write(ctx, websocket.MessageText, []byte("{}")) // pong
			case r.Subscribe != nil:
				if os.Getenv("SOAK_DEBUG") != "" && ctx.Value(debugKey{}) != nil {
					var first, last uint64
					if n := len(r.Subscribe.Publications); n > 0 {
						first, last = r.Subscribe.Publications[0].Offset, r.Subscribe.Publications[n-1].Offset
					}
					fmt.Printf("DEBUG %s %s: recovered=%v offset=%d pubs %d..%d\n", c.name, c.channels[r.ID-2], r.Subscribe.Recovered, r.Subscribe.Offset, first, last)
				}
				c.subscribed(c.channels[r.ID-2], r.Subscribe)
			case r.Error != nil && os.Getenv("SOAK_DEBUG") != "":
				fmt.Printf("DEBUG %s error: %s\n", c.name, line)
			case r.Push != nil && r.Push.Pub != nil:
				c.add(r.Push.Channel, r.Push.Pub.Offset)
			}
		}
	}
}

func (c *soakClient) subscribed(ch string, res *protocol.SubscribeResult) {
	c.mu.Lock()
	if res.WasRecovering && !res.Recovered {
		c.notRecovered++
	}
	if c.pos[ch] == nil {
		c.pos[ch] = &protocol.StreamPosition{Offset: res.Offset, Epoch: res.Epoch}
		c.start[ch] = res.Offset
	}
	c.mu.Unlock()
	for _, p := range res.Publications {
		c.add(ch, p.Offset)
	}
}

func (c *soakClient) add(ch string, off uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := cap(c.got[ch])
	c.got[ch] = append(c.got[ch], off)
	if grown := cap(c.got[ch]) - before; grown > 0 {
		c.record.Add(int64(grown) * 8)
	}
	c.pos[ch].Offset = off
}

// caughtUp lets the client reconnect once more, then checks that it holds
// exactly the stream's offsets after its first position.
func (c *soakClient) caughtUp(ctx context.Context, gws []*env, ch string, stream []uint64) error {
	c.mu.Lock()
	_, subscribed := c.pos[ch]
	start := c.start[ch]
	c.mu.Unlock()
	if !subscribed {
		return fmt.Errorf("%s never subscribed to %s", c.name, ch)
	}
	var want []uint64
	for _, o := range stream {
		if o > start {
			want = append(want, o)
		}
	}
	for {
		c.mu.Lock()
		got := append([]uint64(nil), c.got[ch]...)
		c.mu.Unlock()
		if len(got) >= len(want) {
			for i := range want {
				if got[i] != want[i] {
					return fmt.Errorf("%s on %s: delivery %d has offset %d, want %d", c.name, ch, i, got[i], want[i])
				}
			}
			if len(got) != len(want) {
				return fmt.Errorf("%s on %s: %d deliveries, stream has %d", c.name, ch, len(got), len(want))
			}
			return nil
		}
		// Not there yet: one more session brings it up to date.
		sctx, cancel := context.WithTimeout(context.WithValue(ctx, debugKey{}, true), 5*time.Second)
		_ = c.session(sctx, gws[0])
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("%s on %s: %d of %d deliveries after settling; missing %v (start %d, got %v)",
				c.name, ch, len(got), len(want), minus(want, got), start, got)
		}
	}
}

// parseKnown parses a channel name written in the test.
func parseKnown(name string) channel.Channel {
	ch, err := channel.Parse(name)
	if err != nil {
		panic(err)
	}
	return ch
}

type debugKey struct{}
