package natsembed

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRunForTestServesJetStream(t *testing.T) {
	t.Parallel()
	s := RunForTest(t)

	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("account info: %v", err)
	}
	if !s.NATS().JetStreamEnabled() {
		t.Fatal("jetstream not enabled")
	}
	if !s.NATS().JetStreamConfig().SyncAlways {
		t.Fatal("default sync is not always")
	}
}

func TestShutdownRemovesTempDir(t *testing.T) {
	t.Parallel()
	s, err := Start(context.Background(), Options{Listen: "127.0.0.1:0", Sync: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.tempDir
	if dir == "" {
		t.Fatal("no temp dir created")
	}
	if got := s.NATS().JetStreamConfig().SyncInterval; got != time.Second {
		t.Fatalf("sync interval = %v, want 1s", got)
	}
	s.Shutdown()
	s.Shutdown() // idempotent
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s still there: %v", dir, err)
	}
}

func TestStartNamesAddressInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()

	s, err := Start(context.Background(), Options{Listen: addr, DataDir: t.TempDir()})
	if err == nil {
		s.Shutdown()
		t.Fatal("Start on a busy port succeeded")
	}
	if !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q does not name %s", err, addr)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, listen, sync, want string }{
		{"bad sync", "127.0.0.1:-1", "sometimes", "-nats-sync"},
		{"no port", "localhost", "", "localhost"},
		{"port out of range", "127.0.0.1:70000", "", "127.0.0.1:70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Start(context.Background(), Options{Listen: tt.listen, Sync: tt.sync})
			if err == nil {
				s.Shutdown()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseSync(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		always   bool
		interval time.Duration
		wantErr  bool
	}{
		{"", true, 0, false},
		{"always", true, 0, false},
		{"2m", false, 2 * time.Minute, false},
		{"250ms", false, 250 * time.Millisecond, false},
		{"0s", false, 0, true},
		{"-1s", false, 0, true},
		{"Always", false, 0, true},
		{"120", false, 0, true},
		{"never", false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			always, interval, err := ParseSync(tt.in)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "-nats-sync") {
					t.Fatalf("ParseSync(%q) error = %v, want one naming -nats-sync", tt.in, err)
				}
				return
			}
			if err != nil || always != tt.always || interval != tt.interval {
				t.Fatalf("ParseSync(%q) = %v, %v, %v", tt.in, always, interval, err)
			}
		})
	}
}
