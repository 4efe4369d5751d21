// Package sim holds the simulated backends behind cmd/deployer-sim and
// cmd/billing-sim (DESIGN §7): discrete-event models of a hosting
// platform's deployer (deployments walking a state machine, resource
// metrics, threshold alerts, health beats) and its billing service (plans,
// invoices, payments with dunning, usage alerts, plan changes), and a
// publisher that stores their events in JetStream as CloudEvents
// (pkg/events) with acknowledgements and Nats-Msg-Id.
//
// A model runs on a simulated clock: the same seed, start time, tenants,
// rate and speed give byte-identical events, whatever the speed of the
// machine or of NATS. Config.Speed maps simulated time to real time.
//
// It must never create or change streams (the gateway owns them) and never
// build a subject from unchecked input: every subject comes from
// channel.Parse.
package sim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/pulseplatform/pulse/pkg/channel"
)

// DefaultRetryFor is how long one event is retried when Config.RetryFor is 0.
const DefaultRetryFor = 30 * time.Second

// Default speeds (Config.Speed = 0): deployments run in real time, billing
// runs a simulated day per second so invoices, dunning and plan changes show
// up within a demo.
const (
	DefaultDeployerSpeed = 1
	DefaultBillingSpeed  = 86400
)

// DefaultMaxInFlight is the publish window when Config.MaxInFlight is 0.
const DefaultMaxInFlight = 256

// MaxTenants bounds a generated tenant list (-tenants N).
const MaxTenants = 100000

// Config drives one simulator run. The zero value of every optional field
// is a sensible default.
type Config struct {
	// Tenants are the tenant ids events are published for; each must be a
	// valid channel token.
	Tenants []string
	// Rate is the average number of events per real second the simulator
	// aims for, across all tenants. The deployer turns it into the arrival
	// rate of deployments (metric samples, alerts and health beats come on
	// top); billing turns it into the number of subscriptions.
	Rate float64
	// Speed is simulated seconds per real second: 60 runs an hour per
	// minute. 0 means DefaultDeployerSpeed or DefaultBillingSpeed.
	Speed float64
	// Start is the simulated time of the first event; zero means the wall
	// clock at the start of the run (whole seconds). Event times come from
	// the simulated clock, so a run is replayed exactly with the same
	// Seed and Start.
	Start time.Time
	// Seed fixes the event sequence: the same Seed (with the same Start,
	// Tenants, Rate and Speed) gives the same events, ids and Nats-Msg-Ids.
	Seed int64
	// Duration stops the run after this much real time at Speed, i.e. after
	// Duration×Speed of simulated time; every event of that span is
	// published even when NATS is slower. 0 runs until ctx is done.
	Duration time.Duration
	// Logger receives progress and retry logs; nil discards them.
	Logger *slog.Logger
	// StatusLine, when set, receives a one-line status (events sent, acked,
	// failed, rate) four times a second, each Write one whole line without
	// a newline; progress log lines are then not written. Main sets it to
	// a writer that redraws the line in place on a terminal.
	StatusLine io.Writer
	// RetryFor bounds how long one event is retried (stream missing, NATS
	// unreachable) before the run fails; 0 means DefaultRetryFor. Keep it
	// under the streams' duplicate window (2 min) so a retry is never
	// stored twice.
	RetryFor time.Duration
	// MaxInFlight is how many publishes may wait for their ack at once;
	// 0 means DefaultMaxInFlight, 1 publishes one event at a time.
	MaxInFlight int
	// MetricsInterval is the simulated time between two metric samples of
	// a tenant (deployer); 0 means 10 s, stretched so that a tenant gets at
	// most one sample per 2 s of real time.
	MetricsInterval time.Duration
}

func (c Config) validate() error {
	if len(c.Tenants) == 0 {
		return errors.New("sim: no tenants")
	}
	seen := make(map[string]bool, len(c.Tenants))
	for _, t := range c.Tenants {
		if !channel.ValidToken(t) {
			return fmt.Errorf("sim: tenant %q: %w", t, channel.ErrBadToken)
		}
		if seen[t] {
			return fmt.Errorf("sim: tenant %q listed twice", t)
		}
		seen[t] = true
	}
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("sim: rate must be a positive number of events per second, got %v", c.Rate)
	}
	if c.Speed < 0 || math.IsNaN(c.Speed) || math.IsInf(c.Speed, 0) {
		return fmt.Errorf("sim: speed must be a positive number of simulated seconds per second (0 = default), got %v", c.Speed)
	}
	if c.Duration < 0 {
		return fmt.Errorf("sim: negative duration %v", c.Duration)
	}
	if c.RetryFor < 0 || c.MaxInFlight < 0 || c.MetricsInterval < 0 {
		return errors.New("sim: RetryFor, MaxInFlight and MetricsInterval must not be negative")
	}
	return nil
}

// withDefaults fills the zero fields; speed is the simulator's default
// speed.
func (c Config) withDefaults(speed float64) Config {
	if c.Speed == 0 {
		c.Speed = speed
	}
	if c.Start.IsZero() {
		c.Start = time.Now().Truncate(time.Second)
	}
	c.Start = c.Start.UTC()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RetryFor == 0 {
		c.RetryFor = DefaultRetryFor
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	return c
}

// simSpan is the simulated time that passes in d of real time.
func (c Config) simSpan(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.Speed)
}
