// Command pulse-bench measures a Pulse gateway, or a Centrifugo server for
// comparison, on this machine with raw client-protocol connections: memory
// per idle subscriber, fan-out and many-channel delivery (latency, loss,
// duplicates, order, deliveries per server CPU-second) and a reconnect storm
// with recovery.
//
//	pulse-bench fanout -n 1000 -rate 500 -jwt-hmac-secret $SECRET -api-key $KEY
//	pulse-bench compare pulse.jsonl centrifugo.jsonl
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

var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "pulse-bench:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "pulse-bench:", err)
		os.Exit(1)
	}
}

const usage = `Usage: pulse-bench <scenario> [flags]
       pulse-bench compare <pulse.jsonl> <centrifugo.jsonl>

Scenarios (against -server pulse or centrifugo, same client protocol):
  idle      -n subscribed connections over -channels; RSS per connection
            (-procs N shares them among N processes: one process holds at most
            its file-descriptor limit of connections)
  fanout    -n subscribers on one channel, -rate msg/s for -duration
  channels  -n subscribers each on its own channel, -rate msg/s spread
  storm     -n subscribers over -channels drop at once after -storm-after and
            resubscribe with recovery while publishing goes on
compare reads the JSON lines of two runs and prints Pulse/Centrifugo ratios.
`

func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return fmt.Errorf("%w: no scenario given", errUsage)
		}
		return flag.ErrHelp
	}
	scenario := args[0]
	if scenario == "compare" {
		if len(args) != 3 {
			return fmt.Errorf("%w: compare takes two files", errUsage)
		}
		return compare(args[1], args[2], stdout)
	}
	switch scenario {
	case "idle", "fanout", "channels", "storm", holdScenario:
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown scenario %q", errUsage, scenario)
	}
	cfg, err := parseConfig(scenario, args[1:], lookupEnv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	own := cfg.Conns
	if scenario == "idle" {
		own = cfg.Conns - cfg.Conns/cfg.Procs*(cfg.Procs-1)
	}
	if _, err := load.RaiseFileLimit(own); err != nil {
		return err
	}
	var rep *load.BenchReport
	switch scenario {
	case holdScenario:
		return hold(ctx, cfg, stdout)
	case "idle":
		cfg.Spawn = spawner(args[1:], stderr)
		rep, err = load.BenchIdle(ctx, cfg)
	case "fanout", "channels":
		rep, err = load.BenchDeliver(ctx, cfg, scenario)
	case "storm":
		rep, err = load.BenchStorm(ctx, cfg)
	}
	if err != nil {
		return err
	}
	return rep.Write(stdout)
}

func parseConfig(scenario string, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (load.BenchConfig, error) {
	cfg := load.BenchDefaults()
	switch scenario {
	case "idle", holdScenario:
		cfg.Conns, cfg.Channels, cfg.Settle = 10000, 100, 5e9
	case "fanout":
		cfg.Conns, cfg.Channels, cfg.Rate = 1000, 1, 500
	case "channels":
		cfg.Conns, cfg.Channels, cfg.Rate = 5000, 5000, 2000
	case "storm":
		cfg.Conns, cfg.Channels, cfg.Rate, cfg.MaxInFlight = 5000, 50, 200, 1000
	}
	var secret string
	fs := flag.NewFlagSet("pulse-bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Server, "server", cfg.Server, "label of the server in the report: pulse or centrifugo")
	fs.StringVar(&cfg.URL, "url", cfg.URL, "WebSocket endpoint (loopback only)")
	fs.StringVar(&cfg.APIURL, "api-url", cfg.APIURL, "HTTP publish endpoint (loopback only)")
	fs.StringVar(&cfg.APIKey, "api-key", "", "X-API-Key of the HTTP API")
	fs.StringVar(&cfg.Publish, "publish", cfg.Publish, "http (both servers) or nats (Pulse: JetStream publish)")
	fs.StringVar(&cfg.NATSURL, "nats-url", cfg.NATSURL, "NATS for -publish nats (loopback only)")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "Pulse /metrics, to count stream reads in the storm (optional)")
	fs.IntVar(&cfg.Conns, "n", cfg.Conns, "subscribed connections")
	fs.IntVar(&cfg.Channels, "channels", cfg.Channels, "channels tenant:<tenant>:bench-<i%channels>")
	fs.StringVar(&cfg.Tenant, "tenant", cfg.Tenant, "tenant of tokens and channels")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "publications per second, all channels together")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "publishing time")
	fs.IntVar(&cfg.Pad, "pad", cfg.Pad, "extra payload bytes")
	fs.IntVar(&cfg.Workers, "publish-workers", cfg.Workers, "concurrent publishers (each channel has one)")
	fs.Float64Var(&cfg.RampRate, "ramp-rate", cfg.RampRate, "new connections per second")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", cfg.MaxInFlight, "handshakes in progress at once (also during the storm)")
	fs.DurationVar(&cfg.ConnTimeout, "conn-timeout", cfg.ConnTimeout, "bound on one dial+connect+subscribe")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "idle: wait after the ramp before measuring")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "wait for late deliveries after publishing")
	fs.DurationVar(&cfg.StormAfter, "storm-after", cfg.StormAfter, "storm: publishing time before every connection drops")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on the whole run")
	fs.StringVar(&secret, "jwt-hmac-secret", "", "the server's HMAC secret, to mint HS256 tokens")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process (0: the listener on the port of -url)")
	fs.IntVar(&cfg.Procs, "procs", cfg.Procs, "idle: processes sharing the connections (each holds at most its descriptor limit)")
	if scenario == holdScenario {
		fs.IntVar(&cfg.First, "first", 0, "index of the first subscriber this helper holds")
	}
	if err := envflag.Parse(fs, args, lookupEnv); err != nil {
		return cfg, err
	}
	cfg.HMACSecret = []byte(secret)
	return cfg, cfg.Validate()
}
