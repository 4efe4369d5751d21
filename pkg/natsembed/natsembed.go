// Package natsembed runs a NATS server with JetStream inside the current
// process: the gateway's single-machine and -dev mode, and the real server
// every test in the repository talks to (STYLE: real servers in tests).
//
// It must never install signal handlers or log through the server's own
// logger: the embedding process owns signals and logging.
package natsembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultListen is the client address used when Options.Listen is empty, so
// workers and the nats CLI find the embedded server where they expect one.
const DefaultListen = "127.0.0.1:4222"

// SyncAlways is the Options.Sync value that fsyncs every write before it is
// acknowledged (DESIGN §9: the default).
const SyncAlways = "always"

// readyTimeout bounds how long Start waits for the server when ctx has no
// earlier deadline.
const readyTimeout = 10 * time.Second

// ErrNotReady is returned by Start when the server did not come up.
var ErrNotReady = errors.New("not ready")

// Options configures an embedded server.
type Options struct {
	// Listen is the client address "host:port"; port -1 or 0 picks a random
	// free port (tests). Empty means DefaultListen.
	Listen string
	// DataDir is the JetStream store directory; "" means a temporary
	// directory removed by Shutdown.
	DataDir string
	// Sync is "always" (the default when empty) or a Go duration such as
	// "2m": how often JetStream fsyncs. See ParseSync.
	Sync string
	// ServerName names the server in logs and JetStream metadata.
	ServerName string
	// Logger receives the server's logs: notices at Debug, warnings and
	// errors at their level. Nil discards them.
	Logger *slog.Logger
}

// Server is a running embedded NATS server.
type Server struct {
	ns      *server.Server
	tempDir string // removed on Shutdown when we created it
	once    sync.Once
}

// ParseSync parses the -nats-sync value: "always" (or "") fsyncs every
// write; a positive duration fsyncs on that interval, which is faster but may
// lose acknowledged writes on a crash or power loss (DESIGN §9).
func ParseSync(v string) (always bool, interval time.Duration, err error) {
	if v == "" || v == SyncAlways {
		return true, 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return false, 0, fmt.Errorf("-nats-sync: want %q or a positive duration like \"2m\", got %q", SyncAlways, v)
	}
	return false, d, nil
}

// parseListen splits "host:port" into server options; port 0 or -1 means a
// random port.
func parseListen(listen string) (host string, port int, err error) {
	if listen == "" {
		listen = DefaultListen
	}
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("nats listen address %q: %w", listen, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("nats listen address %q: port must be 1-65535, or 0/-1 for a random port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// Start runs a server with JetStream and returns once it accepts clients and
// JetStream is enabled, or with an error naming what failed (an address
// already in use, an unusable store directory). ctx bounds the wait.
func Start(ctx context.Context, opts Options) (*Server, error) {
	always, interval, err := ParseSync(opts.Sync)
	if err != nil {
		return nil, err
	}
	host, port, err := parseListen(opts.Listen)
	if err != nil {
		return nil, err
	}

	s := &Server{}
	dir := opts.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "pulse-nats-"); err != nil {
			return nil, fmt.Errorf("nats store dir: %w", err)
		}
		s.tempDir = dir
	}

	sopts := &server.Options{
		ServerName:   opts.ServerName,
		Host:         host,
		Port:         port,
		JetStream:    true,
		StoreDir:     dir,
		SyncAlways:   always,
		SyncInterval: interval,
		NoSigs:       true, // the embedding process handles signals
		NoLog:        true, // no server-owned logger; ours is set below
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("nats server options: %w", err)
	}
	s.ns = ns

	log := newLogger(opts.Logger)
	ns.SetLoggerV2(log, false, false, false)
	ns.Start()

	if err := s.waitReady(ctx, log); err != nil {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats server on %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, log *logger) error {
	deadline := time.Now().Add(readyTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		// ReadyForConnections blocks, so poll in short slices to honour ctx.
		if s.ns.ReadyForConnections(50 * time.Millisecond) {
			break
		}
		if msg := log.fatal(); msg != "" {
			return fmt.Errorf("%w: %s", ErrNotReady, msg)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrNotReady, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %s", ErrNotReady, readyTimeout)
		}
	}
	if !s.ns.JetStreamEnabled() {
		if msg := log.fatal(); msg != "" {
			return fmt.Errorf("jetstream not enabled: %s", msg)
		}
		return errors.New("jetstream not enabled")
	}
	return nil
}

// ClientURL is the URL clients connect to, e.g. nats://127.0.0.1:4222.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// NATS exposes the underlying server for tests and advanced wiring.
func (s *Server) NATS() *server.Server { return s.ns }

// Shutdown stops the server, waits until it has stopped and removes the
// temporary store directory if Start created one. It is safe to call more
// than once.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		if s.ns != nil {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
		}
		s.removeTemp()
	})
}

func (s *Server) removeTemp() {
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
	}
}

// RunForTest starts a server on a random port with its store in tb.TempDir()
// and shuts it down when the test ends. It fails the test if the server does
// not start.
func RunForTest(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start(context.Background(), Options{
		Listen:     "127.0.0.1:-1",
		DataDir:    tb.TempDir(),
		ServerName: "test",
	})
	if err != nil {
		tb.Fatalf("natsembed: %v", err)
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// ConnectForTest connects a client to s for the rest of the test and returns
// it with its JetStream context. It fails the test if it cannot connect.
func (s *Server) ConnectForTest(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		tb.Fatalf("connect to %s: %v", s.ClientURL(), err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}
