package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/auth"
	"github.com/pulseplatform/pulse/pkg/natsembed"
)

// testSecret signs every test token; tests also mint with other keys to
// check they are refused.
var testSecret = []byte("pulse-test-secret-0123456789abcdef")

const testAPIKey = "test-api-key"

// env is a real gateway in process: embedded JetStream, real HTTP server,
// real WebSockets.
type env struct {
	t    *testing.T
	g    *Gateway
	nc   *nats.Conn
	js   jetstream.JetStream
	srv  *httptest.Server
	ws   string // WebSocket URL
	ns   *natsembed.Server
	stop func() // shuts this gateway down (idempotent)
}

func testLogger() *slog.Logger {
	if os.Getenv("PULSE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newEnv starts a gateway; mod may change its config first.
func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	ns := natsembed.RunForTest(t)
	e := startGateway(t, ns, mod)
	e.ns = ns
	return e
}

// startGateway starts one more gateway, with its own NATS connection, on
// the JetStream server ns: a replica, or a restarted process.
func startGateway(t *testing.T, ns *natsembed.Server, mod func(*Config)) *env {
	t.Helper()
	e := startGatewayAt(t, ns.ClientURL(), mod)
	e.ns = ns
	return e
}

// startGatewayAt starts a gateway on the NATS server(s) at url, with the
// reconnect behaviour of production (cmd/gateway).
func startGatewayAt(t *testing.T, url string, mod func(*Config), opts ...nats.Option) *env {
	t.Helper()
	var gw atomic.Pointer[Gateway]
	opts = append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) {
			if g := gw.Load(); g != nil {
				g.NATSReconnected()
			}
		}),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg := Defaults()
	cfg.JWTHMACSecret = string(testSecret)
	cfg.APIKey = testAPIKey
	cfg.Logger = testLogger()
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := newVerifier(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	g, err := New(ctx, cfg, nc, v)
	if err != nil {
		t.Fatal(err)
	}
	gw.Store(g)
	srv := httptest.NewServer(g.Handler())
	e := &env{t: t, g: g, nc: nc, srv: srv}
	e.stop = func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = g.Shutdown(sctx)
		srv.Close()
		nc.Close()
	}
	t.Cleanup(e.stop)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e.js = js
	e.ws = "ws" + strings.TrimPrefix(srv.URL, "http") + "/connection/websocket"
	return e
}

