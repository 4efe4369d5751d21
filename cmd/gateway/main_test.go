package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
)

func TestParseConfigFlagsAndEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PULSE_API_KEY": "from-env", "PULSE_ADDR": "0.0.0.0:1", "PULSE_MAX_CONNECTIONS": "7"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := parseConfig([]string{"-addr", "127.0.0.1:9", "-jwt-hmac-secret", strings.Repeat("s", 32)}, lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9" || cfg.APIKey != "from-env" || cfg.Limits.MaxConnections != 7 {
		t.Fatalf("flag must win over env, env over default: %+v", cfg)
	}
}

func TestParseConfigErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	none := func(string) (string, bool) { return "", false }
	secret := []string{"-jwt-hmac-secret", strings.Repeat("s", 32)}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-jwt-hmac-secret"},
		{[]string{"-jwt-hmac-secret", "short"}, "-jwt-hmac-secret"},
		{append([]string{"-pong-timeout", "1m"}, secret...), "-pong-timeout"},
		{append([]string{"-max-message-size", "10"}, secret...), "-max-message-size"},
		{append([]string{"-command-rate", "0"}, secret...), "-command-rate"},
		{append([]string{"-log-level", "loud"}, secret...), "-log-level"},
		{append([]string{"-stream-replicas", "9"}, secret...), "-stream-replicas"},
		{append([]string{"extra"}, secret...), "unexpected arguments"},
		{append([]string{"-force-recovery", "tenant,chat"}, secret...), "-force-recovery"},
		{append([]string{"-recovery-limit", "0"}, secret...), "-recovery-limit"},
		{append([]string{"-presence-channels", "tenant:*:pres.ence"}, secret...), "-presence-channels"},
		{append([]string{"-presence-ttl", "1s"}, secret...), "-presence-ttl"},
	} {
		_, err := parseConfig(tc.args, none, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want mention of %s", tc.args, err, tc.want)
		}
	}
	_, err := parseConfig(nil, func(k string) (string, bool) { return "soon", k == "PULSE_PING_INTERVAL" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "PULSE_PING_INTERVAL") {
		t.Errorf("bad env value: %v", err)
	}
}

// TestSIGTERMDrainsWith3001 runs the real binary in -dev, connects the
// official SDK and checks that SIGTERM tells it to reconnect (3001) and the
// process exits cleanly.
func TestSIGTERMDrainsWith3001(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "gateway")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	cmd := exec.Command(bin, "-dev", "-addr", "127.0.0.1:0", "-nats-listen", "127.0.0.1:-1", "-shutdown-timeout", "10s")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	wsRe := regexp.MustCompile(`WebSocket:\s+(ws://\S+)`)
	tokRe := regexp.MustCompile(`acme user \(alice\):\s+(\S+)`)
	var wsURL, token string
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(30 * time.Second)
	for (wsURL == "" || token == "") && time.Now().Before(deadline) && sc.Scan() {
		if m := wsRe.FindStringSubmatch(sc.Text()); m != nil {
			wsURL = m[1]
		}
		if m := tokRe.FindStringSubmatch(sc.Text()); m != nil {
			token = m[1]
		}
	}
	if wsURL == "" || token == "" {
		t.Fatal("dev mode did not print the WebSocket URL and demo tokens")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	codes := make(chan uint32, 8)
	connected := make(chan struct{}, 8)
	c := centrifuge.NewJsonClient(wsURL, centrifuge.Config{Token: token, MaxReconnectDelay: time.Hour, MinReconnectDelay: time.Hour})
	c.OnConnected(func(centrifuge.ConnectedEvent) { connected <- struct{}{} })
	c.OnConnecting(func(ev centrifuge.ConnectingEvent) {
		if ev.Code != 0 {
			codes <- ev.Code
		}
	})
	c.OnDisconnected(func(ev centrifuge.DisconnectedEvent) { codes <- ev.Code })
	defer c.Close()
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("not connected")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-codes:
		if code != 3001 {
			t.Fatalf("SIGTERM: connection closed with %d, want 3001", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM: no disconnect")
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("gateway exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("gateway did not exit after SIGTERM")
	}
}
