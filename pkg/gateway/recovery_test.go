package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulseplatform/pulse/pkg/hub"
	"github.com/pulseplatform/pulse/streams"
)

// sdkVia creates a connected SDK client on an explicit URL.
func (e *env) sdkVia(wsURL, token string) *sdkClient {
	e.t.Helper()
	saved := e.ws
	e.ws = wsURL
	defer func() { e.ws = saved }()
	return e.connect(token)
}

// waitSubscribed returns the next subscribed event. centrifuge-go v0.12.1
// fails the requests of a connection it tears down from goroutines that can
// run after the next connection began; such a late "client disconnected"
// lands on the new subscribe attempt, which the SDK retries by itself. It is
// not the server's answer, so it is skipped; any other error fails.
func waitSubscribed(t *testing.T, s *sdkSub, d time.Duration) centrifuge.SubscribedEvent {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-s.subscribed:
			return ev
		case err := <-s.errs:
			if errors.Is(err, centrifuge.ErrClientDisconnected) {
				t.Logf("skipped a stale SDK error: %v", err)
				continue
			}
			t.Fatalf("subscription error: %v", err)
		case <-deadline:
			t.Fatalf("not subscribed within %v", d)
		}
	}
}

// publishMany publishes n events like a worker and returns their offsets.
func (e *env) publishMany(subject string, n int, tag string) []uint64 {
	e.t.Helper()
	out := make([]uint64, n)
	for i := range out {
		out[i] = e.publishNATS(subject, fmt.Sprintf(`{"tag":%q,"i":%d}`, tag, i))
	}
	return out
}

// expectOffsets receives exactly want, in order, then nothing more.
func expectOffsets(t *testing.T, s *sdkSub, want []uint64) {
	t.Helper()
	for i, off := range want {
		p := waitPub(t, s, 10*time.Second)
		if p.Offset != off {
			t.Fatalf("publication %d: offset %d, want %d", i, p.Offset, off)
		}
	}
	noPub(t, s, 200*time.Millisecond)
}

func TestSDKRecoversEventsMissedWhileDisconnected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(e.token(acme("alice")))
	s := e.newSub(c, "tenant:acme:deployments", centrifuge.SubscriptionConfig{})
	_ = s.Subscribe()
	first := waitSubscribed(t, s, 5*time.Second)
	if !first.Recoverable || !first.Positioned || first.StreamPosition == nil || first.StreamPosition.Epoch == "" {
		t.Fatalf("subscription not recoverable by default: %+v", first)
	}
	expectOffsets(t, s, e.publishMany("tenants.acme.deployments", 5, "before"))

	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	e.publishMany("tenants.globex.deployments", 7, "other tenant")
	missed := e.publishMany("tenants.acme.deployments", 50, "missed")
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	ev := waitSubscribed(t, s, 5*time.Second)
	if !ev.WasRecovering || !ev.Recovered {
		t.Fatalf("after reconnect: %+v, want recovered", ev)
	}
	expectOffsets(t, s, missed)
	live := e.publishMany("tenants.acme.deployments", 3, "live")
	expectOffsets(t, s, live)
}

func TestSDKRecoversAcrossGatewayRestartAndReplicas(t *testing.T) {
	t.Parallel()
	a := newEnv(t, nil)
	p := newProxy(t, a)
	c := a.sdkVia(p.url(), a.token(acme("alice")))
	s := a.newSub(c, "tenant:acme:billing", centrifuge.SubscriptionConfig{})
	_ = s.Subscribe()
	waitSubscribed(t, s, 5*time.Second)
	expectOffsets(t, s, a.publishMany("tenants.acme.billing", 3, "a"))

	t.Run("gateway process replaced", func(t *testing.T) {
		p.route(nil) // the pod is gone; the load balancer has nowhere to send
		a.stop()
		waitClose(t, c, 3001, 5*time.Second)
		b := startGateway(t, a.ns, nil)
		missed := b.publishMany("tenants.acme.billing", 50, "during restart")
		p.route(b)
		ev := waitSubscribed(t, s, 10*time.Second)
		if !ev.Recovered {
			t.Fatalf("not recovered on the new gateway: %+v", ev)
		}
		expectOffsets(t, s, missed)

		// A second replica on the same JetStream: the client moves to it.
		r := startGateway(t, a.ns, nil)
		p.route(nil)
		p.dropAll()
		missed = r.publishMany("tenants.acme.billing", 20, "moving")
		p.route(r)
		ev = waitSubscribed(t, s, 10*time.Second)
		if !ev.Recovered {
			t.Fatalf("not recovered on the other replica: %+v", ev)
		}
		expectOffsets(t, s, missed)
	})
}

func TestSDKRecoveryIsAllOrNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mod    func(*Config)
		break_ func(e *env)
	}{
		{"more missed than the limit", func(c *Config) { c.RecoveryLimit = 10 }, func(e *env) {
			e.publishMany("tenants.acme.alerts", 11, "too many")
		}},
		// No lingering channel: the gateway must go to the stream, which no
		// longer has the client's offset. (A gateway still holding the
		// publications would recover the client from memory.)
		{"history trimmed", func(c *Config) { c.ChannelLinger = 0 }, func(e *env) {
			e.publishMany("tenants.acme.alerts", 3, "trimmed")
			st, err := e.js.Stream(context.Background(), "TENANTS")
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Purge(context.Background(), jetstream.WithPurgeSubject("tenants.acme.alerts"), jetstream.WithPurgeKeep(1)); err != nil {
				t.Fatal(err)
			}
		}},
		{"stream recreated (new epoch)", nil, func(e *env) {
			if err := e.js.DeleteStream(context.Background(), "TENANTS"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // epochs have nanosecond resolution; make sure it differs
			if _, err := streams.Ensure(context.Background(), e.js, 1); err != nil {
				t.Fatal(err)
			}
			e.publishMany("tenants.acme.alerts", 2, "new life")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.mod)
			c := e.connect(e.token(acme("alice")))
			s := e.newSub(c, "tenant:acme:alerts", centrifuge.SubscriptionConfig{})
			_ = s.Subscribe()
			before := waitSubscribed(t, s, 5*time.Second)
			expectOffsets(t, s, e.publishMany("tenants.acme.alerts", 2, "seen"))
			_ = c.Disconnect()
			tc.break_(e)
			top, err := e.g.reader.Top(context.Background(), mustParse(t, "tenant:acme:alerts"))
			if err != nil {
				t.Fatal(err)
			}
			_ = c.Connect()
			ev := waitSubscribed(t, s, 5*time.Second)
			if !ev.WasRecovering || ev.Recovered {
				t.Fatalf("%+v: want was_recovering and not recovered", ev)
			}
			if ev.StreamPosition == nil || ev.StreamPosition.Offset != top {
				t.Fatalf("position %+v, want the current top %d", ev.StreamPosition, top)
			}
			if tc.name == "stream recreated (new epoch)" && ev.StreamPosition.Epoch == before.StreamPosition.Epoch {
				t.Fatal("epoch did not change with the stream")
			}
			noPub(t, s, 300*time.Millisecond)
			// Live continues from the new position.
			expectOffsets(t, s, e.publishMany("tenants.acme.alerts", 1, "after"))
		})
	}
}

func TestRawRejectUnrecoveredFlagGets112(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.publishMany("tenants.acme.deployments", 2, "x")
	r := e.dial(t)
	r.connect(e.token(acme("alice")))
	r.send(`{"id":2,"subscribe":{"channel":"tenant:acme:deployments","recover":true,"offset":1,"epoch":"not-this-one","flag":3}}`)
	if rep := r.reply(2); rep.Error == nil || rep.Error.Code != 112 {
		t.Fatalf("reply %+v, want error 112", rep)
	}
	// Without the flag the same position answers recovered:false.
	r.send(`{"id":3,"subscribe":{"channel":"tenant:acme:deployments","recover":true,"offset":1,"epoch":"not-this-one","flag":1}}`)
	rep := r.reply(3)
	if rep.Subscribe == nil || rep.Subscribe.Recovered || !rep.Subscribe.WasRecovering || len(rep.Subscribe.Publications) != 0 || rep.Subscribe.Offset == 0 {
		t.Fatalf("reply %+v", rep.Subscribe)
	}
}

