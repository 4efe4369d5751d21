package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulseplatform/pulse/pkg/auth"
	"github.com/pulseplatform/pulse/pkg/protocol"
)

// raw is a bare WebSocket client for protocol details the SDKs hide.
type raw struct {
	t    *testing.T
	conn *websocket.Conn
	ctx  context.Context
	held []protocol.Reply // read in a frame, not yet taken by reply or push
}

func (e *env) dial(t *testing.T, subprotocols ...string) *raw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, e.ws, &websocket.DialOptions{Subprotocols: subprotocols})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return &raw{t: t, conn: conn, ctx: ctx}
}

func (r *raw) send(lines ...string) {
	r.t.Helper()
	if err := r.conn.Write(r.ctx, websocket.MessageText, []byte(strings.Join(lines, "\n"))); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// next returns the replies of one frame: those left over from the last
// frame read, or the next frame's.
func (r *raw) next() []protocol.Reply {
	r.t.Helper()
	if held := r.held; len(held) > 0 {
		r.held = nil
		return held
	}
	// Generous: CI runs every test package at once under the race detector.
	ctx, cancel := context.WithTimeout(r.ctx, 15*time.Second)
	defer cancel()
	_, data, err := r.conn.Read(ctx)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	var out []protocol.Reply
	for _, line := range strings.Split(string(data), "\n") {
		var rep protocol.Reply
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			r.t.Fatalf("bad reply line %q: %v", line, err)
		}
		out = append(out, rep)
	}
	return out
}

// one returns the next reply, reading a frame when none is left over.
// Publications may share a frame, so replies after the one taken stay.
func (r *raw) one() protocol.Reply {
	r.t.Helper()
	reps := r.next()
	r.held = reps[1:]
	return reps[0]
}

// reply waits for the reply to id, skipping pings and pushes.
func (r *raw) reply(id uint32) protocol.Reply {
	r.t.Helper()
	for {
		if rep := r.one(); rep.ID == id {
			return rep
		}
	}
}

// push waits for the next push.
func (r *raw) push() *protocol.Push {
	r.t.Helper()
	for {
		if rep := r.one(); rep.Push != nil {
			return rep.Push
		}
	}
}

