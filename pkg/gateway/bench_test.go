package gateway

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/metrics"
)

// BenchmarkRecoveryMerge is what a recovering subscription does after its
// stream read: live publications held while the reply was prepared are
// released behind the reply, those the reply already carried (at or below
// the floor) skipped. held is the live frames that arrived meanwhile, half
// of them already in the reply.
func BenchmarkRecoveryMerge(b *testing.B) {
	ch, err := channel.Parse("tenant:acme:deployments")
	if err != nil {
		b.Fatal(err)
	}
	cfg := Defaults()
	g := &Gateway{cfg: cfg, metrics: metrics.New(prometheus.NewRegistry())}
	frame := []byte(`{"push":{"channel":"tenant:acme:deployments","pub":{"data":{"status":"in_progress","progress":40},"offset":1}}}`)
	reply := []byte(`{"id":2,"subscribe":{"recoverable":true,"epoch":"e","offset":1,"positioned":true,"was_recovering":true,"recovered":true}}`)
	for _, held := range []int{0, 10, 100} {
		b.Run(fmt.Sprint(held), func(b *testing.B) {
			c := &client{g: g, writing: true} // as if a flusher ran: the loop drains the queue itself
			b.ReportAllocs()
			for b.Loop() {
				s := newSubscription(c, ch)
				for i := range held {
					s.Deliver(uint64(i+1), frame, false)
				}
				s.release(reply, uint64(held/2))
				c.qmu.Lock()
				c.queue, c.qbytes = c.queue[:0], 0
				c.qmu.Unlock()
			}
			if held > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*held), "ns/held")
			}
		})
	}
}

// BenchmarkDeliverToSockets is the last step of fan-out to idle
// connections: one publication frame written at once from the fan-out
// goroutine to each of n WebSocket connections on loopback sockets (one
// system call each), read by standard clients in this process. Most of the
// time is the kernel's loopback TCP path, the reader's side included.
func BenchmarkDeliverToSockets(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cfg := Defaults()
			cfg.MinWriteInterval = 0
			g := &Gateway{cfg: cfg, log: testLogger(), metrics: metrics.New(prometheus.NewRegistry())}
			clients := socketClients(b, g, n)
			frame := []byte(`{"push":{"channel":"tenant:acme:deployments","pub":{"data":{"status":"in_progress","progress":40},"offset":1}}}`)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for _, c := range clients {
					c.enqueueFrame(frame, false, true)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}

// socketClients makes n server-side clients, each on its own loopback
// WebSocket with a reader at the other end that discards what it gets.
func socketClients(b *testing.B, g *Gateway, n int) []*client {
	b.Helper()
	accepted := make(chan *client, n)
	url := upgradeServer(b, func(conn *websocket.Conn, w *wire) {
		c := newClient(context.Background(), g, conn, w)
		c.held = false
		accepted <- c
	})
	var out []*client
	for range n {
		conn, _, err := websocket.Dial(context.Background(), url, nil)
		if err != nil {
			b.Fatal(err)
		}
		conn.SetReadLimit(-1)
		b.Cleanup(func() { conn.CloseNow() })
		go func() {
			for {
				_, r, err := conn.Reader(context.Background())
				if err != nil {
					return
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					return
				}
			}
		}()
		select {
		case c := <-accepted:
			out = append(out, c)
		case <-time.After(10 * time.Second):
			b.Fatal("server side of the connection not ready")
		}
	}
	return out
}
