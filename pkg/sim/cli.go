package sim

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/envflag"
)

// DefaultConnectTimeout bounds the wait for NATS at start-up.
const DefaultConnectTimeout = 10 * time.Second

// CLI is what cmd/deployer-sim and cmd/billing-sim read from their flags and
// environment.
type CLI struct {
	NATSURL string
	// ConnectTimeout is how long to wait for NATS before giving up.
	ConnectTimeout time.Duration
	Config         Config
}

// demoTenants name the first tenants of a generated list (-tenants N).
var demoTenants = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark",
	"wayne", "wonka", "tyrell", "cyberdyne", "soylent", "vandelay"}

// ParseCLI defines the simulators' flags on fs, parses args (without the
// program name) and validates them. Every flag falls back to the environment
// variable PULSE_<FLAG> (upper case, "-" → "_"), looked up with lookupEnv
// (os.LookupEnv): a flag on the command line wins over the environment, which
// wins over the default. Errors name the flag, e.g. "-rate must be > 0".
// A -seed of 0 picks a seed from the clock and an empty -start the current
// time; the run logs both so it can be replayed.
func ParseCLI(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) (CLI, error) {
	var (
		cli     CLI
		tenants string
		start   string
	)
	fs.StringVar(&cli.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma separated")
	fs.StringVar(&tenants, "tenants", "acme,globex",
		"tenant ids, comma separated, or a number N to generate N tenants (acme, globex, …, then tenant-00013 …); a lone numeric id is written with a trailing comma: 12345,")
	fs.Float64Var(&cli.Config.Rate, "rate", 2,
		"average events per second across all tenants (the deployer's metrics, alerts and beats come on top)")
	fs.Float64Var(&cli.Config.Speed, "speed", 0,
		fmt.Sprintf("simulated seconds per real second, e.g. 86400 = a day per second (0 = default: deployer %d, billing %d)", DefaultDeployerSpeed, DefaultBillingSpeed))
	fs.Int64Var(&cli.Config.Seed, "seed", 0, "random seed: the same seed and -start give the same events (0 = pick one from the clock)")
	fs.StringVar(&start, "start", "", "simulated time of the first event, RFC 3339 (empty = now)")
	fs.DurationVar(&cli.Config.Duration, "duration", 0, "stop after this long, i.e. after duration×speed of simulated time (0 = run until interrupted)")
	fs.DurationVar(&cli.ConnectTimeout, "connect-timeout", DefaultConnectTimeout, "give up when NATS is not reachable within this long")

	if err := envflag.Parse(fs, args, lookupEnv); err != nil {
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
	if cli.Config.Speed < 0 || math.IsNaN(cli.Config.Speed) || math.IsInf(cli.Config.Speed, 0) {
		return CLI{}, fmt.Errorf("-speed must be > 0 simulated seconds per second (0 = the simulator's default), got %v", cli.Config.Speed)
	}
	if cli.Config.Duration < 0 {
		return CLI{}, fmt.Errorf("-duration must be >= 0 (0 runs until interrupted), got %v", cli.Config.Duration)
	}
	if cli.ConnectTimeout <= 0 {
		return CLI{}, fmt.Errorf("-connect-timeout must be > 0, got %v", cli.ConnectTimeout)
	}
	if start != "" {
		t, err := time.Parse(time.RFC3339, start)
		if err != nil {
			return CLI{}, fmt.Errorf("-start: want an RFC 3339 time such as 2025-01-06T09:00:00Z, got %q", start)
		}
		cli.Config.Start = t.UTC()
	}
	if cli.Config.Seed == 0 {
		cli.Config.Seed = time.Now().UnixNano()
	}
	return cli, nil
}

func parseTenants(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > MaxTenants {
			return nil, fmt.Errorf("-tenants: %d tenants requested, want 1 to %d", n, MaxTenants)
		}
		out := make([]string, n)
		for i := range out {
			if i < len(demoTenants) {
				out[i] = demoTenants[i]
			} else {
				out[i] = fmt.Sprintf("tenant-%05d", i+1)
			}
		}
		return out, nil
	}
	var out []string
	seen := make(map[string]bool)
	for t := range strings.SplitSeq(strings.TrimSuffix(s, ","), ",") {
		t = strings.TrimSpace(t)
		if !channel.ValidToken(t) {
			return nil, fmt.Errorf("-tenants: %q is not a valid tenant id (want [A-Za-z0-9_-]{1,64}, comma separated, or a number of tenants)", t)
		}
		if seen[t] {
			return nil, fmt.Errorf("-tenants: %q listed twice", t)
		}
		seen[t] = true
		out = append(out, t)
	}
	return out, nil
}
