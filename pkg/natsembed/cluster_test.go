package natsembed

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestClusterReplicatesAndSurvivesALeader(t *testing.T) {
	t.Parallel()
	c := RunClusterForTest(t, 3)
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "r3.a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	leader := c.StreamLeader("R3")
	if leader < 0 {
		t.Fatal("no stream leader")
	}
	c.Stop(leader)
	var ack *jetstream.PubAck
	for ack == nil {
		// Each attempt gets its own deadline: a request sent while the
		// connection moves to another node is lost, not answered.
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		ack, err = js.Publish(actx, "r3.a", []byte("2"), jetstream.WithMsgID("second"))
		acancel()
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("no new leader: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c.Start(leader)
	s, err := js.Stream(ctx, "R3")
	if err != nil || s.CachedInfo().State.Msgs != 2 {
		t.Fatalf("after failover: %v %+v", err, s)
	}
}
