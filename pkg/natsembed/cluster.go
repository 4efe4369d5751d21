package natsembed

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a JetStream cluster of nodes in this process, for tests of
// replication and failover: nodes can be stopped and started again on the
// same ports and storage.
type Cluster struct {
	tb    testing.TB
	opts  []*server.Options
	nodes []*server.Server // nil while stopped
}

// RunClusterForTest starts an n-node JetStream cluster on loopback with
// fsync always, and waits until it has a meta leader. Stopped at cleanup.
func RunClusterForTest(tb testing.TB, n int) *Cluster {
	tb.Helper()
	ports := freePorts(tb, 2*n)
	routes := make([]*url.URL, n)
	for i := range n {
		routes[i] = &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[n+i])}
	}
	dir := tb.TempDir()
	c := &Cluster{tb: tb, nodes: make([]*server.Server, n)}
	for i := range n {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("node-%d", i),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("node-%d", i)),
			SyncAlways: true,
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "pulse-test", Host: "127.0.0.1", Port: ports[n+i]},
			Routes:     routes,
		})
	}
	for i := range n {
		c.Start(i)
	}
	tb.Cleanup(c.shutdown)
	c.WaitReady()
	return c
}

func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Start starts node i (again), on its ports and storage.
func (c *Cluster) Start(i int) {
	c.tb.Helper()
	o := *c.opts[i]
	s, err := server.NewServer(&o)
	if err != nil {
		c.tb.Fatalf("node %d: %v", i, err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		c.tb.Fatalf("node %d not ready", i)
	}
	c.nodes[i] = s
}

// Stop stops node i abruptly, as a crash would look to the others.
func (c *Cluster) Stop(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

func (c *Cluster) shutdown() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

// URLs is every node's client URL, comma separated, as clients are given.
func (c *Cluster) URLs() string {
	var us []string
	for _, o := range c.opts {
		us = append(us, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(us, ",")
}

// URL is node i's client URL.
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port) }

// StreamLeader is the index of the node leading stream, -1 if none.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.nodes {
		if s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// WaitReady waits until the JetStream API answers through the cluster.
func (c *Cluster) WaitReady() {
	c.tb.Helper()
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		c.tb.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.tb.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("JetStream cluster not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
