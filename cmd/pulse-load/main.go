// Command pulse-load opens many client connections to a Pulse gateway on this
// machine and reports what they cost the server (memory, CPU, goroutines).
//
//	pulse-load idle -n 5000 -jwt-hmac-secret $SECRET
//
// Every flag can also be set as PULSE_<FLAG>. Only loopback targets are
// accepted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/pulseplatform/pulse/pkg/envflag"
	"github.com/pulseplatform/pulse/pkg/load"
)

// errUsage marks errors in the command line: exit status 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "pulse-load:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "pulse-load:", err)
		os.Exit(1)
	}
}

const usage = `Usage: pulse-load <scenario> [flags]

Scenarios:
  idle   open -n connections that connect, subscribe and stay idle answering
         pings; report the server's RSS, heap, goroutines and CPU per connection

Every flag can also be set as PULSE_<FLAG> (e.g. PULSE_JWT_HMAC_SECRET).
Run "pulse-load idle -h" for the flags.
`

func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return fmt.Errorf("%w: no scenario given", errUsage)
		}
		return flag.ErrHelp
	}
	if args[0] != "idle" {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown scenario %q", errUsage, args[0])
	}
	cfg, err := parseConfig(args[1:], lookupEnv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	if _, err := load.RaiseFileLimit(cfg.Conns); err != nil {
		return err
	}
	report, err := load.Idle(ctx, cfg)
	if err != nil {
		return err
	}
	return report.Write(stdout)
}

// parseConfig reads flags, then PULSE_* variables for flags not given, and
// validates the result.
func parseConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (load.Config, error) {
	cfg := load.Defaults()
	var secret string
	fs := flag.NewFlagSet("pulse-load idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "gateway WebSocket endpoint (loopback only)")
	fs.IntVar(&cfg.Conns, "n", cfg.Conns, "connections to open")
	fs.IntVar(&cfg.Channels, "channels", cfg.Channels, "distinct channels tenant:<tenant>:load-<i%channels> to spread subscriptions over")
	fs.StringVar(&cfg.Tenant, "tenant", cfg.Tenant, "tenant claim of the minted tokens")
	fs.Float64Var(&cfg.RampRate, "ramp-rate", cfg.RampRate, "new connections per second")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", cfg.MaxInFlight, "handshakes in progress at once")
	fs.DurationVar(&cfg.ConnTimeout, "conn-timeout", cfg.ConnTimeout, "bound on one connection's dial, connect and subscribe")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "wait after the ramp before measuring (pings start after -ping-interval/2 on the gateway)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on the whole run (closing adds at most 30s)")
	fs.StringVar(&secret, "jwt-hmac-secret", "", "the gateway's HMAC secret, to mint HS256 connection tokens")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "gateway process id (0: find the process listening on -server-port)")
	fs.IntVar(&cfg.ServerPort, "server-port", 0, "gateway port, to find its process (0: the port of -url)")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "gateway Prometheus endpoint (default: /metrics on the host of -url)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: pulse-load idle [flags]\n\n")
		fs.PrintDefaults()
	}
	if err := envflag.Parse(fs, args, lookupEnv); err != nil {
		return cfg, err
	}
	cfg.HMACSecret = []byte(secret)
	return cfg, cfg.Validate()
}
