package sim

import (
	"fmt"
	"time"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/events"
)

// emission is one event a model produced, before the publisher gives it an
// id and an envelope. Its time is the scheduler's clock when it was emitted.
type emission struct {
	ch      channel.Channel
	typ     string
	subject string
	at      time.Time
	data    any
}

// model is what the deployer and billing models share: the simulated
// clock, the channels they may publish on, and the buffer of events the
// current action emitted.
type model struct {
	sched *scheduler
	// start is Config.Start; the clock may begin earlier (warm-up), and
	// events before start are computed but not published.
	start time.Time
	// channels by name, resolved once through channel.Parse.
	channels map[string]channel.Channel
	out      []emission
	err      error
}

// newModel resolves the channel of every event type in types for every
// tenant.
func newModel(start time.Time, warmup time.Duration, tenants []string, types ...string) (*model, error) {
	m := &model{sched: newScheduler(start.Add(-warmup)), start: start, channels: make(map[string]channel.Channel)}
	for _, typ := range types {
		info, ok := events.Lookup(typ)
		if !ok {
			return nil, fmt.Errorf("sim: %w: %s", events.ErrUnknownType, typ)
		}
		for _, t := range tenants {
			name := info.ChannelFor(t)
			if _, done := m.channels[name]; done {
				continue
			}
			ch, err := channel.Parse(name)
			if err != nil {
				return nil, fmt.Errorf("sim: %s: %w", typ, err)
			}
			m.channels[name] = ch
		}
	}
	return m, nil
}

// now is the simulated time.
func (m *model) now() time.Time { return m.sched.now }

// emit queues an event of typ about subject on the type's channel for
// tenant (ignored for admin and system channels).
func (m *model) emit(typ, tenant, subject string, data any) {
	info, _ := events.Lookup(typ)
	ch, ok := m.channels[info.ChannelFor(tenant)]
	if !ok {
		// A model bug, not input: stop the run with a clear error.
		m.err = fmt.Errorf("sim: no channel for %s of tenant %q", typ, tenant)
		return
	}
	m.out = append(m.out, emission{ch: ch, typ: typ, subject: subject, at: m.sched.now, data: data})
}

// step runs the next action and returns what it emitted (often nothing);
// the slice is reused by the next call. ok is false when no action is left.
func (m *model) step() (out []emission, ok bool, err error) {
	m.out = m.out[:0]
	if !m.sched.step() {
		return nil, false, m.err
	}
	return m.out, true, m.err
}
