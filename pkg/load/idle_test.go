package load_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pulseplatform/pulse/pkg/gateway"
	"github.com/pulseplatform/pulse/pkg/load"
)

const testSecret = "pulse-load-test-secret-0123456789abcdef"

// startGateway runs a real gateway (embedded NATS on a random port) in this
// process until the test ends, and returns its address.
func startGateway(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cfg := gateway.Defaults()
	cfg.Addr = addr
	cfg.NATSListen = "127.0.0.1:-1"
	cfg.DataDir = t.TempDir()
	cfg.JWTHMACSecret = testSecret
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.ShutdownTimeout = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.Run(ctx, cfg, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case err := <-done:
			t.Fatalf("gateway stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway at %s not ready: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestIdleAgainstRealGateway(t *testing.T) {
	addr := startGateway(t)
	cfg := load.Defaults()
	cfg.URL = "ws://" + addr + "/connection/websocket"
	cfg.Conns = 50
	cfg.Channels = 7
	cfg.RampRate = 500
	cfg.Settle = 200 * time.Millisecond
	cfg.Timeout = time.Minute
	cfg.HMACSecret = []byte(testSecret)
	cfg.ServerPID = os.Getpid() // the gateway runs in this process

	r, err := load.Idle(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Conns != 50 || r.ConnectErrors != 0 || r.Dropped != 0 || r.OpenAtMeasure != 50 {
		t.Fatalf("conns %d, errors %d (%v), dropped %d, open %d; want 50, 0, 0, 50", r.Conns, r.ConnectErrors, r.Errors, r.Dropped, r.OpenAtMeasure)
	}
	if r.ServerConnections != 50 {
		t.Errorf("pulse_connections = %v, want 50", r.ServerConnections)
	}
	for name, v := range map[string]float64{
		"ramp_s": r.RampSeconds, "handshake_p50_ms": r.HandshakeP50Ms,
		"rss_before": float64(r.RSSBefore), "rss_after": float64(r.RSSAfter),
		"heap_inuse_after": r.HeapInuseAfter, "goroutines_per_conn": r.GoroutinesPerConn,
		"heap_inuse_per_conn_kib": r.HeapPerConnKiB, "cpu_after": r.CPUAfter,
	} {
		if v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	var out strings.Builder
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"conns":50`) {
		t.Errorf("report has no JSON line:\n%s", out.String())
	}
	t.Log("\n" + out.String())
}

func TestIdleReportsConnectErrors(t *testing.T) {
	addr := startGateway(t)
	cfg := load.Defaults()
	cfg.URL = "ws://" + addr + "/connection/websocket"
	cfg.Conns = 5
	cfg.Settle = 0
	cfg.Timeout = 30 * time.Second
	cfg.HMACSecret = []byte(strings.Repeat("w", 32)) // not the gateway's secret
	cfg.ServerPID = os.Getpid()

	r, err := load.Idle(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Conns != 0 || r.ConnectErrors != 5 {
		t.Fatalf("conns %d, errors %d, want 0, 5", r.Conns, r.ConnectErrors)
	}
	if got := r.Errors["connect: closed by server: 3500 invalid token"]; got != 5 {
		t.Errorf("errors = %v, want 5 × 3500 invalid token", r.Errors)
	}
}

func TestIdleRefusesRemoteTarget(t *testing.T) {
	t.Parallel()
	cfg := load.Defaults()
	cfg.URL = "ws://203.0.113.9:8080/connection/websocket"
	cfg.HMACSecret = []byte(testSecret)
	_, err := load.Idle(context.Background(), cfg)
	if !errors.Is(err, load.ErrNotLoopback) || !strings.Contains(err.Error(), "-url") {
		t.Fatalf("Idle(remote) = %v, want -url: ErrNotLoopback", err)
	}
}

func ExampleCheckLoopback() {
	fmt.Println(load.CheckLoopback("ws://127.0.0.1:8080/connection/websocket") == nil)
	fmt.Println(load.CheckLoopback("ws://10.1.2.3:8080/connection/websocket") == nil)
	// Output:
	// true
	// false
}

// An idle run shared among processes: this process holds the first share,
// helpers (here in process, through the same Spawn hook the command uses to
// start processes) the rest, and the report counts them all.
func TestBenchIdleSharesConnectionsWithHelpers(t *testing.T) {
	addr := startGateway(t)
	cfg := load.BenchDefaults()
	cfg.URL = "ws://" + addr + "/connection/websocket"
	cfg.APIURL = "http://" + addr + "/api/publish"
	cfg.Conns, cfg.Channels, cfg.Procs = 31, 3, 3
	cfg.RampRate = 600
	cfg.Settle = 200 * time.Millisecond
	cfg.Timeout = time.Minute
	cfg.HMACSecret = []byte(testSecret)
	cfg.ServerPID = os.Getpid()
	var spawned []string
	cfg.Spawn = func(ctx context.Context, first, n int, rampRate float64) (*load.Helper, error) {
		spawned = append(spawned, fmt.Sprintf("%d+%d@%g", first, n, rampRate))
		hcfg := cfg
		hcfg.Conns, hcfg.First, hcfg.Procs, hcfg.RampRate, hcfg.Spawn = n, first, 1, rampRate, nil
		type result struct {
			ok, failed int
			stop       func()
			err        error
		}
		res := make(chan result, 1)
		go func() {
			ok, failed, stop, err := load.HoldIdle(ctx, hcfg)
			res <- result{ok, failed, stop, err}
		}()
		var r *result
		get := func() *result {
			if r == nil {
				v := <-res
				r = &v
			}
			return r
		}
		return &load.Helper{
			Ready: func() (int, int, error) { g := get(); return g.ok, g.failed, g.err },
			Stop: func() {
				if g := get(); g.stop != nil {
					g.stop()
				}
			},
		}, nil
	}
	rep, err := load.BenchIdle(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[11+10@200 21+10@200]"; fmt.Sprint(spawned) != want {
		t.Errorf("helpers %v, want %s (this process holds 0-10)", spawned, want)
	}
	if rep.Target != 31 || rep.Conns != 31 || rep.ConnectErrors != 0 {
		t.Fatalf("target %d, conns %d, errors %d (%v); want 31, 31, 0", rep.Target, rep.Conns, rep.ConnectErrors, rep.Errors)
	}
	if rep.RSSPerConnKiB <= 0 {
		t.Errorf("RSS per connection %v, want > 0", rep.RSSPerConnKiB)
	}
}