// token mints an HS256 token with the test secret, valid for an hour unless
// spec sets TTL.
func (e *env) token(spec auth.TokenSpec) string {
	e.t.Helper()
	if spec.TTL == 0 {
		spec.TTL = time.Hour
	}
	tok, err := auth.MintHMAC(testSecret, "HS256", spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func acme(user string) auth.TokenSpec {
	return auth.TokenSpec{Subject: user, Tenant: "acme", Roles: []string{"member"}, Info: map[string]string{"name": user}}
}

func globex(user string) auth.TokenSpec {
	return auth.TokenSpec{Subject: user, Tenant: "globex", Roles: []string{"member"}}
}

func admin() auth.TokenSpec {
	return auth.TokenSpec{Subject: "root", Roles: []string{"admin"}}
}

// sdkClient is a centrifuge-go client with its events recorded.
type sdkClient struct {
	*centrifuge.Client
	connected    chan centrifuge.ConnectedEvent
	disconnected chan centrifuge.DisconnectedEvent
	closes       chan uint32 // codes of every connection loss, reconnecting or not
	serverPubs   chan centrifuge.ServerPublicationEvent
}

// newSDK creates an official centrifuge-go client for the env; cfg may set
// GetToken and similar.
func (e *env) newSDK(token string, cfg centrifuge.Config) *sdkClient {
	e.t.Helper()
	cfg.Token = token
	if cfg.Name == "" {
		cfg.Name = "pulse-test"
	}
	if cfg.MinReconnectDelay == 0 {
		cfg.MinReconnectDelay = 50 * time.Millisecond
		cfg.MaxReconnectDelay = 200 * time.Millisecond
	}
	c := &sdkClient{
		Client:       centrifuge.NewJsonClient(e.ws, cfg),
		connected:    make(chan centrifuge.ConnectedEvent, 16),
		disconnected: make(chan centrifuge.DisconnectedEvent, 16),
		closes:       make(chan uint32, 64),
		serverPubs:   make(chan centrifuge.ServerPublicationEvent, 1024),
	}
	c.OnConnected(func(ev centrifuge.ConnectedEvent) { c.connected <- ev })
	c.OnConnecting(func(ev centrifuge.ConnectingEvent) {
		if ev.Code != 0 { // 0: the first connect
			c.closes <- ev.Code
		}
	})
	c.OnDisconnected(func(ev centrifuge.DisconnectedEvent) {
		c.closes <- ev.Code
		c.disconnected <- ev
	})
	c.OnPublication(func(ev centrifuge.ServerPublicationEvent) { c.serverPubs <- ev })
	e.t.Cleanup(c.Close)
	return c
}

// connect creates a client and waits until it is connected.
func (e *env) connect(token string) *sdkClient {
	e.t.Helper()
	c := e.newSDK(token, centrifuge.Config{})
	if err := c.Connect(); err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-c.connected:
	case ev := <-c.disconnected:
		e.t.Fatalf("disconnected instead of connected: %d %s", ev.Code, ev.Reason)
	case <-time.After(5 * time.Second):
		e.t.Fatal("timeout waiting for connect")
	}
	return c
}

// sdkSub is a subscription with its events recorded.
type sdkSub struct {
	*centrifuge.Subscription
	subscribed   chan centrifuge.SubscribedEvent
	errs         chan error
	unsubscribed chan centrifuge.UnsubscribedEvent
	pubs         chan centrifuge.PublicationEvent
	joins        chan centrifuge.JoinEvent
	leaves       chan centrifuge.LeaveEvent
}

func (e *env) newSub(c *sdkClient, ch string, cfg centrifuge.SubscriptionConfig) *sdkSub {
	e.t.Helper()
	sub, err := c.NewSubscription(ch, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	s := &sdkSub{
		Subscription: sub,
		subscribed:   make(chan centrifuge.SubscribedEvent, 16),
		errs:         make(chan error, 16),
		unsubscribed: make(chan centrifuge.UnsubscribedEvent, 16),
		pubs:         make(chan centrifuge.PublicationEvent, 4096),
		joins:        make(chan centrifuge.JoinEvent, 64),
		leaves:       make(chan centrifuge.LeaveEvent, 64),
	}
	sub.OnJoin(func(ev centrifuge.JoinEvent) { s.joins <- ev })
	sub.OnLeave(func(ev centrifuge.LeaveEvent) { s.leaves <- ev })
	sub.OnSubscribed(func(ev centrifuge.SubscribedEvent) { s.subscribed <- ev })
	sub.OnError(func(ev centrifuge.SubscriptionErrorEvent) { s.errs <- ev.Error })
	sub.OnUnsubscribed(func(ev centrifuge.UnsubscribedEvent) { s.unsubscribed <- ev })
	sub.OnPublication(func(ev centrifuge.PublicationEvent) { s.pubs <- ev })
	return s
}

// subscribe subscribes and waits for success.
func (e *env) subscribe(c *sdkClient, ch string) *sdkSub {
	e.t.Helper()
	s := e.newSub(c, ch, centrifuge.SubscriptionConfig{})
	if err := s.Subscribe(); err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-s.subscribed:
	case err := <-s.errs:
		e.t.Fatalf("subscribe %s: %v", ch, err)
	case <-time.After(5 * time.Second):
		e.t.Fatalf("subscribe %s: timeout", ch)
	}
	return s
}

// publishNATS publishes like a worker: straight to the subject with an ack.
func (e *env) publishNATS(subject, data string) uint64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := e.js.Publish(ctx, subject, []byte(data))
	if err != nil {
		e.t.Fatalf("publish %s: %v", subject, err)
	}
	return ack.Sequence
}

// waitPub returns the next publication or fails after d.
func waitPub(t *testing.T, s *sdkSub, d time.Duration) centrifuge.PublicationEvent {
	t.Helper()
	select {
	case p := <-s.pubs:
		return p
	case <-time.After(d):
		t.Fatalf("no publication on %s within %v", s.Channel, d)
		return centrifuge.PublicationEvent{}
	}
}

// noPub asserts nothing arrives on s within d.
func noPub(t *testing.T, s *sdkSub, d time.Duration) {
	t.Helper()
	select {
	case p := <-s.pubs:
		t.Fatalf("unexpected publication on %s: offset %d %s", s.Channel, p.Offset, p.Data)
	case <-time.After(d):
	}
}

// subError waits for a subscribe error and returns its protocol code.
func subError(t *testing.T, s *sdkSub) uint32 {
	t.Helper()
	select {
	case err := <-s.errs:
		var pe *centrifuge.Error
		if !asError(err, &pe) {
			t.Fatalf("subscribe error %v is not a protocol error", err)
		}
		return pe.Code
	case <-s.subscribed:
		t.Fatalf("subscribed to %s, want an error", s.Channel)
	case <-time.After(5 * time.Second):
		t.Fatalf("no error for %s", s.Channel)
	}
	return 0
}

// waitClose waits until the client loses its connection with code (as a
// reconnecting or a terminal disconnect).
func waitClose(t *testing.T, c *sdkClient, code uint32, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case got := <-c.closes:
			if got == code {
				return
			}
			t.Logf("connection lost with %d, waiting for %d", got, code)
		case <-deadline:
			t.Fatalf("no disconnect %d within %v", code, d)
		}
	}
}