// closed waits for the server to close the connection and returns the code.
func (r *raw) closed(within time.Duration) websocket.StatusCode {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, within)
	defer cancel()
	for {
		_, _, err := r.conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			r.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func (r *raw) connect(token string) *protocol.ConnectResult {
	r.t.Helper()
	r.send(`{"id":1,"connect":{"token":"` + token + `","name":"raw"}}`)
	rep := r.reply(1)
	if rep.Error != nil || rep.Connect == nil {
		r.t.Fatalf("connect: %+v", rep.Error)
	}
	return rep.Connect
}

func TestRawBatchedFramesWithAndWithoutSubprotocol(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := e.token(acme("alice"))
	for _, sp := range [][]string{nil, {"centrifuge-json"}} {
		r := e.dial(t, sp...)
		if got := r.conn.Subprotocol(); len(sp) > 0 && got != "centrifuge-json" {
			t.Fatalf("subprotocol %q", got)
		}
		r.send(`{"id":1,"connect":{"token":"`+tok+`"}}`, `{"id":2,"subscribe":{"channel":"tenant:acme:deployments","flag":1}}`)
		got := map[uint32]protocol.Reply{}
		for len(got) < 2 {
			for _, rep := range r.next() {
				got[rep.ID] = rep
			}
		}
		c := got[1].Connect
		if c == nil || c.Client == "" || c.Ping != 25 || !c.Pong || !c.Expires || c.TTL == 0 {
			t.Fatalf("connect result %+v", c)
		}
		if got[2].Subscribe == nil || got[2].Error != nil {
			t.Fatalf("subscribe reply %+v", got[2])
		}
	}
}

func TestRawProtocolViolationsDisconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := e.token(acme("alice"))
	cases := []struct {
		name  string
		steps func(r *raw)
		code  websocket.StatusCode
	}{
		{"command before connect", func(r *raw) { r.send(`{"id":1,"subscribe":{"channel":"system:health"}}`) }, 3501},
		{"connect without token", func(r *raw) { r.send(`{"id":1,"connect":{}}`) }, 3501},
		{"second connect", func(r *raw) { r.connect(tok); r.send(`{"id":2,"connect":{"token":"` + tok + `"}}`) }, 3501},
		{"ping with id", func(r *raw) { r.connect(tok); r.send(`{"id":2,"ping":{}}`) }, 3501},
		{"pong without ping", func(r *raw) { r.connect(tok); r.send(`{}`) }, 3501},
		{"send without handler", func(r *raw) { r.connect(tok); r.send(`{"send":{"data":{}}}`) }, 3508},
		{"not json", func(r *raw) { r.send(`hello`) }, 3501},
		{"binary frame", func(r *raw) { _ = r.conn.Write(r.ctx, websocket.MessageBinary, []byte{1, 2}) }, 3506},
		{"invalid token", func(r *raw) { r.send(`{"id":1,"connect":{"token":"x.y.z"}}`) }, 3500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.dial(t)
			tc.steps(r)
			if code := r.closed(5 * time.Second); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}
}

func TestRawErrorsKeepConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.dial(t)
	r.connect(e.token(acme("alice")))
	for _, tc := range []struct {
		cmd  string
		code uint32
	}{
		{`{"id":2,"rpc":{"method":"x","data":{}}}`, 104},
		{`{"id":3,"history":{"channel":"tenant:acme:deployments"}}`, 0},
		{`{"id":4,"history":{"channel":"tenant:globex:deployments"}}`, 103},
		{`{"id":5,"presence":{"channel":"tenant:acme:deployments"}}`, 108},
		{`{"id":6,"presence_stats":{"channel":"nope"}}`, 102},
		{`{"id":7,"subscribe":{"channel":"system:health"}}`, 0},
		{`{"id":8,"subscribe":{"channel":"system:health"}}`, 105},
		{`{"id":9,"publish":{"channel":"tenant:acme:x","data":{}}}`, 103},
		{`{"id":10,"sub_refresh":{"channel":"tenant:acme:x","token":"t"}}`, 107},
	} {
		var id uint32
		_ = json.Unmarshal([]byte(tc.cmd[strings.Index(tc.cmd, ":")+1:strings.Index(tc.cmd, ",")]), &id)
		r.send(tc.cmd)
		rep := r.reply(id)
		var got uint32
		if rep.Error != nil {
			got = rep.Error.Code
			if rep.Error.Message == "" {
				t.Errorf("%s: error without message", tc.cmd)
			}
		}
		if got != tc.code {
			t.Errorf("%s: code %d, want %d (%+v)", tc.cmd, got, tc.code, rep.Error)
		}
	}
	r.send(`{"id":20,"unsubscribe":{"channel":"system:health"}}`)
	if rep := r.reply(20); rep.Unsubscribe == nil {
		t.Fatalf("unsubscribe reply %+v", rep)
	}
}

func TestRawPingPong(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.PingInterval = time.Second; c.PongTimeout = 400 * time.Millisecond })
	tok := e.token(acme("alice"))

	alive := e.dial(t)
	if res := alive.connect(tok); res.Ping != 1 || !res.Pong {
		t.Fatalf("connect advertises ping %d pong %v", res.Ping, res.Pong)
	}
	for i := 0; i < 3; i++ {
		reps := alive.next()
		if len(reps) != 1 || reps[0] != (protocol.Reply{}) {
			t.Fatalf("want an empty ping, got %+v", reps)
		}
		alive.send(`{}`)
	}

	silent := e.dial(t)
	silent.connect(tok)
	if code := silent.closed(5 * time.Second); code != 3012 {
		t.Fatalf("no pong: close %d, want 3012", code)
	}
}

func TestRawStaleConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.StaleTimeout = 300 * time.Millisecond })
	r := e.dial(t)
	if code := r.closed(5 * time.Second); code != 3502 {
		t.Fatalf("close %d, want 3502", code)
	}
}

func TestRawExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.ExpiryGrace = 300 * time.Millisecond })

	t.Run("connection not refreshed closes with 3005", func(t *testing.T) {
		spec := acme("alice")
		spec.TTL = time.Second
		r := e.dial(t)
		r.connect(e.token(spec))
		if code := r.closed(5 * time.Second); code != 3005 {
			t.Fatalf("close %d, want 3005", code)
		}
	})
	t.Run("refresh for another user is an invalid token", func(t *testing.T) {
		r := e.dial(t)
		r.connect(e.token(acme("alice")))
		r.send(`{"id":2,"refresh":{"token":"` + e.token(acme("mallory")) + `"}}`)
		if code := r.closed(5 * time.Second); code != 3500 {
			t.Fatalf("close %d, want 3500", code)
		}
	})
	t.Run("refresh with an expired token closes with 3005", func(t *testing.T) {
		r := e.dial(t)
		r.connect(e.token(acme("alice")))
		spec := acme("alice")
		spec.TTL = -time.Minute
		r.send(`{"id":2,"refresh":{"token":"` + e.token(spec) + `"}}`)
		if code := r.closed(5 * time.Second); code != 3005 {
			t.Fatalf("close %d, want 3005", code)
		}
	})
	t.Run("subscription token not refreshed gets unsubscribe 2501", func(t *testing.T) {
		r := e.dial(t)
		r.connect(e.token(acme("alice")))
		sub := e.token(auth.TokenSpec{Subject: "alice", Channel: "tenant:globex:shared", TTL: time.Second})
		r.send(`{"id":2,"subscribe":{"channel":"tenant:globex:shared","token":"` + sub + `"}}`)
		if rep := r.reply(2); rep.Subscribe == nil || !rep.Subscribe.Expires || rep.Subscribe.TTL == 0 {
			t.Fatalf("subscribe reply %+v", rep)
		}
		p := r.push()
		if p.Channel != "tenant:globex:shared" || p.Unsubscribe == nil || p.Unsubscribe.Code != 2501 {
			t.Fatalf("push %+v", p)
		}
	})
	t.Run("sub_refresh extends a subscription", func(t *testing.T) {
		r := e.dial(t)
		r.connect(e.token(acme("alice")))
		short := e.token(auth.TokenSpec{Subject: "alice", Channel: "tenant:globex:shared", TTL: time.Second})
		r.send(`{"id":2,"subscribe":{"channel":"tenant:globex:shared","token":"` + short + `"}}`)
		r.reply(2)
		long := e.token(auth.TokenSpec{Subject: "alice", Channel: "tenant:globex:shared", TTL: time.Hour})
		r.send(`{"id":3,"sub_refresh":{"channel":"tenant:globex:shared","token":"` + long + `"}}`)
		if rep := r.reply(3); rep.SubRefresh == nil || rep.SubRefresh.TTL < 3000 {
			t.Fatalf("sub_refresh reply %+v", rep)
		}
		time.Sleep(1500 * time.Millisecond)
		e.publishNATS("tenants.globex.shared", `{"still":"here"}`)
		if p := r.push(); p.Pub == nil {
			t.Fatalf("want the publication, got %+v", p)
		}
	})
}

func TestRawLimits(t *testing.T) {
	t.Parallel()
	t.Run("channels per connection", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Limits.MaxChannelsPerClient = 2 })
		r := e.dial(t)
		r.connect(e.token(acme("alice")))
		r.send(`{"id":2,"subscribe":{"channel":"tenant:acme:a"}}`, `{"id":3,"subscribe":{"channel":"tenant:acme:b"}}`, `{"id":4,"subscribe":{"channel":"tenant:acme:c"}}`)
		if rep := r.reply(4); rep.Error == nil || rep.Error.Code != 106 {
			t.Fatalf("third channel: %+v", rep.Error)
		}
	})
	t.Run("command rate", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Limits.CommandRate = 1 })
		r := e.dial(t)
		r.connect(e.token(acme("alice")))
		r.send(`{"id":2,"subscribe":{"channel":"tenant:acme:a"}}`, `{"id":3,"subscribe":{"channel":"tenant:acme:b"}}`, `{"id":4,"subscribe":{"channel":"tenant:acme:c"}}`)
		if rep := r.reply(4); rep.Error == nil || rep.Error.Code != 111 || !rep.Error.Temporary {
			t.Fatalf("over the rate: %+v", rep.Error)
		}
	})
	t.Run("connections per node", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Limits.MaxConnections = 1 })
		first := e.dial(t)
		first.connect(e.token(acme("alice")))
		second := e.dial(t)
		if code := second.closed(5 * time.Second); code != 3504 {
			t.Fatalf("close %d, want 3504", code)
		}
	})
	t.Run("message size", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Limits.MaxMessageSize = 4096 })
		r := e.dial(t)
		r.connect(e.token(acme("alice")))
		r.send(`{"id":2,"publish":{"channel":"tenant:acme:a","data":"` + strings.Repeat("x", 5000) + `"}}`)
		if code := r.closed(5 * time.Second); code != websocket.StatusMessageTooBig {
			t.Fatalf("close %d, want 1009", code)
		}
	})
}

