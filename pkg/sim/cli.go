package sim

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/envflag"
)

// CLI is what cmd/deployer-sim and cmd/billing-sim read from their flags and
// environment.
type CLI struct {
	NATSURL string
	Config  Config
}

// ParseCLI defines the simulators' flags on fs, parses args (without the
// program name) and validates them. Every flag falls back to the environment
// variable PULSE_<FLAG> (upper case, "-" → "_"), looked up with lookupEnv
// (os.LookupEnv): a flag on the command line wins over the environment, which
// wins over the default. Errors name the flag, e.g. "-rate must be > 0".
// A -seed of 0 picks a seed from the clock; the run logs it so it can be
// replayed.
func ParseCLI(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) (CLI, error) {
	var (
		cli     CLI
		tenants string
	)
	fs.StringVar(&cli.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma separated")
	fs.StringVar(&tenants, "tenants", "acme,globex", "comma-separated tenant ids to publish for")
	fs.Float64Var(&cli.Config.Rate, "rate", 2, "events per second, across all tenants")
	fs.Int64Var(&cli.Config.Seed, "seed", 0, "random seed; the same seed gives the same events (0 = pick one from the clock)")
	fs.DurationVar(&cli.Config.Duration, "duration", 0, "stop after this long (0 = run until interrupted)")

	if err := fs.Parse(args); err != nil {
		return CLI{}, err
	}
	if fs.NArg() > 0 {
		return CLI{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := envflag.Apply(fs, lookupEnv); err != nil {
		return CLI{}, err
	}

	if strings.TrimSpace(cli.NATSURL) == "" {
		return CLI{}, errors.New("-nats-url must not be empty")
	}
	ts, err := parseTenants(tenants)
	if err != nil {
		return CLI{}, err
	}
	cli.Config.Tenants = ts
	if !(cli.Config.Rate > 0) || math.IsInf(cli.Config.Rate, 0) {
		return CLI{}, fmt.Errorf("-rate must be > 0, got %v", cli.Config.Rate)
	}
	if cli.Config.Duration < 0 {
		return CLI{}, fmt.Errorf("-duration must be >= 0 (0 runs until interrupted), got %v", cli.Config.Duration)
	}
	if cli.Config.Seed == 0 {
		cli.Config.Seed = time.Now().UnixNano()
	}
	return cli, nil
}

func parseTenants(s string) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	for t := range strings.SplitSeq(s, ",") {
		t = strings.TrimSpace(t)
		if !channel.ValidToken(t) {
			return nil, fmt.Errorf("-tenants: %q is not a valid tenant id (want [A-Za-z0-9_-]{1,64}, comma separated)", t)
		}
		if seen[t] {
			return nil, fmt.Errorf("-tenants: %q listed twice", t)
		}
		seen[t] = true
		out = append(out, t)
	}
	return out, nil
}
