package history

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/metrics"
	"github.com/pulseplatform/pulse/pkg/natsembed"
	"github.com/pulseplatform/pulse/streams"
)

// The channels the tests read, and the neighbours whose traffic is
// interleaved with theirs on the same stream so that a channel's offsets are
// never contiguous (the realistic case).
const (
	subjAcmeDeploy = "tenants.acme.deployments"
	subjGlobex     = "tenants.globex.deployments"
	subjAcmeBill   = "tenants.acme.billing"
)

// env is one real embedded JetStream server with Pulse's streams, a
// connection for publishing and administration, and a Reader on a second
// connection whose inbound bytes can be held back (readGate) to make reads
// slow on demand.
type env struct {
	tb   testing.TB
	ctx  context.Context
	js   jetstream.JetStream // publisher and admin; never gated
	nc   *nats.Conn
	rnc  *nats.Conn // the reader's connection
	gate *readGate  // holds back what the reader's connection receives
	reg  *prometheus.Registry
	m    *metrics.Metrics
	r    *Reader
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	return newEnvAt(tb, natsembed.RunForTest(tb).ClientURL())
}

// newEnvAt is newEnv on the server at url, with extra options for the
// reader's connection.
func newEnvAt(tb testing.TB, url string, readerOpts ...nats.Option) *env {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	e := &env{tb: tb, ctx: ctx, gate: newReadGate()}
	var err error
	if e.nc, err = nats.Connect(url); err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(e.nc.Close)
	if e.js, err = jetstream.New(e.nc); err != nil {
		tb.Fatal(err)
	}
	if _, err := streams.Ensure(ctx, e.js, 1); err != nil {
		tb.Fatalf("streams: %v", err)
	}
	if e.rnc, err = nats.Connect(url, append(readerOpts, nats.SetCustomDialer(gatedDialer{e.gate}))...); err != nil {
		tb.Fatalf("connect reader: %v", err)
	}
	tb.Cleanup(e.rnc.Close)
	tb.Cleanup(func() { e.gate.throttle(0, 0); e.gate.open() }) // never leave a reader stuck
	rjs, err := jetstream.New(e.rnc)
	if err != nil {
		tb.Fatal(err)
	}
	e.reg = prometheus.NewRegistry()
	e.m = metrics.New(e.reg)
	if e.r, err = NewReader(ctx, rjs, e.m); err != nil {
		tb.Fatalf("reader: %v", err)
	}
	return e
}

// freshEpochs reloads the reader's epochs now, so that the reads right
// after it (under a second) go straight to the stream's messages.
func (e *env) freshEpochs() {
	e.tb.Helper()
	if _, err := e.r.RefreshEpochs(e.ctx); err != nil {
		e.tb.Fatal(err)
	}
}

// pub is one message to publish.
type pub struct {
	subject string
	data    []byte
}

// publish stores msgs in order and returns their offsets. It pipelines the
// publishes (the server stores them in arrival order) so that building
// thousands of events stays fast even with sync_interval always.
func (e *env) publish(msgs ...pub) []uint64 {
	e.tb.Helper()
	const window = 256
	seqs := make([]uint64, 0, len(msgs))
	for len(msgs) > 0 {
		n := min(window, len(msgs))
		futs := make([]jetstream.PubAckFuture, n)
		for i, m := range msgs[:n] {
			f, err := e.js.PublishAsync(m.subject, m.data)
			if err != nil {
				e.tb.Fatalf("publish %s: %v", m.subject, err)
			}
			futs[i] = f
		}
		for i, f := range futs {
			select {
			case ack := <-f.Ok():
				seqs = append(seqs, ack.Sequence)
			case err := <-f.Err():
				e.tb.Fatalf("publish %s: %v", msgs[i].subject, err)
			case <-time.After(30 * time.Second):
				e.tb.Fatalf("publish %s: no ack", msgs[i].subject)
			}
		}
		msgs = msgs[n:]
	}
	if !slices.IsSorted(seqs) {
		e.tb.Fatalf("offsets not in publish order: %v", seqs)
	}
	return seqs
}

