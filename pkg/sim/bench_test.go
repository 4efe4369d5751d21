package sim

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/natsembed"
	"github.com/pulseplatform/pulse/streams"
)

// BenchmarkPublish measures the events per second one simulator process
// stores with acknowledgements in an embedded JetStream server, both with
// the default fsync of every write (-nats-sync always) and with a periodic
// one.
func BenchmarkPublish(b *testing.B) {
	for _, sync := range []string{"always", "1s"} {
		for _, window := range []int{1, DefaultMaxInFlight} {
			b.Run("sync="+sync+"/window="+strconv.Itoa(window), func(b *testing.B) {
				s, err := natsembed.Start(context.Background(), natsembed.Options{Listen: "127.0.0.1:-1", DataDir: b.TempDir(), Sync: sync})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Shutdown()
				nc, err := nats.Connect(s.ClientURL())
				if err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
				js, _ := jetstream.New(nc)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := streams.Ensure(ctx, js, 1); err != nil {
					b.Fatal(err)
				}
				cfg := Config{Tenants: []string{"acme", "globex", "initech", "umbrella"}, Rate: 1e6, Speed: 3600, Seed: 1,
					Start: testStart, MaxInFlight: window}.withDefaults(1)
				dp, err := newDeployer(cfg)
				if err != nil {
					b.Fatal(err)
				}
				p := newPublisher(js, cfg)
				var seq int64
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for seq < int64(b.N) {
					out, _, err := dp.step()
					if err != nil {
						b.Fatal(err)
					}
					for _, e := range out {
						data, err := encode("deployer", 1, seq, e)
						if err != nil {
							b.Fatal(err)
						}
						msg := nats.NewMsg(e.ch.Subject())
						msg.Data = data
						msg.Header.Set(jetstream.MsgIDHeader, msgID("deployer", 1, seq))
						seq++
						if err := p.send(ctx, msg); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := p.flush(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(p.acked.Load())/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}
