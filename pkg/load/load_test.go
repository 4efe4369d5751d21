package load

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url  string
		ok   bool
		want error
	}{
		{"ws://127.0.0.1:8080/connection/websocket", true, nil},
		{"ws://127.9.8.7:1/connection/websocket", true, nil},
		{"ws://[::1]:8080/connection/websocket", true, nil},
		{"ws://localhost:8080/connection/websocket", true, nil},
		{"ws://LocalHost/connection/websocket", true, nil},
		{"http://127.0.0.1:8080/metrics", true, nil},
		{"wss://127.0.0.1/connection/websocket", true, nil},
		{"ws://10.0.0.1:8080/connection/websocket", false, ErrNotLoopback},
		{"ws://0.0.0.0:8080/connection/websocket", false, ErrNotLoopback},
		{"ws://example.com/connection/websocket", false, ErrNotLoopback},
		{"ws://localhost.example.com/connection/websocket", false, ErrNotLoopback},
		{"ws://127.0.0.1.nip.io/connection/websocket", false, ErrNotLoopback},
		{"ws://[::ffff:10.0.0.1]/connection/websocket", false, ErrNotLoopback},
		{"tcp://127.0.0.1:8080", false, nil},
		{"127.0.0.1:8080", false, nil},
	} {
		err := CheckLoopback(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("CheckLoopback(%q) = %v, want %v", tt.url, err, tt.want)
		}
	}
}

func TestLoopbackDialerRefusesBeforeConnecting(t *testing.T) {
	t.Parallel()
	// 192.0.2.0/24 is TEST-NET-1: nothing answers there, and the dialer
	// must refuse it before a SYN is sent anyway.
	_, err := loopbackDialer().Dial("tcp", "192.0.2.1:80")
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("dial TEST-NET: %v, want ErrNotLoopback", err)
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	t.Parallel()
	good := Defaults()
	good.HMACSecret = []byte(strings.Repeat("s", 32))
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults with a secret: %v", err)
	}
	for _, tt := range []struct {
		flag string
		mod  func(*Config)
	}{
		{"-url", func(c *Config) { c.URL = "ws://192.168.1.5:8080/connection/websocket" }},
		{"-metrics-url", func(c *Config) { c.MetricsURL = "http://example.com/metrics" }},
		{"-n", func(c *Config) { c.Conns = 0 }},
		{"-channels", func(c *Config) { c.Channels = 0 }},
		{"-tenant", func(c *Config) { c.Tenant = "a:b" }},
		{"-ramp-rate", func(c *Config) { c.RampRate = 0 }},
		{"-max-inflight", func(c *Config) { c.MaxInFlight = 0 }},
		{"-conn-timeout", func(c *Config) { c.ConnTimeout = 0 }},
		{"-settle", func(c *Config) { c.Settle = -time.Second }},
		{"-timeout", func(c *Config) { c.Timeout = 2 * time.Hour }},
		{"-jwt-hmac-secret", func(c *Config) { c.HMACSecret = []byte("short") }},
		{"-server-port", func(c *Config) { c.ServerPort = 70000 }},
	} {
		c := good
		tt.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("%s: Validate() = %v, want an error naming %s", tt.flag, err, tt.flag)
		}
	}
}

func TestDerivedURLsAndPort(t *testing.T) {
	t.Parallel()
	c := Defaults()
	c.URL = "ws://127.0.0.1:18181/connection/websocket?x=1"
	if got, _ := c.metricsURL(); got != "http://127.0.0.1:18181/metrics" {
		t.Errorf("metricsURL = %q", got)
	}
	if got, _ := c.serverPort(); got != 18181 {
		t.Errorf("serverPort = %d", got)
	}
	c.URL = "wss://localhost/connection/websocket"
	if got, _ := c.metricsURL(); got != "https://localhost/metrics" {
		t.Errorf("metricsURL = %q", got)
	}
	if got, _ := c.serverPort(); got != 443 {
		t.Errorf("serverPort = %d", got)
	}
	if got := c.channelName(205); got != "tenant:acme:load-5" {
		t.Errorf("channelName(205) = %q", got)
	}
}

func TestParseProc(t *testing.T) {
	t.Parallel()
	rss, err := parseRSS([]byte("Name:\tgateway\nVmPeak:\t 999 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"))
	if err != nil || rss != 20480*1024 {
		t.Fatalf("parseRSS = %d, %v", rss, err)
	}
	if _, err := parseRSS([]byte("Name:\tkthreadd\n")); err == nil {
		t.Fatal("parseRSS without VmRSS: no error")
	}
	// A command name with spaces and a ')' must not shift the fields.
	stat := "4242 (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 123 456 789"
	cpu, err := parseCPU([]byte(stat))
	if err != nil || cpu != 3*time.Second {
		t.Fatalf("parseCPU = %v, %v, want 3s", cpu, err)
	}
	self, err := ReadProc(os.Getpid())
	if err != nil || self.RSS == 0 {
		t.Fatalf("ReadProc(self) = %+v, %v", self, err)
	}
}

func TestFindListenerPID(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pid, err := FindListenerPID(ln.Addr().(*net.TCPAddr).Port)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("FindListenerPID = %d, %v, want %d", pid, err, os.Getpid())
	}
	// The port of a closed listener is free (nothing else listens on a
	// port the kernel just handed us).
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	if _, err := FindListenerPID(port); !errors.Is(err, ErrNoListener) {
		t.Fatalf("FindListenerPID(free port) = %v, want ErrNoListener", err)
	}
}

func TestParseGauges(t *testing.T) {
	t.Parallel()
	text := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 1234
go_gc_duration_seconds{quantile="0.5"} 1e-05
pulse_connections 5000 1712345678000
go_memstats_heap_inuse_bytes 1.2345e+08
`
	var g, c, h, missing float64
	err := parseGauges(strings.NewReader(text), map[string]*float64{
		"go_goroutines": &g, "pulse_connections": &c, "go_memstats_heap_inuse_bytes": &h,
	})
	if err != nil || g != 1234 || c != 5000 || h != 1.2345e8 {
		t.Fatalf("parseGauges = %v %v %v, %v", g, c, h, err)
	}
	err = parseGauges(strings.NewReader(text), map[string]*float64{"process_resident_memory_bytes": &missing})
	if err == nil || !strings.Contains(err.Error(), "process_resident_memory_bytes") {
		t.Fatalf("missing metric: %v", err)
	}
}

func TestBaselineWarnings(t *testing.T) {
	t.Parallel()
	if w := baselineWarnings(ServerMetrics{HeapInuse: 3 << 20}); len(w) != 0 {
		t.Errorf("fresh gateway: warnings %q", w)
	}
	w := baselineWarnings(ServerMetrics{Connections: 12, HeapInuse: 200 << 20})
	if len(w) != 2 || !strings.Contains(w[0], "12 connections") || !strings.Contains(w[1], "restart") {
		t.Errorf("warm gateway with clients: warnings %q", w)
	}
}
