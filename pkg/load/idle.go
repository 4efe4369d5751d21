package load

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// snapshot is the server's state at one moment.
type snapshot struct {
	proc    ProcStats
	metrics ServerMetrics
}

func (f *fleet) snapshot(ctx context.Context, pid int, metricsURL string) (snapshot, error) {
	p, err := ReadProc(pid)
	if err != nil {
		return snapshot{}, err
	}
	m, err := ScrapeMetrics(ctx, f.scraper, metricsURL)
	if err != nil {
		return snapshot{}, fmt.Errorf("-metrics-url: %w", err)
	}
	return snapshot{proc: p, metrics: m}, nil
}

// Idle runs the idle scenario: it measures the server, opens cfg.Conns
// connections that each connect and subscribe to one of cfg.Channels
// channels, lets them sit for cfg.Settle answering pings, measures again,
// and closes them all. Every phase is bounded: the ramp and settle by
// cfg.Timeout, the close by a fixed 30s.
func Idle(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	metricsURL, err := cfg.metricsURL()
	if err != nil {
		return nil, err
	}
	pid, err := cfg.findServer()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	f := newFleet(cfg, log)
	defer f.closeAll()
	before, err := f.snapshot(ctx, pid, metricsURL)
	if err != nil {
		return nil, err
	}
	log.Info("baseline", "server_pid", pid, "rss", fmtBytes(float64(before.proc.RSS)), "goroutines", before.metrics.Goroutines)

	rampStart := time.Now()
	latencies, err := f.ramp(ctx)
	if err != nil {
		return nil, err
	}
	rampTook := time.Since(rampStart)
	afterRamp, err := ReadProc(pid)
	if err != nil {
		return nil, err
	}
	log.Info("ramp done", "connected", f.connected.Load(), "failed", f.failed.Load(), "took", rampTook.Round(time.Millisecond), "settle", cfg.Settle)

	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
		return nil, f.aborted(ctx, "settle")
	}
	after, err := f.snapshot(ctx, pid, metricsURL)
	if err != nil {
		return nil, err
	}
	open := f.numOpen()
	closeTook := f.closeAll()
	log.Info("closed", "took", closeTook.Round(time.Millisecond))

	r := &Report{
		Scenario:          "idle",
		Target:            cfg.Conns,
		Conns:             int(f.connected.Load()),
		ConnectErrors:     int(f.failed.Load()),
		Dropped:           int(f.dropped.Load()),
		OpenAtMeasure:     open,
		RampSeconds:       rampTook.Seconds(),
		SettleSeconds:     cfg.Settle.Seconds(),
		PingsAnswered:     f.pings.Load(),
		ServerPID:         pid,
		ServerConnections: after.metrics.Connections,
		RSSBefore:         before.proc.RSS,
		RSSAfter:          after.proc.RSS,
		MetricsRSSBefore:  before.metrics.RSS,
		MetricsRSSAfter:   after.metrics.RSS,
		HeapInuseBefore:   before.metrics.HeapInuse,
		HeapInuseAfter:    after.metrics.HeapInuse,
		StackInuseBefore:  before.metrics.StackInuse,
		StackInuseAfter:   after.metrics.StackInuse,
		GoroutinesBefore:  before.metrics.Goroutines,
		GoroutinesAfter:   after.metrics.Goroutines,
		CPUBefore:         before.proc.CPU.Seconds(),
		CPUAfterRamp:      afterRamp.CPU.Seconds(),
		CPUAfter:          after.proc.CPU.Seconds(),
		CloseSeconds:      closeTook.Seconds(),
		Errors:            f.errs.snapshot(),
	}
	r.fillDerived(latencies)
	r.Warnings = baselineWarnings(before.metrics)
	return r, nil
}

// findServer is ServerPID, checked, or the process listening on the server
// port.
func (c *Config) findServer() (int, error) {
	if c.ServerPID > 0 {
		if _, err := ReadProc(c.ServerPID); err != nil {
			return 0, fmt.Errorf("-server-pid: %w", err)
		}
		return c.ServerPID, nil
	}
	port, err := c.serverPort()
	if err != nil {
		return 0, err
	}
	pid, err := FindListenerPID(port)
	if err != nil {
		return 0, fmt.Errorf("-server-port: %w", err)
	}
	return pid, nil
}

// percentile of sorted latencies, p in [0, 1].
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1)+0.5)]
}

func (r *Report) fillDerived(latencies []time.Duration) {
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r.HandshakeP50Ms = ms(percentile(latencies, 0.50))
	r.HandshakeP99Ms = ms(percentile(latencies, 0.99))
	r.HandshakeMaxMs = ms(percentile(latencies, 1))
	if r.RampSeconds > 0 {
		r.RampRate = float64(r.Conns) / r.RampSeconds
	}
	if r.SettleSeconds > 0 {
		r.CPUSettlePercent = 100 * (r.CPUAfter - r.CPUAfterRamp) / r.SettleSeconds
	}
	if n := float64(r.Conns); n > 0 {
		r.RSSPerConnKiB = (float64(r.RSSAfter) - float64(r.RSSBefore)) / n / 1024
		r.HeapPerConnKiB = (r.HeapInuseAfter - r.HeapInuseBefore) / n / 1024
		r.StackPerConnKiB = (r.StackInuseAfter - r.StackInuseBefore) / n / 1024
		r.GoroutinesPerConn = (r.GoroutinesAfter - r.GoroutinesBefore) / n
		r.CPURampPerConnMs = 1000 * (r.CPUAfterRamp - r.CPUBefore) / n
	}
}

// warmHeap is the heap in use above which a baseline probably holds garbage
// from earlier load: a fresh gateway idles at a few MiB.
const warmHeap = 32 << 20

// baselineWarnings says when the baseline makes per-connection figures
// unreliable. Go keeps freed memory and stack spans for reuse, so a gateway
// that carried load before understates the cost of new connections.
func baselineWarnings(m ServerMetrics) []string {
	var w []string
	if m.Connections > 0 {
		w = append(w, fmt.Sprintf("the gateway had %.0f connections before the run; per-connection figures mix in other clients", m.Connections))
	}
	if m.HeapInuse > warmHeap {
		w = append(w, fmt.Sprintf("baseline heap in use is %s: the gateway carried load before; restart it for a clean baseline", fmtBytes(m.HeapInuse)))
	}
	return w
}