// TestSDKRecoveryRacingLivePublishes reconnects while a worker keeps
// publishing: every event arrives once, in order, whether it came from the
// replay or the live path.
func TestSDKRecoveryRacingLivePublishes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(e.token(acme("alice")))
	s := e.newSub(c, "tenant:acme:metrics", centrifuge.SubscriptionConfig{})
	_ = s.Subscribe()
	waitSubscribed(t, s, 5*time.Second)
	for round := 0; round < 15; round++ {
		_ = c.Disconnect()
		want := e.publishMany("tenants.acme.metrics", 20, "offline")
		var mu sync.Mutex
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				off := e.publishNATS("tenants.acme.metrics", fmt.Sprintf(`{"round":%d,"live":%d}`, round, i))
				mu.Lock()
				want = append(want, off)
				mu.Unlock()
			}
		}()
		_ = c.Connect()
		if ev := waitSubscribed(t, s, 5*time.Second); !ev.Recovered {
			t.Fatalf("round %d: not recovered: %+v", round, ev)
		}
		wg.Wait()
		mu.Lock()
		got := make([]uint64, 0, len(want))
		for len(got) < len(want) {
			got = append(got, waitPub(t, s, 10*time.Second).Offset)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("round %d: event %d has offset %d, want %d (got %v, want %v)", round, i, got[i], want[i], got, want)
			}
		}
		mu.Unlock()
		noPub(t, s, 50*time.Millisecond)
	}
}

// withoutRePublish stores messages while the live copies are lost, as when
// the stream's leader changes: the stream has them, the gateway never saw
// them live.
func (e *env) withoutRePublish(stream string, fn func()) {
	e.t.Helper()
	ctx := context.Background()
	st, err := e.js.Stream(ctx, stream)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	saved := cfg.RePublish
	cfg.RePublish = nil
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		e.t.Fatal(err)
	}
	fn()
	cfg.RePublish = saved
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		e.t.Fatal(err)
	}
}

func TestSDKLiveGapsAreBackfilled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.connect(e.token(acme("alice")))
	s := e.newSub(c, "tenant:acme:deployments", centrifuge.SubscriptionConfig{})
	_ = s.Subscribe()
	waitSubscribed(t, s, 5*time.Second)
	expectOffsets(t, s, e.publishMany("tenants.acme.deployments", 1, "seen"))

	t.Run("next live message reveals the gap", func(t *testing.T) {
		var lost []uint64
		e.withoutRePublish("TENANTS", func() { lost = e.publishMany("tenants.acme.deployments", 3, "lost") })
		next := e.publishMany("tenants.acme.deployments", 1, "next")
		expectOffsets(t, s, append(lost, next...))
	})
	t.Run("idle channel is reconciled", func(t *testing.T) {
		var lost []uint64
		e.withoutRePublish("TENANTS", func() { lost = e.publishMany("tenants.acme.deployments", 2, "lost while idle") })
		e.g.NATSReconnected() // as after a NATS reconnect
		expectOffsets(t, s, lost)
	})
	t.Run("unrecoverable gap makes the SDK resubscribe", func(t *testing.T) {
		e.withoutRePublish("TENANTS", func() {
			e.publishMany("tenants.acme.deployments", 3, "lost and trimmed")
			st, _ := e.js.Stream(context.Background(), "TENANTS")
			if err := st.Purge(context.Background(), jetstream.WithPurgeSubject("tenants.acme.deployments"), jetstream.WithPurgeKeep(1)); err != nil {
				t.Fatal(err)
			}
		})
		e.publishMany("tenants.acme.deployments", 1, "reveals")
		select {
		case ev := <-s.unsubscribed:
			t.Fatalf("subscription ended for good: %+v", ev)
		case ev := <-s.subscribed:
			if !ev.WasRecovering || ev.Recovered {
				t.Fatalf("resubscribed with %+v, want a failed recovery so the app reloads", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no resubscription after an unrecoverable gap")
		}
		expectOffsets(t, s, e.publishMany("tenants.acme.deployments", 2, "after"))
	})
}

func TestSDKHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	offs := e.publishMany("tenants.acme.billing", 10, "inv")
	e.publishMany("tenants.globex.billing", 3, "globex")
	c := e.connect(e.token(acme("alice")))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	h, err := c.History(ctx, "tenant:acme:billing", centrifuge.WithHistoryLimit(4))
	if err != nil {
		t.Fatal(err)
	}
	if h.Offset != offs[9] || h.Epoch == "" || len(h.Publications) != 4 || h.Publications[0].Offset != offs[0] || h.Publications[3].Offset != offs[3] {
		t.Fatalf("oldest 4: top %d epoch %q pubs %v", h.Offset, h.Epoch, pubOffsets(h.Publications))
	}
	h, err = c.History(ctx, "tenant:acme:billing", centrifuge.WithHistoryLimit(3), centrifuge.WithHistoryReverse(true))
	if err != nil || len(h.Publications) != 3 || h.Publications[0].Offset != offs[9] || h.Publications[2].Offset != offs[7] {
		t.Fatalf("newest 3: %v %v", pubOffsets(h.Publications), err)
	}
	h, err = c.History(ctx, "tenant:acme:billing", centrifuge.WithHistoryLimit(100),
		centrifuge.WithHistorySince(&centrifuge.StreamPosition{Offset: offs[6], Epoch: h.Epoch}))
	if err != nil || len(h.Publications) != 3 || h.Publications[0].Offset != offs[7] {
		t.Fatalf("since offs[6]: %v %v", pubOffsets(h.Publications), err)
	}
	h, err = c.History(ctx, "tenant:acme:billing", centrifuge.WithHistoryLimit(2), centrifuge.WithHistoryReverse(true),
		centrifuge.WithHistorySince(&centrifuge.StreamPosition{Offset: offs[5], Epoch: h.Epoch}))
	if err != nil || len(h.Publications) != 2 || h.Publications[0].Offset != offs[4] || h.Publications[1].Offset != offs[3] {
		t.Fatalf("reverse before offs[5]: %v %v", pubOffsets(h.Publications), err)
	}
	h, err = c.History(ctx, "tenant:acme:billing")
	if err != nil || len(h.Publications) != 0 || h.Offset != offs[9] {
		t.Fatalf("limit 0: %v top %d %v", pubOffsets(h.Publications), h.Offset, err)
	}
	var pe *centrifuge.Error
	if _, err := c.History(ctx, "tenant:acme:billing", centrifuge.WithHistoryLimit(1),
		centrifuge.WithHistorySince(&centrifuge.StreamPosition{Offset: 1, Epoch: "wrong"})); !asError(err, &pe) || pe.Code != 112 {
		t.Fatalf("wrong epoch: %v, want 112", err)
	}
	if _, err := c.History(ctx, "tenant:globex:billing", centrifuge.WithHistoryLimit(10)); !asError(err, &pe) || pe.Code != 103 {
		t.Fatalf("other tenant's history: %v, want 103", err)
	}

	status, body := e.apiPost("history", `{"channel":"tenant:globex:billing","limit":-1}`)
	res, _ := body["result"].(map[string]any)
	if status != 200 || res == nil || len(res["publications"].([]any)) != 3 {
		t.Fatalf("api history: %d %v", status, body)
	}
}

