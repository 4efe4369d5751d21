// Package gateway wires Pulse together: WebSocket sessions speaking the
// Centrifugo client protocol, the server HTTP API, health and metrics, on top
// of the hub (live fan-out), auth (tokens and permissions) and JetStream.
//
// The gateway keeps no state that another replica needs: any replica can
// serve any client. It must never deliver a publication to a client that the
// permission rules do not allow to read the channel.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pulseplatform/pulse/pkg/auth"
	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/history"
	"github.com/pulseplatform/pulse/pkg/hub"
	"github.com/pulseplatform/pulse/pkg/metrics"
	"github.com/pulseplatform/pulse/pkg/presence"
	"github.com/pulseplatform/pulse/pkg/protocol"
	"github.com/pulseplatform/pulse/pkg/publication"
	"github.com/pulseplatform/pulse/streams"
)

// Gateway serves clients of one node.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	nc       *nats.Conn
	js       jetstream.JetStream
	verifier *auth.Verifier
	hub      *hub.Hub
	metrics  *metrics.Metrics
	registry *prometheus.Registry
	nodeID   string
	started  time.Time
	reader   *history.Reader
	presence *presence.Manager
	stopHub  context.CancelFunc
	hubDone  chan struct{}

	numConns atomic.Int64
	draining atomic.Bool
	wg       sync.WaitGroup // one per client

	mu      sync.Mutex
	clients map[*client]struct{}
	users   map[string]int // user id → connections, for unique-user counts
}

// New creates the streams (or updates them) and returns a gateway ready to
// serve. nc must stay open until Shutdown returns.
func New(ctx context.Context, cfg Config, nc *nats.Conn, verifier *auth.Verifier) (*Gateway, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if _, err := streams.Ensure(ctx, js, cfg.StreamReplicas); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	g := &Gateway{
		cfg:      cfg,
		log:      cfg.Logger,
		nc:       nc,
		js:       js,
		verifier: verifier,
		metrics:  m,
		registry: reg,
		nodeID:   newClientID(),
		started:  time.Now(),
		clients:  make(map[*client]struct{}),
		users:    make(map[string]int),
	}
	g.reader, err = history.NewReader(ctx, js, m)
	if err != nil {
		return nil, err
	}
	g.hub = hub.New(nc, g.reader, m, cfg.Logger)
	g.hub.SetLinger(cfg.ChannelLinger)
	if _, err := nc.Subscribe("$JS.EVENT.ADVISORY.STREAM.*.*", g.onStreamAdvisory); err != nil {
		return nil, fmt.Errorf("subscribe to stream advisories: %w", err)
	}
	g.presence, err = presence.New(ctx, js, presence.Config{
		Bucket: "PULSE_PRESENCE", TTL: cfg.PresenceTTL, Replicas: cfg.StreamReplicas,
		Node: g.nodeID, Logger: cfg.Logger, Metrics: m,
	}, g.onPresence)
	if err != nil {
		return nil, err
	}
	hubCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	g.stopHub, g.hubDone = stop, make(chan struct{})
	go func() {
		defer close(g.hubDone)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); g.presence.Run(hubCtx) }()
		go func() { defer wg.Done(); g.watchWrites(hubCtx) }()
		g.hub.Run(hubCtx, cfg.ReconcileInterval, time.Second)
		wg.Wait()
	}()
	return g, nil
}

// watchWrites closes the sockets of clients whose write has been blocked
// longer than the write timeout (they stopped reading), until ctx ends.
// The flusher's write then fails and the client is cleaned up.
func (g *Gateway) watchWrites(ctx context.Context) {
	tick := time.NewTicker(max(min(time.Second, g.cfg.WriteTimeout/4), time.Millisecond))
	defer tick.Stop()
	var clients []*client
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			g.mu.Lock()
			clients = clients[:0]
			for c := range g.clients {
				clients = append(clients, c)
			}
			g.mu.Unlock()
			for _, c := range clients {
				if c.wire.stuck(now, g.cfg.WriteTimeout) {
					c.log.Info("write timed out: closing", "timeout", g.cfg.WriteTimeout)
					_ = c.wire.conn.Close()
				}
			}
			clear(clients)
		}
	}
}

// onStreamAdvisory reacts to JetStream's stream events: a new leader may
// have missed re-publishing a few messages, and a recreated stream restarts
// its offsets under a new epoch.
func (g *Gateway) onStreamAdvisory(m *nats.Msg) {
	tokens := strings.Split(m.Subject, ".")
	if len(tokens) != 6 || !slices.Contains(channel.Streams(), tokens[5]) {
		return
	}
	switch tokens[4] {
	case "LEADER_ELECTED":
		g.hub.RequestReconcile("leader_elected")
	case "CREATED", "DELETED":
		g.reader.InvalidateEpochs()
		g.hub.RequestReconcile("stream_recreated")
	}
}

// NATSReconnected must be called when the NATS connection comes back: live
// copies published meanwhile were lost, so every channel is reconciled.
func (g *Gateway) NATSReconnected() {
	g.metrics.NATSReconnects.Inc()
	g.hub.RequestReconcile("nats_reconnect")
}

// NodeID identifies this gateway instance.
func (g *Gateway) NodeID() string { return g.nodeID }

