package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulseplatform/pulse/pkg/auth"
)

// apiPost calls the server API and decodes the reply.
func (e *env) apiPost(method, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/"+method, strings.NewReader(body))
	req.Header.Set("X-API-Key", testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatalf("decode %s reply: %v", method, err)
	}
	return resp.StatusCode, out
}

func TestSDKReceivesNATSAndAPIPublicationsInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(e.token(acme("alice")))
	s := e.subscribe(c, "tenant:acme:deployments")

	var want []uint64
	for i := 0; i < 5; i++ {
		want = append(want, e.publishNATS("tenants.acme.deployments", fmt.Sprintf(`{"n":%d}`, i)))
		status, body := e.apiPost("publish", fmt.Sprintf(`{"channel":"tenant:acme:deployments","data":{"n":%d}}`, 5+i))
		if status != http.StatusOK {
			t.Fatalf("api publish: %d %v", status, body)
		}
		res := body["result"].(map[string]any)
		want = append(want, uint64(res["offset"].(float64)))
		if res["epoch"] == "" {
			t.Fatal("api publish reply has no epoch")
		}
	}
	for i, off := range want {
		p := waitPub(t, s, 5*time.Second)
		if p.Offset != off {
			t.Fatalf("publication %d: offset %d, want %d", i, p.Offset, off)
		}
		n := i/2 + 5*(i%2)
		if string(p.Data) != fmt.Sprintf(`{"n":%d}`, n) {
			t.Fatalf("publication %d: data %s, want n=%d", i, p.Data, n)
		}
	}
	noPub(t, s, 200*time.Millisecond)
}

func TestSDKTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	alice := e.connect(e.token(acme("alice")))
	bob := e.connect(e.token(globex("bob")))

	// Refused with 103, and the connection stays usable.
	forbidden := e.newSub(alice, "tenant:globex:deployments", centrifuge.SubscriptionConfig{})
	if err := forbidden.Subscribe(); err != nil {
		t.Fatal(err)
	}
	if code := subError(t, forbidden); code != 103 {
		t.Fatalf("cross-tenant subscribe: code %d, want 103", code)
	}
	sa := e.subscribe(alice, "tenant:acme:deployments")
	sb := e.subscribe(bob, "tenant:globex:deployments")
	sbAcme := e.newSub(bob, "tenant:acme:deployments", centrifuge.SubscriptionConfig{})
	_ = sbAcme.Subscribe()
	if code := subError(t, sbAcme); code != 103 {
		t.Fatalf("globex user on acme channel: code %d, want 103", code)
	}

	for i := 0; i < 3; i++ {
		e.publishNATS("tenants.globex.deployments", `{"secret":"globex"}`)
		e.publishNATS("tenants.acme.deployments", `{"tenant":"acme"}`)
	}
	for i := 0; i < 3; i++ {
		if p := waitPub(t, sa, 5*time.Second); !bytes.Contains(p.Data, []byte("acme")) {
			t.Fatalf("acme user got %s", p.Data)
		}
		if p := waitPub(t, sb, 5*time.Second); !bytes.Contains(p.Data, []byte("globex")) {
			t.Fatalf("globex user got %s", p.Data)
		}
	}
	noPub(t, sa, 300*time.Millisecond)
	noPub(t, forbidden, 0)

	// Other readable namespaces: system for all, admin for nobody but admins.
	e.subscribe(alice, "system:health")
	adm := e.newSub(alice, "admin:platform:alerts", centrifuge.SubscriptionConfig{})
	_ = adm.Subscribe()
	if code := subError(t, adm); code != 103 {
		t.Fatalf("member on admin channel: code %d, want 103", code)
	}
}

func TestSDKAdminReadsEveryTenantAndAdminChannels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	root := e.connect(e.token(admin()))
	sAcme := e.subscribe(root, "tenant:acme:billing")
	sGlobex := e.subscribe(root, "tenant:globex:billing")
	sAlerts := e.subscribe(root, "admin:platform:alerts")
	e.publishNATS("tenants.acme.billing", `{"a":1}`)
	e.publishNATS("tenants.globex.billing", `{"g":1}`)
	e.publishNATS("admin.platform.alerts", `{"alert":"disk"}`)
	waitPub(t, sAcme, 5*time.Second)
	waitPub(t, sGlobex, 5*time.Second)
	if p := waitPub(t, sAlerts, 5*time.Second); string(p.Data) != `{"alert":"disk"}` {
		t.Fatalf("admin alert data %s", p.Data)
	}
}