func pubOffsets(ps []centrifuge.Publication) []uint64 {
	out := make([]uint64, len(ps))
	for i, p := range ps {
		out[i] = p.Offset
	}
	return out
}

func TestHistorySearchEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.publishMany("tenants.acme.deployments", 5, "early")
	time.Sleep(20 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	for i := 0; i < 30; i++ {
		status := "running"
		if i%3 == 0 {
			status = "Failed: disk full"
		}
		e.publishNATS("tenants.acme.deployments", fmt.Sprintf(`{"n":%d,"status":%q}`, i, status))
	}
	e.publishNATS("tenants.globex.deployments", `{"status":"failed: globex secret"}`)
	tok := e.token(acme("alice"))

	get := func(token, query string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/history/search?"+query, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = decodeJSON(resp.Body, &out)
		return resp.StatusCode, out
	}
	q := url.Values{"channel": {"tenant:acme:deployments"}, "q": {"failed"}, "limit": {"4"}}
	var seen []float64
	before := ""
	for page := 0; page < 5; page++ {
		if before != "" {
			q.Set("before", before)
		}
		status, body := get(tok, q.Encode())
		if status != 200 {
			t.Fatalf("search: %d %v", status, body)
		}
		res := body["result"].(map[string]any)
		for _, p := range res["publications"].([]any) {
			item := p.(map[string]any)
			if !strings.Contains(strings.ToLower(fmt.Sprint(item["data"])), "failed") || item["time"] == "" {
				t.Fatalf("non-matching item %v", item)
			}
			seen = append(seen, item["offset"].(float64))
		}
		next := res["next_before"].(float64)
		if next == 0 {
			break
		}
		before = fmt.Sprint(uint64(next))
	}
	if len(seen) != 10 {
		t.Fatalf("found %d matches across pages, want 10: %v", len(seen), seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Fatalf("not newest first without repeats: %v", seen)
		}
	}

	// Time window: only the early burst.
	status, body := get(tok, url.Values{"channel": {"tenant:acme:deployments"}, "until": {mid.Format(time.RFC3339Nano)}, "limit": {"100"}}.Encode())
	if n := len(body["result"].(map[string]any)["publications"].([]any)); status != 200 || n != 5 {
		t.Fatalf("until mid: %d, %d items", status, n)
	}
	status, body = get(tok, url.Values{"channel": {"tenant:acme:deployments"}, "since": {mid.Format(time.RFC3339Nano)}, "limit": {"100"}}.Encode())
	if n := len(body["result"].(map[string]any)["publications"].([]any)); status != 200 || n != 30 {
		t.Fatalf("since mid: %d, %d items", status, n)
	}

	for _, tc := range []struct {
		token, query string
		status       int
	}{
		{"", "channel=tenant:acme:deployments", 401},
		{"garbage", "channel=tenant:acme:deployments", 401},
		{tok, "channel=tenant:globex:deployments&q=failed", 403},
		{tok, "channel=tenant:acme", 400},
		{tok, "channel=tenant:acme:deployments&since=yesterday", 400},
		{tok, "channel=tenant:acme:deployments&limit=-3", 400},
	} {
		if status, body := get(tc.token, tc.query); status != tc.status || body["error"] == nil {
			t.Errorf("%q: %d %v, want %d with an error", tc.query, status, body, tc.status)
		}
	}

	status, apiBody := e.apiPost("history", `{"channel":"tenant:acme:deployments","search":{"q":"disk full","limit":3}}`)
	res := apiBody["result"].(map[string]any)
	if status != 200 || len(res["publications"].([]any)) != 3 || res["next_before"].(float64) == 0 {
		t.Fatalf("api search: %d %v", status, apiBody)
	}
}