func TestRawProtobufIsRefusedClearly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.dial(t, "centrifuge-protobuf")
	if code := r.closed(5 * time.Second); code != 3506 {
		t.Fatalf("close %d, want 3506", code)
	}
}

func TestRawLiveOnlyFromStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.dial(t)
	r.connect(e.token(acme("alice")))
	r.send(`{"id":2,"subscribe":{"channel":"tenant:acme:deployments"}}`)
	r.reply(2)
	// A message on live.* that did not come from the stream has no offset
	// and is not stored: it must not reach clients.
	if err := e.nc.Publish("live.tenants.acme.deployments", []byte(`{"forged":true}`)); err != nil {
		t.Fatal(err)
	}
	_ = e.nc.Flush()
	off := e.publishNATS("tenants.acme.deployments", "plain text, not JSON\nsecond line")
	p := r.push()
	if p.Pub == nil || p.Pub.Offset != off {
		t.Fatalf("first push %+v, want the stored publication at %d", p, off)
	}
	var s string
	if err := json.Unmarshal(p.Pub.Data, &s); err != nil || s != "plain text, not JSON\nsecond line" {
		t.Fatalf("non-JSON payload arrived as %s", p.Pub.Data)
	}
}

func TestAPIRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	post := func(path, key, body string) int {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Error *protocol.Error `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusOK && (out.Error == nil || out.Error.Message == "") {
			t.Errorf("%s %s: status %d without an error message", path, body, resp.StatusCode)
		}
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, key, body string
		status          int
	}{
		{"/api/publish", "", `{"channel":"system:health","data":{}}`, 401},
		{"/api/publish", "wrong", `{"channel":"system:health","data":{}}`, 401},
		{"/api/publish", testAPIKey, `{"channel":"system:health"}`, 400},
		{"/api/publish", testAPIKey, `{"channel":"tenant:a.b:c","data":{}}`, 400},
		{"/api/publish", testAPIKey, `{"channel":"system:health","data":{}`, 400},
		{"/api/publish", testAPIKey, `{"channel":"system:health","data":{},"bogus":1}`, 400},
		{"/api/publish", testAPIKey, `{"channel":"system:health","data":"` + strings.Repeat("x", 70000) + `"}`, 413},
		{"/api/broadcast", testAPIKey, `{"channels":[],"data":{}}`, 400},
		{"/api/broadcast", testAPIKey, `{"channels":["system:health","bad"],"data":{}}`, 200},
		{"/api/info", testAPIKey, ``, 200},
		{"/api/publish", testAPIKey, `{"channel":"system:health","data":{"ok":1}}`, 200},
	} {
		if got := post(tc.path, tc.key, tc.body); got != tc.status {
			t.Errorf("%s %.60s: status %d, want %d", tc.path, tc.body, got, tc.status)
		}
	}
}

func TestAPIIdempotencyKeyDeduplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, first := e.apiPost("publish", `{"channel":"tenant:acme:billing","data":{"invoice":1},"idempotency_key":"inv-1"}`)
	_, again := e.apiPost("publish", `{"channel":"tenant:acme:billing","data":{"invoice":1},"idempotency_key":"inv-1"}`)
	if first["result"].(map[string]any)["offset"] != again["result"].(map[string]any)["offset"] {
		t.Fatalf("retry stored twice: %v then %v", first, again)
	}
	info, err := e.js.Stream(context.Background(), "TENANTS")
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	get := func(path string) int {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/healthz") != 200 || get("/readyz") != 200 || get("/metrics") != 200 {
		t.Fatal("health, readiness or metrics not 200")
	}
	if err := e.js.DeleteStream(context.Background(), "SYSTEM"); err != nil {
		t.Fatal(err)
	}
	if got := get("/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a stream missing: %d", got)
	}
	e.nc.Close()
	if got := get("/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("readyz with NATS closed: %d", got)
	}
	if get("/healthz") != 200 {
		t.Fatal("healthz must stay 200: the process is alive")
	}
}