// fill publishes n messages on subject (payload(i) for the i-th), each after
// one to three messages of neighbouring subjects, and returns the offsets
// of subject's messages.
func (e *env) fill(subject string, n int, payload func(i int) []byte) []uint64 {
	e.tb.Helper()
	var msgs []pub
	var mine []int
	for i := range n {
		for j := range i%3 + 1 {
			other := subjGlobex
			if j%2 == 1 {
				other = subjAcmeBill
			}
			if other == subject {
				other = "tenants.initech.noise"
			}
			msgs = append(msgs, pub{other, fmt.Appendf(nil, "noise %d/%d", i, j)})
		}
		mine = append(mine, len(msgs))
		msgs = append(msgs, pub{subject, payload(i)})
	}
	seqs := e.publish(msgs...)
	out := make([]uint64, len(mine))
	for i, k := range mine {
		out[i] = seqs[k]
	}
	return out
}

// text is a payload function: "<prefix> <i>".
func text(prefix string) func(int) []byte {
	return func(i int) []byte { return fmt.Appendf(nil, "%s %d", prefix, i) }
}

// purge drops every message of subject but the newest keep.
func (e *env) purge(subject string, keep uint64) {
	e.tb.Helper()
	s, err := e.js.Stream(e.ctx, "TENANTS")
	if err != nil {
		e.tb.Fatal(err)
	}
	if err := s.Purge(e.ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeKeep(keep)); err != nil {
		e.tb.Fatalf("purge %s: %v", subject, err)
	}
}

// reads is the value of pulse_history_reads_total{kind}, from the registry
// as Prometheus would scrape it.
func (e *env) reads(kind string) float64 {
	e.tb.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pulse_history_reads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// stored reads back the messages at offsets from the stream (for their
// stored times).
func (e *env) stored(offsets []uint64) []*jetstream.RawStreamMsg {
	e.tb.Helper()
	s, err := e.js.Stream(e.ctx, "TENANTS")
	if err != nil {
		e.tb.Fatal(err)
	}
	out := make([]*jetstream.RawStreamMsg, len(offsets))
	for i, o := range offsets {
		if out[i], err = s.GetMsg(e.ctx, o); err != nil {
			e.tb.Fatalf("get %d: %v", o, err)
		}
	}
	return out
}

func mustChannel(tb testing.TB, name string) channel.Channel {
	tb.Helper()
	ch, err := channel.Parse(name)
	if err != nil {
		tb.Fatal(err)
	}
	return ch
}

func offsets(msgs []*Msg) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Sequence
	}
	return out
}

func reversed(s []uint64) []uint64 {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// after is the part of s above offset.
func after(s []uint64, offset uint64) []uint64 {
	i, _ := slices.BinarySearch(s, offset+1)
	return s[i:]
}

// onlySubject fails unless every message is on subject.
func onlySubject(tb testing.TB, msgs []*Msg, subject string) {
	tb.Helper()
	for _, m := range msgs {
		if m.Subject != subject {
			tb.Fatalf("message %d is on %s, want only %s", m.Sequence, m.Subject, subject)
		}
	}
}

// readGate holds back every byte a connection receives while it is shut.
// A read already waiting in the kernel returns its bytes only once the gate
// opens, so a request sent while shut stays unanswered until then.
type readGate struct {
	mu     sync.Mutex
	opened chan struct{} // closed while the gate is open
	chunk  int           // throttled: at most chunk bytes per read...
	pause  time.Duration // ...each followed by this pause
}

func newReadGate() *readGate {
	c := make(chan struct{})
	close(c)
	return &readGate{opened: c}
}

func (g *readGate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.opened:
		g.opened = make(chan struct{})
	default:
	}
}

func (g *readGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.opened:
	default:
		close(g.opened)
	}
}

// throttle slows the connection down to chunk bytes per pause (a slow
// link or a busy server); chunk 0 lifts it.
func (g *readGate) throttle(chunk int, pause time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.chunk, g.pause = chunk, pause
}

func (g *readGate) limits() (int, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.chunk, g.pause
}

func (g *readGate) wait() {
	g.mu.Lock()
	c := g.opened
	g.mu.Unlock()
	<-c
}

type gatedDialer struct{ gate *readGate }

func (d gatedDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, gate: d.gate}, nil
}

type gatedConn struct {
	net.Conn
	gate *readGate
}

func (c *gatedConn) Read(b []byte) (int, error) {
	if chunk, pause := c.gate.limits(); chunk > 0 {
		time.Sleep(pause)
		b = b[:min(len(b), chunk)]
	}
	n, err := c.Conn.Read(b)
	c.gate.wait()
	return n, err
}