// Clients of a gateway that all drop at once and come back (a network blip)
// recover from the publications the gateway still holds: everything they
// missed, in order, without one stream read.
func TestSDKRecoveryFromMemoryAfterADrop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const n = 8
	type pair struct {
		c *sdkClient
		s *sdkSub
	}
	var clients []pair
	for i := range n {
		c := e.connect(e.token(acme(fmt.Sprintf("u%d", i))))
		s := e.newSub(c, "tenant:acme:alerts", centrifuge.SubscriptionConfig{})
		_ = s.Subscribe()
		waitSubscribed(t, s, 5*time.Second)
		clients = append(clients, pair{c, s})
	}
	seen := e.publishMany("tenants.acme.alerts", 3, "seen")
	for _, p := range clients {
		expectOffsets(t, p.s, seen)
		_ = p.c.Disconnect()
	}
	missed := e.publishMany("tenants.acme.alerts", 5, "missed")
	// The gateway delivers them to nobody, but keeps following the channel.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var top uint64
		_ = e.g.hub.Subscribe(context.Background(), mustParse(t, "tenant:acme:alerts"), nopSubscriber{}, func(last uint64, _ hub.Window) { top = last })
		e.g.hub.Unsubscribe("tenant:acme:alerts", nopSubscriber{})
		if top == missed[len(missed)-1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lingering channel is at %d, want %d", top, missed[len(missed)-1])
		}
		time.Sleep(20 * time.Millisecond)
	}
	readsBefore := testutil.ToFloat64(e.g.metrics.HistoryReads.WithLabelValues("recover"))
	fromMemoryBefore := testutil.ToFloat64(e.g.metrics.RecoveriesFromMemory)
	for _, p := range clients {
		_ = p.c.Connect()
	}
	for i, p := range clients {
		ev := waitSubscribed(t, p.s, 10*time.Second)
		if !ev.WasRecovering || !ev.Recovered {
			t.Fatalf("client %d: %+v, want recovered", i, ev)
		}
		expectOffsets(t, p.s, missed)
	}
	if got := testutil.ToFloat64(e.g.metrics.HistoryReads.WithLabelValues("recover")) - readsBefore; got != 0 {
		t.Fatalf("%v recovery reads from the stream, want none", got)
	}
	if got := testutil.ToFloat64(e.g.metrics.RecoveriesFromMemory) - fromMemoryBefore; got != n {
		t.Fatalf("%v recoveries from memory, want %d", got, n)
	}
}

// nopSubscriber is a hub subscriber that ignores everything.
type nopSubscriber struct{}

func (nopSubscriber) Deliver(uint64, []byte, bool) {}
func (nopSubscriber) Push([]byte)                  {}
func (nopSubscriber) InsufficientState()           {}