func TestSDKMalformedChannelsKeepConnectionUsable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(e.token(admin()))
	for _, tc := range []struct {
		ch   string
		code uint32
	}{
		{"tenant:acme.x:deployments", 107},
		{"tenant:*:deployments", 107},
		{"tenant:acme:deployments:extra", 107},
		{"chat:42", 102},
		{"tenants.acme.deployments", 102},
	} {
		s := e.newSub(c, tc.ch, centrifuge.SubscriptionConfig{})
		_ = s.Subscribe()
		if code := subError(t, s); code != tc.code {
			t.Errorf("%q: code %d, want %d", tc.ch, code, tc.code)
		}
	}
	s := e.subscribe(c, "tenant:acme:deployments")
	e.publishNATS("tenants.acme.deployments", `{"ok":true}`)
	waitPub(t, s, 5*time.Second)
}

func TestSDKBadTokensRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	otherKey, err := auth.MintHMAC([]byte("another-secret-another-secret-0000"), "HS256", auth.TokenSpec{Subject: "alice", Tenant: "acme", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	noneTok := unsignedToken(`{"sub":"alice","tenant":"acme","roles":["admin"],"exp":` + fmt.Sprint(time.Now().Add(time.Hour).Unix()) + `}`)
	for name, tok := range map[string]string{
		"garbage":   "not-a-jwt",
		"wrong key": otherKey,
		"alg none":  noneTok,
		"no sub":    e.token(auth.TokenSpec{Tenant: "acme"}),
	} {
		t.Run(name, func(t *testing.T) {
			c := e.newSDK(tok, centrifuge.Config{})
			_ = c.Connect()
			waitClose(t, c, 3500, 5*time.Second)
		})
	}

	t.Run("expired token is refreshed through GetToken (109)", func(t *testing.T) {
		asked := make(chan struct{}, 4)
		c := e.newSDK(e.token(auth.TokenSpec{Subject: "alice", Tenant: "acme", TTL: -time.Minute}), centrifuge.Config{
			GetToken: func(centrifuge.ConnectionTokenEvent) (string, error) {
				asked <- struct{}{}
				return e.token(acme("alice")), nil
			},
		})
		_ = c.Connect()
		select {
		case <-asked:
		case <-time.After(5 * time.Second):
			t.Fatal("SDK never asked for a new token: expired token not answered with 109")
		}
		select {
		case <-c.connected:
		case <-time.After(5 * time.Second):
			t.Fatal("not connected with the refreshed token")
		}
	})
}

// unsignedToken builds an alg:none JWT by hand.
func unsignedToken(claims string) string {
	enc := func(s string) string {
		return strings.TrimRight(base64URL(s), "=")
	}
	return enc(`{"alg":"none","typ":"JWT"}`) + "." + enc(claims) + "."
}

func TestSDKClientPublishNeedsGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	spec := acme("alice")
	spec.Allow = &auth.Grants{Publish: []string{"tenant:acme:collaboration"}}
	alice := e.connect(e.token(spec))
	carol := e.connect(e.token(acme("carol")))
	watch := e.subscribe(carol, "tenant:acme:collaboration")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := alice.Publish(ctx, "tenant:acme:collaboration", []byte(`{"field":"name","value":"x"}`)); err != nil {
		t.Fatalf("granted publish: %v", err)
	}
	p := waitPub(t, watch, 5*time.Second)
	if p.Info == nil || p.Info.User != "alice" || string(p.Data) != `{"field":"name","value":"x"}` {
		t.Fatalf("publication %s info %+v", p.Data, p.Info)
	}
	if p.Offset == 0 {
		t.Fatal("client publication has no offset")
	}

	_, err := carol.Publish(ctx, "tenant:acme:collaboration", []byte(`{}`))
	var pe *centrifuge.Error
	if !asError(err, &pe) || pe.Code != 103 {
		t.Fatalf("publish without grant: %v, want 103", err)
	}
	_, err = alice.Publish(ctx, "tenant:acme:deployments", []byte(`{}`))
	if !asError(err, &pe) || pe.Code != 103 {
		t.Fatalf("publish outside grant: %v, want 103", err)
	}
	noPub(t, watch, 200*time.Millisecond)
}

