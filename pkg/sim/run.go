package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/events"
)

// drainTimeout is how long a stopped run keeps waiting for the acks of
// what it already sent.
const drainTimeout = 15 * time.Second

// ahead is how far the simulated clock may run ahead of real time before
// the driver sleeps: sleeping for less is not worth a timer.
const ahead = 2 * time.Millisecond

// msgID is the CloudEvents id and Nats-Msg-Id of a run's n-th event.
func msgID(name string, seed int64, n int64) string {
	return fmt.Sprintf("%s-%d-%d", name, seed, n)
}

// encode wraps an emission into its CloudEvents envelope.
func encode(name string, seed, n int64, e emission) ([]byte, error) {
	ev, err := events.New(msgID(name, seed, n), "/pulse/"+name+"-sim", e.typ, e.subject, e.at, e.data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ev)
}

// run drives a model: it runs the model's actions in simulated-time order,
// sleeps so that simulated time advances at cfg.Speed, and publishes what
// they emit. A requested stop (ctx, or the end of cfg.Duration) returns nil
// once everything sent is acknowledged; a publish that keeps failing, or
// acks still missing after drainTimeout, is an error.
func run(ctx context.Context, js jetstream.JetStream, cfg Config, name string, m *model) error {
	log := cfg.Logger
	// hard is cancelled drainTimeout after ctx: until then a stopping run
	// still waits for acks and retries.
	hard, cancelHard := context.WithCancelCause(context.Background())
	defer cancelHard(nil)
	stopHard := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(drainTimeout, func() {
			cancelHard(fmt.Errorf("shutdown deadline of %s passed", drainTimeout))
		})
		context.AfterFunc(hard, func() { t.Stop() })
	})
	defer stopHard()

	var horizon time.Time
	if cfg.Duration > 0 {
		horizon = cfg.Start.Add(cfg.simSpan(cfg.Duration))
	}
	p := newPublisher(js, cfg)
	realStart := time.Now()
	st := &status{name: name + "-sim", p: p, started: realStart}
	st.simNow.Store(cfg.Start.UnixNano())
	var wg sync.WaitGroup
	reportCtx, stopReport := context.WithCancel(context.Background())
	wg.Go(func() { st.report(reportCtx, cfg) })
	defer func() { stopReport(); wg.Wait() }()

	log.Info("simulator started", "sim", name, "tenants", len(cfg.Tenants), "rate", cfg.Rate, "speed", cfg.Speed,
		"seed", cfg.Seed, "start", cfg.Start.Format(time.RFC3339), "duration", cfg.Duration)

	var seq int64
	err := func() error {
		for ctx.Err() == nil {
			at, ok := m.sched.peek()
			if !ok || (!horizon.IsZero() && at.After(horizon)) {
				return nil
			}
			due := realStart.Add(time.Duration(float64(at.Sub(cfg.Start)) / cfg.Speed))
			if wait := time.Until(due); wait > ahead && !at.Before(cfg.Start) {
				// Idle until the next action: collect the acks of what
				// is in flight meanwhile.
				if err := p.flush(hard); err != nil {
					return err
				}
				wait = time.Until(due)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
			out, _, err := m.step()
			if err != nil {
				return err
			}
			if at.Before(cfg.Start) {
				continue // warm-up: computed, not published
			}
			st.simNow.Store(at.UnixNano())
			for _, e := range out {
				data, err := encode(name, cfg.Seed, seq, e)
				if err != nil {
					return err
				}
				msg := nats.NewMsg(e.ch.Subject())
				msg.Data = data
				msg.Header.Set(jetstream.MsgIDHeader, msgID(name, cfg.Seed, seq))
				seq++
				if err := p.send(hard, msg); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if err == nil {
		err = p.flush(hard)
	}
	st.final(cfg)
	args := []any{"sim", name, "sent", p.sent.Load(), "acked", p.acked.Load(), "failed_attempts", p.failed.Load(),
		"elapsed", time.Since(realStart).Round(time.Millisecond), "sim_time", m.now().Format(time.RFC3339)}
	if err != nil {
		if errors.Is(err, ErrNotAcknowledged) {
			return fmt.Errorf("%s sim stopped: %w", name, err)
		}
		return fmt.Errorf("%s sim: %w (%d events sent, %d acknowledged)", name, err, p.sent.Load(), p.acked.Load())
	}
	log.Info("simulator stopped", args...)
	return nil
}

// status reports progress: a live line on a terminal, log lines otherwise.
type status struct {
	name    string
	p       *publisher
	started time.Time
	simNow  atomic.Int64

	lastAcked int64
	lastAt    time.Time
	rate      float64 // acked events per second, smoothed
}

const (
	statusEvery   = 250 * time.Millisecond
	progressEvery = 10 * time.Second
)

func (s *status) report(ctx context.Context, cfg Config) {
	every := progressEvery
	if cfg.StatusLine != nil {
		every = statusEvery
	}
	s.lastAt = time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.update(now)
			if cfg.StatusLine != nil {
				fmt.Fprint(cfg.StatusLine, s.line())
			} else {
				cfg.Logger.Info("progress", "sim", s.name, "sent", s.p.sent.Load(), "acked", s.p.acked.Load(),
					"failed_attempts", s.p.failed.Load(), "rate", fmt.Sprintf("%.1f/s", s.rate),
					"sim_time", time.Unix(0, s.simNow.Load()).UTC().Format(time.RFC3339))
			}
		}
	}
}

func (s *status) update(now time.Time) {
	acked := s.p.acked.Load()
	dt := now.Sub(s.lastAt).Seconds()
	if dt <= 0 {
		return
	}
	r := float64(acked-s.lastAcked) / dt
	if s.rate == 0 || dt >= time.Second.Seconds() {
		s.rate = r
	} else {
		s.rate = 0.7*s.rate + 0.3*r
	}
	s.lastAcked, s.lastAt = acked, now
}

func (s *status) line() string {
	return fmt.Sprintf("%s  sim %s  sent %d  acked %d  failed %d  %.0f ev/s",
		s.name, time.Unix(0, s.simNow.Load()).UTC().Format("2006-01-02 15:04:05"),
		s.p.sent.Load(), s.p.acked.Load(), s.p.failed.Load(), s.rate)
}

// final writes the last status line with the average rate of the run.
func (s *status) final(cfg Config) {
	if cfg.StatusLine == nil {
		return
	}
	if secs := time.Since(s.started).Seconds(); secs > 0 {
		s.rate = float64(s.p.acked.Load()) / secs
	}
	fmt.Fprint(cfg.StatusLine, s.line()+" (average)")
}
