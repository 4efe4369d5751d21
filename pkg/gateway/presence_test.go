package gateway

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
)

// waitJoin waits for a join of user by a client not in skip (a
// subscriber may first see its own join).
func waitJoin(t *testing.T, s *sdkSub, user string, skip ...string) centrifuge.JoinEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-s.joins:
			if ev.User == user && !slices.Contains(skip, ev.Client) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no join of %s", user)
		}
	}
}

func waitLeave(t *testing.T, s *sdkSub, client string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-s.leaves:
			if ev.Client == client {
				return
			}
		case <-deadline:
			t.Fatalf("no leave of client %s within %v", client, d)
		}
	}
}

func TestSDKPresenceAcrossGateways(t *testing.T) {
	t.Parallel()
	short := func(c *Config) { c.PresenceTTL = 3 * time.Second }
	a := newEnv(t, short)
	b := startGateway(t, a.ns, short)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const ch = "tenant:acme:presence"

	alice := a.connect(a.token(acme("alice")))
	sa := a.subscribe(alice, ch)

	bob := a.sdkVia(b.ws, a.token(acme("bob")))
	sb := b.subscribe(bob, ch)
	join := waitJoin(t, sa, "bob") // a join on gateway B reaches a subscriber on gateway A
	bobClient := join.Client
	var info map[string]string
	if err := json.Unmarshal(join.ConnInfo, &info); err != nil || info["name"] != "bob" {
		t.Fatalf("join conn_info %s", join.ConnInfo)
	}

	// A second tab of bob, on gateway A: one more client, the same user.
	bobTab := a.connect(a.token(acme("bob")))
	a.subscribe(bobTab, ch)
	waitJoin(t, sb, "bob", bobClient)

	p, err := alice.Presence(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]int{}
	for id, ci := range p.Clients {
		if id != ci.Client || len(ci.ConnInfo) == 0 {
			t.Fatalf("presence entry %s: %+v", id, ci)
		}
		users[ci.User]++
	}
	if len(p.Clients) != 3 || users["alice"] != 1 || users["bob"] != 2 {
		t.Fatalf("presence %+v", p.Clients)
	}
	st, err := bob.PresenceStats(ctx, ch)
	if err != nil || st.NumClients != 3 || st.NumUsers != 2 {
		t.Fatalf("presence_stats on the other gateway: %+v %v", st, err)
	}

	// An explicit unsubscribe is a leave everywhere.
	if err := sb.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	waitLeave(t, sa, bobClient, 5*time.Second)

	// A gateway that dies without cleaning up: its members vanish within
	// the TTL and the others see them leave.
	c := startGateway(t, a.ns, short)
	carol := c.sdkVia(c.ws, c.token(acme("carol")))
	c.subscribe(carol, ch)
	carolJoin := waitJoin(t, sa, "carol")
	c.nc.Close() // the process is gone: no leave is ever written
	c.stop()
	start := time.Now()
	waitLeave(t, sa, carolJoin.Client, 3*time.Second+10*time.Second)
	t.Logf("dead gateway's member left after %v (TTL 3s)", time.Since(start).Round(100*time.Millisecond))
	st, err = alice.PresenceStats(ctx, ch)
	if err != nil || st.NumClients != 2 || st.NumUsers != 2 {
		t.Fatalf("after the dead gateway expired: %+v %v", st, err)
	}
}

func TestSDKPresencePermissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bob := e.connect(e.token(globex("bob")))
	var pe *centrifuge.Error
	if _, err := bob.Presence(ctx, "tenant:acme:presence"); !asError(err, &pe) || pe.Code != 103 {
		t.Fatalf("other tenant's presence: %v, want 103", err)
	}
	if _, err := bob.PresenceStats(ctx, "tenant:acme:presence"); !asError(err, &pe) || pe.Code != 103 {
		t.Fatalf("other tenant's presence_stats: %v, want 103", err)
	}
	if _, err := bob.Presence(ctx, "tenant:globex:deployments"); !asError(err, &pe) || pe.Code != 108 {
		t.Fatalf("presence on a channel without it: %v, want 108", err)
	}
	st, err := bob.PresenceStats(ctx, "tenant:globex:presence")
	if err != nil || st.NumClients != 0 {
		t.Fatalf("empty presence: %+v %v", st, err)
	}

	status, body := e.apiPost("presence_stats", `{"channel":"tenant:globex:presence"}`)
	if status != 200 || body["result"] == nil {
		t.Fatalf("api presence_stats: %d %v", status, body)
	}
	status, _ = e.apiPost("presence", `{"channel":"tenant:globex:deployments"}`)
	if status != 400 {
		t.Fatalf("api presence on a channel without it: %d", status)
	}
}
