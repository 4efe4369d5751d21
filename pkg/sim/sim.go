// Package sim holds the simulated backends behind cmd/deployer-sim and
// cmd/billing-sim: models that turn a seed into a reproducible sequence of
// deployment and billing events, and a publisher that stores them in
// JetStream with acknowledgements and Nats-Msg-Id (DESIGN §7).
//
// It must never create or change streams (the gateway owns them) and never
// build a subject from unchecked input: every subject comes from
// channel.Parse.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
)

// DefaultRetryFor is how long one event is retried when Config.RetryFor is 0.
const DefaultRetryFor = 30 * time.Second

const (
	publishTimeout = 5 * time.Second       // one attempt's wait for the ack
	maxBackoff     = 2 * time.Second       // between attempts
	progressEvery  = 10 * time.Second      // progress log line
	healthEvery    = 5 * time.Second       // deployer's system:health beat
	minInterval    = 10 * time.Microsecond // caps absurd rates
)

// Config drives one simulator run.
type Config struct {
	// Tenants are the tenant ids events are published for; each must be a
	// valid channel token.
	Tenants []string
	// Rate is the number of events per second, across all tenants.
	Rate float64
	// Seed fixes the event sequence: the same seed gives the same events in
	// the same order (timestamps aside), and the same Nats-Msg-Ids.
	Seed int64
	// Duration stops the run after this long; 0 runs until ctx is done.
	Duration time.Duration
	// Logger receives progress and retry logs; nil discards them.
	Logger *slog.Logger
	// RetryFor bounds how long one event is retried (stream missing, NATS
	// unreachable) before the run fails; 0 means DefaultRetryFor.
	RetryFor time.Duration
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
	if c.Duration < 0 {
		return fmt.Errorf("sim: negative duration %v", c.Duration)
	}
	return nil
}

func (c Config) interval() time.Duration {
	return max(time.Duration(float64(time.Second)/c.Rate), minInterval)
}

// newRand returns the model's only source of randomness; name separates the
// deployer's sequence from the billing one for the same seed.
func newRand(seed int64, name string) *rand.Rand {
	var salt uint64
	for _, b := range []byte(name) {
		salt = salt*131 + uint64(b)
	}
	return rand.New(rand.NewPCG(uint64(seed), salt))
}

// tenantChannels builds one channel per tenant for resource, through the
// channel grammar.
func tenantChannels(tenants []string, resource string) ([]channel.Channel, error) {
	out := make([]channel.Channel, len(tenants))
	for i, t := range tenants {
		ch, err := channel.Parse(string(channel.Tenant) + ":" + t + ":" + resource)
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		out[i] = ch
	}
	return out, nil
}

// model produces the next event. It draws only on its own rand source, so
// the sequence depends on the seed alone; now only feeds timestamps.
type model func(now time.Time) (channel.Channel, any)

// publisher stores events in JetStream, retrying each with its msg id.
type publisher struct {
	js       jetstream.JetStream
	log      *slog.Logger
	retryFor time.Duration

	published int
	dupes     int // duplicates on a first attempt: an earlier run with the same seed
}

// publish waits for the stream's ack, retrying with the same Nats-Msg-Id
// until RetryFor has passed: the stream's duplicate window makes the retry
// idempotent when only the ack was lost.
func (p *publisher) publish(ctx context.Context, ch channel.Channel, msgID string, event any) error {
	data, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("encode event for %s: %w", ch, err)
	}
	start := time.Now()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, publishTimeout)
		ack, err := p.js.Publish(actx, ch.Subject(), data, jetstream.WithMsgID(msgID))
		cancel()
		if err == nil {
			p.published++
			if ack.Duplicate && attempt == 1 {
				if p.dupes == 0 {
					p.log.Warn("stream dropped an event as a duplicate: another run with this seed published within the duplicate window",
						"channel", ch.Name(), "msg_id", msgID)
				}
				p.dupes++
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) >= p.retryFor {
			return fmt.Errorf("publish %s (msg id %s): gave up after %d attempts in %s: %w",
				ch.Subject(), msgID, attempt, time.Since(start).Round(time.Millisecond), err)
		}
		msg := "publish failed; retrying with the same msg id"
		switch {
		case p.js.Conn() != nil && !p.js.Conn().IsConnected():
			// nats.go reports odd errors (e.g. "headers not supported")
			// before the first connection is made.
			msg = "not connected to NATS yet; retrying"
		case errors.Is(err, jetstream.ErrNoStreamResponse):
			msg = "no stream for the subject yet (the gateway creates it); retrying"
		}
		p.log.Warn(msg, "channel", ch.Name(), "msg_id", msgID, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// run publishes one event from next per tick until ctx is done or
// cfg.Duration has passed, and a heartbeat per healthEvery when beat is set.
// A requested stop returns nil; only a publish that keeps failing is an
// error.
func run(ctx context.Context, js jetstream.JetStream, cfg Config, name string, next model, beat func(now time.Time, published int) (channel.Channel, any)) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	retryFor := cfg.RetryFor
	if retryFor <= 0 {
		retryFor = DefaultRetryFor
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	p := &publisher{js: js, log: log, retryFor: retryFor}

	tick := time.NewTicker(cfg.interval())
	defer tick.Stop()
	progress := time.NewTicker(progressEvery)
	defer progress.Stop()
	var beats <-chan time.Time
	if beat != nil {
		t := time.NewTicker(healthEvery)
		defer t.Stop()
		beats = t.C
	}

	log.Info("simulator started", "sim", name, "tenants", cfg.Tenants, "rate", cfg.Rate, "seed", cfg.Seed, "duration", cfg.Duration)
	started := time.Now()
	var events, beatsSent int
	sendBeat := func(now time.Time) error {
		ch, ev := beat(now, p.published)
		err := p.publish(ctx, ch, fmt.Sprintf("%s-%d-health-%d", name, cfg.Seed, beatsSent), ev)
		beatsSent++
		return err
	}
	sendEvent := func(now time.Time) error {
		ch, ev := next(now)
		err := p.publish(ctx, ch, fmt.Sprintf("%s-%d-%d", name, cfg.Seed, events), ev)
		events++
		return err
	}

	var err error
	if beat != nil {
		// Beat once at start: it says the simulator is up, and it is where a
		// missing stream is waited for before the first event.
		err = sendBeat(started)
	}
	for err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case now := <-tick.C:
			err = sendEvent(now)
		case now := <-beats:
			err = sendBeat(now)
		case <-progress.C:
			log.Info("progress", "sim", name, "published", p.published, "duplicates", p.dupes)
		}
	}
	if ctx.Err() != nil {
		log.Info("simulator stopped", "sim", name, "published", p.published, "duplicates", p.dupes,
			"elapsed", time.Since(started).Round(time.Millisecond))
		return nil
	}
	return fmt.Errorf("%s sim: %w", name, err)
}
