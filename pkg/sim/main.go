package sim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Runner is RunDeployer or RunBilling.
type Runner func(ctx context.Context, js jetstream.JetStream, cfg Config) error

// ErrNATSUnreachable is returned when no NATS server answered within
// -connect-timeout.
var ErrNATSUnreachable = errors.New("NATS not reachable")

// Main is the whole of a simulator command: flags and PULSE_* variables,
// a NATS connection (waiting at most -connect-timeout for the server), the
// run, a live status line when stderr is a terminal (log lines otherwise),
// and a clean stop on SIGINT/SIGTERM: nothing new is generated, and what was
// sent is waited for until acknowledged. A second signal kills at once.
// It returns the process exit code: 2 for bad input, 1 for a failed run.
func Main(name string, runner Runner, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cli, err := ParseCLI(fs, args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}

	out := stderr
	var term *terminal
	if isTerminal(stderr) {
		term = &terminal{w: stderr}
		out = term
		cli.Config.StatusLine = statusLine{term}
	}
	log := slog.New(slog.NewTextHandler(out, nil))
	cli.Config.Logger = log

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case sig := <-sigs:
			// The default action is back: a second signal kills the
			// process without waiting for acks.
			signal.Stop(sigs)
			log.Info("stopping: waiting for the acks of events already sent (signal again to quit at once)", "signal", sig.String())
			cancel()
		case <-ctx.Done():
		}
	}()
	err = runCLI(ctx, name, cli, runner, log)
	term.done()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func runCLI(ctx context.Context, name string, cli CLI, runner Runner, log *slog.Logger) error {
	nc, err := connect(ctx, name, cli, log)
	if err != nil {
		return err
	}
	if nc == nil { // interrupted while waiting
		return nil
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return runner(ctx, js, cli.Config)
}

// connect dials NATS and waits until it is connected, at most
// cli.ConnectTimeout; once connected, the client reconnects on its own
// and publishes are retried (bounded by Config.RetryFor). It returns a nil
// connection and no error when ctx ends first.
func connect(ctx context.Context, name string, cli CLI, log *slog.Logger) (*nats.Conn, error) {
	where := redact(cli.NATSURL)
	connected := make(chan struct{})
	var (
		once    sync.Once
		mu      sync.Mutex
		lastErr error // of the latest failed attempt to connect
	)
	nc, err := nats.Connect(cli.NATSURL,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.ConnectHandler(func(*nats.Conn) { once.Do(func() { close(connected) }) }),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			mu.Lock()
			lastErr = err
			mu.Unlock()
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil on a deliberate Close
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to %s (-nats-url): %w", where, err)
	}
	if nc.IsConnected() {
		once.Do(func() { close(connected) })
	}
	timer := time.NewTimer(cli.ConnectTimeout)
	defer timer.Stop()
	select {
	case <-connected:
		log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted())
		return nc, nil
	case <-ctx.Done():
		nc.Close()
		return nil, nil
	case <-timer.C:
		nc.Close()
		mu.Lock()
		last := lastErr
		mu.Unlock()
		if last == nil {
			last = errors.New("no answer")
		}
		return nil, fmt.Errorf("%w at %s (-nats-url, PULSE_NATS_URL) within %s (-connect-timeout): %v",
			ErrNATSUnreachable, where, cli.ConnectTimeout, last)
	}
}

// redact hides passwords and tokens of NATS URLs in messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("REDACTED")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// terminal shares one terminal between log lines and a status line that is
// redrawn in place below them.
type terminal struct {
	mu     sync.Mutex
	w      io.Writer
	status string
}

const clearLine = "\r\033[K"

// Write prints log output above the status line.
func (t *terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := io.WriteString(t.w, clearLine); err != nil {
		return 0, err
	}
	n, err := t.w.Write(p)
	if err == nil && t.status != "" {
		_, err = io.WriteString(t.w, t.status)
	}
	return n, err
}

// done ends the status line so the shell prompt starts on a new line.
func (t *terminal) done() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status != "" {
		io.WriteString(t.w, "\n")
		t.status = ""
	}
}

// statusLine is the Config.StatusLine of a terminal.
type statusLine struct{ t *terminal }

func (s statusLine) Write(p []byte) (int, error) {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	s.t.status = string(p)
	if _, err := io.WriteString(s.t.w, clearLine+s.t.status); err != nil {
		return 0, err
	}
	return len(p), nil
}
