package gateway

import (
	"fmt"
	"testing"

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