func TestSDKServerSideSubscriptionsFromChannelsClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	spec := acme("alice")
	// The globex channel is dropped: the channels claim never widens access.
	spec.Channels = []string{"tenant:acme:notifications", "system:health", "tenant:globex:notifications"}
	c := e.connect(e.token(spec))
	e.publishNATS("tenants.globex.notifications", `{"leak":true}`)
	e.publishNATS("tenants.acme.notifications", `{"n":1}`)
	e.publishNATS("system.health", `{"ok":true}`)
	got := map[string]string{}
	for len(got) < 2 {
		select {
		case p := <-c.serverPubs:
			got[p.Channel] = string(p.Data)
		case <-time.After(5 * time.Second):
			t.Fatalf("server-side publications: got %v", got)
		}
	}
	if got["tenant:acme:notifications"] != `{"n":1}` || got["system:health"] != `{"ok":true}` {
		t.Fatalf("got %v", got)
	}
	select {
	case p := <-c.serverPubs:
		t.Fatalf("unexpected server-side publication on %s: %s", p.Channel, p.Data)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestSDKSubscriptionToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(e.token(acme("alice")))
	subTok := e.token(auth.TokenSpec{Subject: "alice", Channel: "tenant:globex:shared"})
	s := e.newSub(c, "tenant:globex:shared", centrifuge.SubscriptionConfig{Token: subTok})
	_ = s.Subscribe()
	select {
	case <-s.subscribed:
	case err := <-s.errs:
		t.Fatalf("subscription token refused: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("timeout")
	}
	e.publishNATS("tenants.globex.shared", `{"shared":1}`)
	waitPub(t, s, 5*time.Second)

	// A token for another channel closes the connection as invalid (3500).
	bad := e.newSub(c, "tenant:globex:deployments", centrifuge.SubscriptionConfig{Token: subTok})
	_ = bad.Subscribe()
	waitClose(t, c, 3500, 5*time.Second)
}

func TestSDKSlowClientIsCutOffFastClientGetsEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Limits.QueueSize = 2 << 20 })
	fast := e.connect(e.token(acme("fast")))
	// The slow client's socket gets a small fixed receive buffer, so a stalled
	// reader pushes back on the gateway quickly, as a frozen tab on a poor
	// link would.
	slow := e.newSDK(e.token(acme("slow")), centrifuge.Config{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				_ = conn.(*net.TCPConn).SetReadBuffer(16 << 10)
			}
			return conn, err
		},
	})
	if err := slow.Connect(); err != nil {
		t.Fatal(err)
	}
	<-slow.connected
	fs := e.subscribe(fast, "tenant:acme:metrics")
	ss := e.newSub(slow, "tenant:acme:metrics", centrifuge.SubscriptionConfig{})
	release := make(chan struct{})
	blocked := make(chan struct{}, 1)
	ss.OnPublication(func(centrifuge.PublicationEvent) {
		select {
		case blocked <- struct{}{}:
		default:
		}
		<-release // the SDK's read loop stalls here, like a frozen tab
	})
	_ = ss.Subscribe()
	<-ss.subscribed

	// Large publications, so the kernel buffers the slow client must drain
	// before it reaches the close frame hold few of them (the close handshake
	// has a deadline).
	const n, batch = 300, 10
	payload := `{"pad":"` + strings.Repeat("x", 60000) + `"}`
	// The fast client reads each batch before the next is published, so it
	// is never more than a batch behind; the slow one falls further behind
	// with every batch.
	var last uint64
	for i := 0; i < n; i += batch {
		for j := 0; j < batch; j++ {
			if _, err := e.js.PublishAsync("tenants.acme.metrics", []byte(payload)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-e.js.PublishAsyncComplete():
		case <-time.After(10 * time.Second):
			t.Fatal("publishes not acknowledged")
		}
		for j := 0; j < batch; j++ {
			p := waitPub(t, fs, 20*time.Second)
			if p.Offset <= last {
				t.Fatalf("fast client: offset %d after %d", p.Offset, last)
			}
			last = p.Offset
		}
	}
	// Once the gateway has given up on the slow client, let it read again:
	// it drains what its socket holds and then finds the close frame.
	<-blocked
	deadline := time.Now().Add(30 * time.Second)
	for testutil.ToFloat64(e.g.metrics.SlowDisconnects) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("gateway never cut the slow client off")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	waitClose(t, slow, 3008, 30*time.Second)
	select {
	case code := <-fast.closes:
		t.Fatalf("fast client lost its connection with %d", code)
	default:
	}
}

func TestSDKShutdownSendsReconnectableShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(e.token(acme("alice")))
	e.subscribe(c, "tenant:acme:deployments")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.g.Shutdown(ctx) }()
	waitClose(t, c, 3001, 5*time.Second)
	if err := <-done; err != nil {
		t.Fatalf("drain: %v", err)
	}
}

func TestSDKConnectionRefreshKeepsItAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.ExpiryGrace = 500 * time.Millisecond })
	refreshed := make(chan struct{}, 8)
	spec := acme("alice")
	spec.TTL = 2 * time.Second
	c := e.newSDK(e.token(spec), centrifuge.Config{GetToken: func(centrifuge.ConnectionTokenEvent) (string, error) {
		refreshed <- struct{}{}
		return e.token(acme("alice")), nil
	}})
	_ = c.Connect()
	<-c.connected
	s := e.subscribe(c, "tenant:acme:deployments")
	select {
	case <-refreshed:
	case <-time.After(5 * time.Second):
		t.Fatal("SDK was not told to refresh (expires/ttl missing)")
	}
	time.Sleep(2 * time.Second) // past exp + grace of the first token
	select {
	case code := <-c.closes:
		t.Fatalf("connection lost with %d after a refresh", code)
	default:
	}
	e.publishNATS("tenants.acme.deployments", `{"after":"refresh"}`)
	waitPub(t, s, 5*time.Second)
}
