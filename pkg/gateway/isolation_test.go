package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulseplatform/pulse/pkg/auth"
	"github.com/pulseplatform/pulse/pkg/protocol"
)

// TestRandomizedTenantIsolation connects users of many tenants, lets each
// try to subscribe to random channels of every tenant, publishes to random
// channels of all of them, and checks that every user received exactly the
// publications of the channels it was allowed to subscribe to.
func TestRandomizedTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rng := rand.New(rand.NewPCG(42, 7))
	tenants := []string{"acme", "globex", "initech", "umbrella", "hooli"}
	resources := []string{"deployments", "billing", "metrics", "alerts"}
	type user struct {
		name, tenant string
		r            *raw
		allowed      map[string]bool
	}
	var users []*user
	for i := range 15 {
		u := &user{name: fmt.Sprintf("u%d", i), tenant: tenants[i%len(tenants)], allowed: map[string]bool{}}
		u.r = e.dial(t)
		u.r.connect(e.token(auth.TokenSpec{Subject: u.name, Tenant: u.tenant, Roles: []string{"member"}}))
		id := uint32(2)
		for range 8 {
			ch := fmt.Sprintf("tenant:%s:%s", tenants[rng.IntN(len(tenants))], resources[rng.IntN(len(resources))])
			if u.allowed[ch] {
				continue
			}
			u.r.send(fmt.Sprintf(`{"id":%d,"subscribe":{"channel":%q}}`, id, ch))
			rep := u.r.reply(id)
			own := ch[len("tenant:"):len("tenant:")+len(u.tenant)+1] == u.tenant+":"
			switch {
			case own && rep.Subscribe == nil:
				t.Fatalf("%s (%s) refused its own %s: %+v", u.name, u.tenant, ch, rep.Error)
			case !own && (rep.Error == nil || rep.Error.Code != 103):
				t.Fatalf("%s (%s) subscribing to %s: %+v, want 103", u.name, u.tenant, ch, rep)
			case own:
				u.allowed[ch] = true
			}
			id++
		}
		users = append(users, u)
	}
	sent := map[string]int{}
	for i := range 300 {
		ch := fmt.Sprintf("tenant:%s:%s", tenants[rng.IntN(len(tenants))], resources[rng.IntN(len(resources))])
		e.publishNATS(mustParse(t, ch).Subject(), fmt.Sprintf(`{"ch":%q,"i":%d}`, ch, i))
		sent[ch]++
	}
	for _, u := range users {
		want := 0
		for ch := range u.allowed {
			want += sent[ch]
		}
		got := 0
		for got < want {
			p := u.r.push()
			if p.Pub == nil {
				continue
			}
			var body struct{ Ch string }
			if err := json.Unmarshal(p.Pub.Data, &body); err != nil || body.Ch != p.Channel || !u.allowed[p.Channel] {
				t.Fatalf("%s (%s) received %s on %s", u.name, u.tenant, p.Pub.Data, p.Channel)
			}
			got++
		}
		u.r.expectQuiet(200 * time.Millisecond)
	}
}

// expectQuiet fails if a publication arrives within d.
func (r *raw) expectQuiet(d time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, data, err := r.conn.Read(ctx)
		if err != nil {
			return
		}
		var rep protocol.Reply
		if json.Unmarshal(data, &rep) == nil && rep.Push != nil && rep.Push.Pub != nil {
			r.t.Fatalf("unexpected publication %s", data)
		}
	}
}

func TestTokenAttacksAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	now := time.Now()
	for _, tc := range []struct {
		name  string
		token string
		code  uint32 // close code, or reply error code when < 1000
	}{
		{"expired", e.token(auth.TokenSpec{Subject: "a", Tenant: "acme", TTL: -time.Minute}), 109},
		{"not yet valid", e.token(auth.TokenSpec{Subject: "a", Tenant: "acme", Extra: map[string]any{"nbf": now.Add(time.Hour).Unix()}}), 109},
		{"tampered payload", tamper(e.token(acme("alice"))), 3500},
		{"alg none", unsignedToken(fmt.Sprintf(`{"sub":"a","tenant":"acme","exp":%d}`, now.Add(time.Hour).Unix())), 3500},
		{"missing sub", e.token(auth.TokenSpec{Tenant: "acme"}), 3500},
		{"no exp", mustMint(t, auth.TokenSpec{Subject: "a", Tenant: "acme"}), 3500},
		{"channel claim in a connection token", e.token(auth.TokenSpec{Subject: "a", Tenant: "acme", Channel: "tenant:acme:x"}), 3500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.dial(t)
			r.send(`{"id":1,"connect":{"token":"` + tc.token + `"}}`)
			if tc.code < 1000 {
				rep := r.reply(1)
				if rep.Error == nil || rep.Error.Code != tc.code {
					t.Fatalf("reply %+v, want error %d", rep, tc.code)
				}
				return
			}
			if code := r.closed(5 * time.Second); int(code) != int(tc.code) {
				t.Fatalf("close %d, want %d", code, tc.code)
			}
		})
	}
	// Tenant claims that try to reach further than one tenant read nothing.
	for _, tenant := range []string{"*", ">", "acme.*", "acme:deployments", "", "ACME"} {
		r := e.dial(t)
		r.connect(e.token(auth.TokenSpec{Subject: "mallory", Tenant: tenant}))
		r.send(`{"id":2,"subscribe":{"channel":"tenant:acme:deployments"}}`)
		if rep := r.reply(2); rep.Error == nil || rep.Error.Code != 103 {
			t.Fatalf("tenant claim %q: %+v, want 103", tenant, rep)
		}
	}
}

// tamper changes the payload of a signed token, keeping the signature.
func tamper(tok string) string {
	parts := splitToken(tok)
	return parts[0] + "." + base64URLNoPad(`{"sub":"alice","tenant":"globex","exp":9999999999}`) + "." + parts[2]
}

func mustMint(t *testing.T, spec auth.TokenSpec) string {
	tok, err := auth.MintHMAC(testSecret, "HS256", spec)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestConnectionFloodIsRefusedCleanly opens far more connections than the
// node allows, all at once: the extra ones are closed with 3504, the
// admitted ones work, and capacity comes back when they leave.
func TestConnectionFloodIsRefusedCleanly(t *testing.T) {
	t.Parallel()
	const limit, flood = 20, 120
	e := newEnv(t, func(c *Config) { c.Limits.MaxConnections = limit })
	tok := e.token(acme("alice"))
	type result struct {
		r    *raw
		code websocket.StatusCode
	}
	results := make(chan result, flood)
	for range flood {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, _, err := websocket.Dial(ctx, e.ws, nil)
			if err != nil {
				results <- result{code: -1}
				return
			}
			t.Cleanup(func() { conn.CloseNow() })
			r := &raw{t: t, conn: conn, ctx: ctx}
			if err := conn.Write(ctx, websocket.MessageText, []byte(`{"id":1,"connect":{"token":"`+tok+`"}}`)); err != nil {
				results <- result{code: -1}
				return
			}
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			defer rcancel()
			_, _, err = conn.Read(rctx)
			var ce websocket.CloseError
			switch {
			case err == nil:
				results <- result{r: r}
			case errors.As(err, &ce):
				results <- result{code: ce.Code}
			default:
				results <- result{code: -1}
			}
		}()
	}
	var admitted []*raw
	refused := 0
	for range flood {
		res := <-results
		switch {
		case res.r != nil:
			admitted = append(admitted, res.r)
		case res.code == 3504:
			refused++
		default:
			t.Fatalf("a connection ended with %d, want admission or 3504", res.code)
		}
	}
	if len(admitted) != limit || refused != flood-limit {
		t.Fatalf("%d admitted, %d refused with 3504; want %d and %d", len(admitted), refused, limit, flood-limit)
	}
	for _, r := range admitted {
		r.conn.CloseNow()
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.g.numConns.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still counted after they closed", e.g.numConns.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.dial(t).connect(tok) // capacity is back
}