// serveWS upgrades to WebSocket and runs the client until it ends.
func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		http.Error(w, "gateway is shutting down", http.StatusServiceUnavailable)
		return
	}
	// Only JSON is spoken. A client that asks for Protobuf only is refused
	// with 3506 after the upgrade, so its SDK reports a clear reason.
	wantsProtobuf := r.URL.Query().Get("format") == "protobuf" || r.URL.Query().Get("cf_protocol") == "protobuf"
	if sp := r.Header.Get("Sec-WebSocket-Protocol"); sp != "" && !strings.Contains(sp, "centrifuge-json") && strings.Contains(sp, "centrifuge-protobuf") {
		wantsProtobuf = true
	}
	subprotocols := []string{"centrifuge-json"}
	if wantsProtobuf {
		subprotocols = append(subprotocols, "centrifuge-protobuf")
	}
	u := &upgrader{ResponseWriter: w}
	conn, err := websocket.Accept(u, r, &websocket.AcceptOptions{
		Subprotocols:    subprotocols,
		OriginPatterns:  g.cfg.AllowedOrigins,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		g.log.Debug("websocket accept", "err", err, "remote", r.RemoteAddr)
		return
	}
	if wantsProtobuf {
		d := protocol.DisconnectInappropriate
		_ = conn.Close(websocket.StatusCode(d.Code), "protobuf is not supported, use JSON")
		return
	}
	conn.SetReadLimit(g.cfg.Limits.MaxMessageSize)
	// The connection outlives this request: its context ends with the
	// connection, and its reader is a goroutine of its own, so the HTTP
	// server's goroutine, request and deep stack are freed now.
	c := newClient(context.Background(), g, conn, u.wire)
	if d := g.addClient(c); d != nil {
		g.metrics.Disconnects.WithLabelValues(itoa(int(d.Code))).Inc()
		if d.Code == protocol.DisconnectConnectionLimit.Code {
			g.metrics.Refusals.WithLabelValues("connection_limit").Inc()
		}
		c.cancel()
		_ = conn.Close(websocket.StatusCode(d.Code), d.Reason)
		return
	}
	go c.serve()
}

// addClient admits c, or says why not: the node is draining or full. The
// check and the count change together, so a flood cannot overshoot the
// limit.
func (g *Gateway) addClient(c *client) *protocol.Disconnect {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining.Load() {
		return &protocol.DisconnectShutdown
	}
	if max := g.cfg.Limits.MaxConnections; max > 0 && len(g.clients) >= max {
		return &protocol.DisconnectConnectionLimit
	}
	g.clients[c] = struct{}{}
	g.numConns.Add(1)
	g.wg.Add(1)
	return nil
}

func (g *Gateway) removeClient(c *client) {
	g.mu.Lock()
	_, ok := g.clients[c]
	delete(g.clients, c)
	g.mu.Unlock()
	if ok {
		g.numConns.Add(-1)
		g.wg.Done()
	}
}

func (g *Gateway) addUser(user string) {
	g.mu.Lock()
	g.users[user]++
	g.mu.Unlock()
}

func (g *Gateway) removeUser(user string) {
	g.mu.Lock()
	if g.users[user]--; g.users[user] <= 0 {
		delete(g.users, user)
	}
	g.mu.Unlock()
}

// Shutdown stops accepting clients, tells every client to reconnect
// elsewhere (3001) and waits for them to go, until ctx ends; then it cuts
// the rest.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.draining.Store(true)
	clients := make([]*client, 0, len(g.clients))
	for c := range g.clients {
		clients = append(clients, c)
	}
	g.mu.Unlock()
	for _, c := range clients {
		c.disconnect(protocol.DisconnectShutdown, true)
	}
	defer func() { g.stopHub(); <-g.hubDone }()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range clients {
			c.cancel()
		}
		<-done
		return fmt.Errorf("drain: %w", ctx.Err())
	}
}

// publishOptions are the optional parts of a publish.
type publishOptions struct {
	tags  map[string]string
	info  *protocol.ClientInfo
	msgID string // Nats-Msg-Id: idempotent retries within the duplicate window
}

// publishResult is where a publication was stored.
type publishResult struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// publish stores data on the channel's subject and waits for JetStream's ack.
// Subscribers then get it through RePublish, the same way as a worker's
// direct NATS publish.
func (g *Gateway) publish(ctx context.Context, ch channel.Channel, data []byte, o publishOptions) (publishResult, error) {
	msg := nats.NewMsg(ch.Subject())
	msg.Data = data
	if err := publication.SetHeaders(msg.Header, o.tags, o.info); err != nil {
		return publishResult{}, fmt.Errorf("publish %s: %w", ch, err)
	}
	var opts []jetstream.PublishOpt
	if o.msgID != "" {
		opts = append(opts, jetstream.WithMsgID(o.msgID))
	}
	ack, err := g.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return publishResult{}, fmt.Errorf("publish %s: %w", ch, err)
	}
	g.metrics.Publications.WithLabelValues(string(ch.Namespace()), metrics.DirectionIn).Inc()
	return publishResult{Offset: ack.Sequence, Epoch: g.reader.StreamEpoch(ack.Stream)}, nil
}

// ready reports whether NATS is reachable and the streams exist.
func (g *Gateway) ready(ctx context.Context) error {
	if !g.nc.IsConnected() {
		return errors.New("NATS not connected: " + g.nc.Status().String())
	}
	for _, name := range channel.Streams() {
		if _, err := g.js.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return nil
}
