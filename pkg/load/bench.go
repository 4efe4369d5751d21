package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// BenchConfig is one run of a pulse-bench scenario against Pulse or
// Centrifugo: both speak the same client protocol and HTTP publish API.
type BenchConfig struct {
	Server      string        // -server: label for the report (pulse, centrifugo)
	URL         string        // -url: WebSocket endpoint, loopback only
	APIURL      string        // -api-url: /api/publish endpoint, loopback only
	APIKey      string        // -api-key
	Publish     string        // -publish: http or nats (Pulse only)
	NATSURL     string        // -nats-url: for -publish nats
	MetricsURL  string        // -metrics-url: Pulse /metrics, for history reads (optional)
	Conns       int           // -n
	Channels    int           // -channels
	Tenant      string        // -tenant
	Rate        float64       // -rate: publications per second, all channels together
	Duration    time.Duration // -duration: publishing time
	Pad         int           // -pad: extra payload bytes
	Workers     int           // -publish-workers
	RampRate    float64       // -ramp-rate
	MaxInFlight int           // -max-inflight
	ConnTimeout time.Duration // -conn-timeout
	Settle      time.Duration // -settle
	Drain       time.Duration // -drain: wait for the last deliveries
	StormAfter  time.Duration // -storm-after: publishing time before every client drops
	Timeout     time.Duration // -timeout: the whole run
	HMACSecret  []byte        // -jwt-hmac-secret
	ServerPID   int           // -server-pid (0: the listener of -url's port)
	Procs       int           // -procs: idle only, processes sharing the connections
	First       int           // index of the first subscriber (helper processes hold later ones)

	// Spawn starts a helper process holding subscribers first…first+n-1 of
	// an idle run (one process holds at most its descriptor limit of
	// connections); needed when Procs > 1.
	Spawn func(ctx context.Context, first, n int, rampRate float64) (*Helper, error)

	Logger *slog.Logger
}

// Helper is the part of an idle run another process holds.
type Helper struct {
	Ready func() (ok, failed int, err error) // blocks until its connections are subscribed
	Stop  func()                             // closes them and waits for the process
}

// BenchDefaults fills every default but the secret and the API key.
func BenchDefaults() BenchConfig {
	return BenchConfig{
		Server: "pulse", URL: "ws://127.0.0.1:8080/connection/websocket", APIURL: "http://127.0.0.1:8080/api/publish",
		Publish: "http", NATSURL: "nats://127.0.0.1:4222", Conns: 1000, Channels: 1, Tenant: "acme",
		Rate: 100, Duration: 15 * time.Second, Workers: 32, RampRate: 2000, MaxInFlight: 256,
		ConnTimeout: 15 * time.Second, Settle: 3 * time.Second, Drain: 10 * time.Second,
		StormAfter: 3 * time.Second, Timeout: 3 * time.Minute, Procs: 1,
	}
}

func (c *BenchConfig) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Validate reports every bad setting, each naming its flag.
func (c *BenchConfig) Validate() error {
	var errs []error
	if err := CheckLoopback(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("-url: %w", err))
	}
	if err := CheckLoopback(c.APIURL); err != nil {
		errs = append(errs, fmt.Errorf("-api-url: %w", err))
	}
	if c.MetricsURL != "" {
		if err := CheckLoopback(c.MetricsURL); err != nil {
			errs = append(errs, fmt.Errorf("-metrics-url: %w", err))
		}
	}
	if c.Publish != "http" && c.Publish != "nats" {
		errs = append(errs, fmt.Errorf("-publish %q: want http or nats", c.Publish))
	}
	if c.Conns < 1 || c.Channels < 1 || c.Channels > c.Conns {
		errs = append(errs, errors.New("-n and -channels must be at least 1, and -channels at most -n"))
	}
	if c.Tenant == "" || strings.ContainsAny(c.Tenant, ":.*> ") {
		errs = append(errs, fmt.Errorf("-tenant %q must be a channel token like acme", c.Tenant))
	}
	if c.Rate <= 0 || c.Duration <= 0 || c.Duration > 5*time.Minute {
		errs = append(errs, errors.New("-rate must be > 0 and -duration in (0, 5m]"))
	}
	if c.RampRate <= 0 || c.MaxInFlight < 1 || c.ConnTimeout <= 0 || c.Workers < 1 {
		errs = append(errs, errors.New("-ramp-rate, -max-inflight, -conn-timeout and -publish-workers must be > 0"))
	}
	if c.Timeout <= 0 || c.Timeout > tokenTTL-time.Minute {
		errs = append(errs, fmt.Errorf("-timeout must be > 0 and under %v", tokenTTL-time.Minute))
	}
	if c.Procs < 1 || c.Procs > 8 || c.Conns/c.Procs < c.Channels {
		errs = append(errs, errors.New("-procs must be 1-8, with at least -channels connections per process"))
	}
	if len(c.HMACSecret) < 32 {
		errs = append(errs, errors.New("-jwt-hmac-secret must be the server's secret (at least 32 bytes)"))
	}
	return errors.Join(errs...)
}

func (c *BenchConfig) channel(k int) string { return fmt.Sprintf("tenant:%s:bench-%d", c.Tenant, k) }

func (c *BenchConfig) channelList() []string {
	out := make([]string, c.Channels)
	for k := range out {
		out[k] = c.channel(k)
	}
	return out
}

func (c *BenchConfig) serverPID() (int, error) {
	lc := Config{URL: c.URL, ServerPID: c.ServerPID}
	return lc.findServer()
}

func (c *BenchConfig) publisher() (publisher, error) {
	if c.Publish == "nats" {
		return newNATSPublisher(c.NATSURL)
	}
	return newHTTPPublisher(c.APIURL, c.APIKey, c.Workers)
}

// run is the common frame of every scenario: the fleet, the server
// process, the time bound.
type run struct {
	cfg      BenchConfig
	log      *slog.Logger
	bf       *benchFleet
	pid      int
	stopping atomic.Bool
	rep      *BenchReport
}

func newRun(cfg BenchConfig, scenario string) (*run, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pid, err := cfg.serverPID()
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, log: cfg.logger(), pid: pid}
	r.bf = newBenchFleet(cfg, func(i int) string { return cfg.channel(i % cfg.Channels) })
	r.rep = &BenchReport{Scenario: scenario, Server: cfg.Server, ServerPID: pid, Target: cfg.Conns, Channels: cfg.Channels, Publish: cfg.Publish}
	return r, nil
}

// ramp connects every subscriber at RampRate, MaxInFlight at a time, and
// starts its reader; it returns when all have subscribed or failed.
func (r *run) ramp(ctx context.Context, recover bool) (ok, failed int, took time.Duration, err error) {
	start := time.Now()
	sem := make(chan struct{}, r.cfg.MaxInFlight)
	results := make(chan error, len(r.bf.subs))
	interval := time.Duration(float64(time.Second) / r.cfg.RampRate)
	next := time.Now()
	for _, s := range r.bf.subs {
		if recover {
			s.recovering = true
		} else if wait := time.Until(next); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ok, failed, time.Since(start), fmt.Errorf("ramp: %w", ctx.Err())
			}
		}
		next = next.Add(interval)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ok, failed, time.Since(start), fmt.Errorf("ramp: %w", ctx.Err())
		}
		go func() {
			err := r.bf.connect(ctx, s, recover)
			<-sem
			if err == nil {
				r.bf.readers.Add(1)
				go r.bf.read(s, &r.stopping)
			}
			results <- err
		}()
	}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for range r.bf.subs {
		select {
		case err := <-results:
			if err != nil {
				failed++
				r.bf.base.errs.add("handshake", err)
			} else {
				ok++
			}
		case <-tick.C:
			r.log.Info("ramp", "server", r.cfg.Server, "subscribed", ok, "failed", failed, "target", len(r.bf.subs))
		case <-ctx.Done():
			return ok, failed, time.Since(start), fmt.Errorf("ramp: %w (%d subscribed)", ctx.Err(), ok)
		}
	}
	return ok, failed, time.Since(start), nil
}

// cut closes every connection abruptly and waits for the readers.
func (r *run) cut() {
	r.stopping.Store(true)
	for _, s := range r.bf.subs {
		if s.ws != nil {
			s.ws.CloseNow()
		}
	}
	r.bf.readers.Wait()
	r.stopping.Store(false)
}

func (r *run) proc() ProcStats {
	p, err := ReadProc(r.pid)
	if err != nil {
		r.log.Warn("read /proc", "err", err)
	}
	return p
}

// expected is how many publications subscribers should get in total, from
// the acked sets.
func (r *run) expected(st *pubStats) int64 {
	perChan := make([]int64, len(st.acked))
	for k, b := range st.acked {
		perChan[k] = int64(b.count())
	}
	var n int64
	for _, s := range r.bf.subs {
		if s.ws != nil {
			n += perChan[s.i%r.cfg.Channels]
		}
	}
	return n
}

// drain waits until subscribers got the expected count, or Drain.
func (r *run) drain(ctx context.Context, want int64) {
	deadline := time.Now().Add(r.cfg.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r.bf.deliveries.Load() >= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tally fills loss, duplicates and reordering from every subscriber.
func (r *run) tally(st *pubStats) {
	rep := r.rep
	for _, s := range r.bf.subs {
		if s.ws == nil {
			continue
		}
		want := st.acked[s.i%r.cfg.Channels]
		miss := s.seen.missing(want)
		rep.Lost += int64(miss)
		if miss > 0 {
			rep.SubsWithLoss++
		}
		rep.Duplicates += s.dups
		rep.Reordered += s.reorders
	}
	rep.Published = st.sent
	rep.PublishFailed = st.failed
	rep.PublishSeconds = st.seconds
	if st.seconds > 0 {
		rep.PublishRate = float64(st.sent-st.failed) / st.seconds
	}
	rep.Expected = r.expected(st)
	rep.Delivered = r.bf.deliveries.Load()
	q, _ := r.bf.hist.quantiles(0.5, 0.99)
	rep.LatencyP50Ms, rep.LatencyP99Ms, rep.LatencyMaxMs = q[0], q[1], r.bf.hist.maxMs()
	for k, v := range st.errs.snapshot() {
		r.addErr(k, v)
	}
}

func (r *run) addErr(k string, v int) {
	if r.rep.Errors == nil {
		r.rep.Errors = map[string]int{}
	}
	r.rep.Errors[k] += v
}

func (r *run) finish() {
	for k, v := range r.bf.base.errs.snapshot() {
		r.addErr(k, v)
	}
	r.rep.Dropped = int(r.bf.base.dropped.Load())
	r.rep.PingsAnswered = r.bf.base.pings.Load()
}

// BenchIdle opens Conns subscribed connections spread over Channels and
// reports the server's RSS per connection after Settle.
func BenchIdle(ctx context.Context, cfg BenchConfig) (*BenchReport, error) {
	// With Procs > 1 this process holds the first share and helpers the
	// rest, each ramping at its part of RampRate.
	own := cfg
	share := cfg.Conns / cfg.Procs
	if cfg.Procs > 1 {
		if cfg.Spawn == nil {
			return nil, errors.New("-procs: no way to start helper processes")
		}
		own.Conns = cfg.Conns - share*(cfg.Procs-1)
		own.RampRate = cfg.RampRate / float64(cfg.Procs)
	}
	r, err := newRun(own, "idle")
	if err != nil {
		return nil, err
	}
	r.rep.Target = cfg.Conns
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	defer r.cut()
	before := r.proc()
	start := time.Now()
	var helpers []*Helper
	defer func() {
		for _, h := range helpers {
			h.Stop()
		}
	}()
	for k := 1; k < cfg.Procs; k++ {
		h, err := cfg.Spawn(ctx, own.Conns+(k-1)*share, share, own.RampRate)
		if err != nil {
			return nil, fmt.Errorf("helper process %d: %w", k, err)
		}
		helpers = append(helpers, h)
	}
	ok, failed, _, err := r.ramp(ctx, false)
	if err != nil {
		return nil, err
	}
	for k, h := range helpers {
		hok, hfailed, err := h.Ready()
		if err != nil {
			return nil, fmt.Errorf("helper process %d: %w", k+1, err)
		}
		ok, failed = ok+hok, failed+hfailed
	}
	took := time.Since(start)
	afterRamp := r.proc()
	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	after := r.proc()
	rep := r.rep
	rep.Conns, rep.ConnectErrors, rep.RampSeconds = ok, failed, took.Seconds()
	rep.RSSBefore, rep.RSSAfter = before.RSS, after.RSS
	if ok > 0 {
		rep.RSSPerConnKiB = (float64(after.RSS) - float64(before.RSS)) / float64(ok) / 1024
	}
	rep.CPURampSeconds = (afterRamp.CPU - before.CPU).Seconds()
	rep.CPUSeconds = (after.CPU - afterRamp.CPU).Seconds()
	r.finish()
	return rep, nil
}

// HoldIdle opens cfg.Conns subscribed connections (subscribers cfg.First
// on), answering pings, until stop is called: the work of a helper process
// of an idle run.
func HoldIdle(ctx context.Context, cfg BenchConfig) (ok, failed int, stop func(), err error) {
	r, err := newRun(cfg, "idle")
	if err != nil {
		return 0, 0, nil, err
	}
	ok, failed, _, err = r.ramp(ctx, false)
	if err != nil {
		r.cut()
		return 0, 0, nil, err
	}
	return ok, failed, r.cut, nil
}

// BenchDeliver subscribes Conns connections spread over Channels (1: fan-out;
// Conns: a channel each), publishes Rate msg/s for Duration and reports
// latency, loss, duplicates, reordering and deliveries per server CPU-second.
func BenchDeliver(ctx context.Context, cfg BenchConfig, scenario string) (*BenchReport, error) {
	r, err := newRun(cfg, scenario)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	defer r.cut()
	pub, err := cfg.publisher()
	if err != nil {
		return nil, err
	}
	defer pub.close()
	before := r.proc()
	ok, failed, took, err := r.ramp(ctx, false)
	if err != nil {
		return nil, err
	}
	r.rep.Conns, r.rep.ConnectErrors, r.rep.RampSeconds = ok, failed, took.Seconds()
	time.Sleep(min(cfg.Settle, time.Second))
	r.log.Info("publishing", "server", cfg.Server, "rate", cfg.Rate, "duration", cfg.Duration, "subscribers", ok)
	p0 := r.proc()
	st := publishLoad(ctx, pub, cfg.channelList(), cfg.Rate, cfg.Duration, cfg.Workers, cfg.Pad)
	r.drain(ctx, r.expected(st))
	p1 := r.proc()
	r.tally(st)
	r.rep.RSSBefore, r.rep.RSSAfter = before.RSS, p1.RSS
	r.rep.CPUSeconds = (p1.CPU - p0.CPU).Seconds()
	if r.rep.CPUSeconds > 0 {
		r.rep.DeliveriesPerCPUSecond = float64(r.rep.Delivered) / r.rep.CPUSeconds
	}
	r.finish()
	return r.rep, nil
}

// BenchStorm subscribes Conns connections over Channels, publishes Rate
// msg/s for Duration, and StormAfter into it cuts every connection at once;
// each reconnects immediately and resubscribes with recovery from its last
// offset. It reports the time until all have recovered, loss across the
// storm, and (Pulse, with -metrics-url) stream reads per recovering client.
func BenchStorm(ctx context.Context, cfg BenchConfig) (*BenchReport, error) {
	r, err := newRun(cfg, "storm")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	defer r.cut()
	pub, err := cfg.publisher()
	if err != nil {
		return nil, err
	}
	defer pub.close()
	ok, failed, took, err := r.ramp(ctx, false)
	if err != nil {
		return nil, err
	}
	r.rep.Conns, r.rep.ConnectErrors, r.rep.RampSeconds = ok, failed, took.Seconds()
	if failed > 0 {
		return nil, fmt.Errorf("storm: %d of %d failed to subscribe before the storm: %v", failed, cfg.Conns, r.bf.base.errs.snapshot())
	}
	stDone := make(chan *pubStats, 1)
	p0 := r.proc()
	go func() {
		stDone <- publishLoad(ctx, pub, cfg.channelList(), cfg.Rate, cfg.Duration, cfg.Workers, cfg.Pad)
	}()
	select {
	case <-time.After(cfg.StormAfter):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	reads0, _ := r.historyReads(ctx)
	r.log.Info("storm: dropping every connection", "server", cfg.Server, "conns", ok)
	r.cut()
	dropAt := time.Now()
	rok, rfailed, _, err := r.ramp(ctx, true)
	if err != nil {
		return nil, err
	}
	var last time.Time
	recovered := 0
	for _, s := range r.bf.subs {
		if s.recovered {
			recovered++
		}
		if s.recoveredAt.After(last) {
			last = s.recoveredAt
		}
	}
	reads1, readsOK := r.historyReads(ctx)
	r.rep.StormReconnected, r.rep.StormFailed, r.rep.StormRecovered = rok, rfailed, recovered
	r.rep.StormSeconds = last.Sub(dropAt).Seconds()
	if readsOK && rok > 0 {
		r.rep.HistoryReadsPerClient = (reads1 - reads0) / float64(rok)
		r.rep.HistoryReads = reads1 - reads0
	} else {
		r.rep.HistoryReadsPerClient = -1
	}
	st := <-stDone
	r.drain(ctx, r.expected(st))
	p1 := r.proc()
	r.tally(st)
	r.rep.CPUSeconds = (p1.CPU - p0.CPU).Seconds()
	if r.rep.CPUSeconds > 0 {
		r.rep.DeliveriesPerCPUSecond = float64(r.rep.Delivered) / r.rep.CPUSeconds
	}
	r.finish()
	return r.rep, nil
}

// historyReads sums pulse_history_reads_total over its kinds; false when
// there is no -metrics-url.
func (r *run) historyReads(ctx context.Context) (float64, bool) {
	if r.cfg.MetricsURL == "" {
		return 0, false
	}
	v, err := scrapeSum(ctx, r.bf.base.scraper, r.cfg.MetricsURL, "pulse_history_reads_total")
	if err != nil {
		r.log.Warn("scrape history reads", "err", err)
		return 0, false
	}
	return v, true
}

// scrapeSum adds every sample of a (labelled) metric.
func scrapeSum(ctx context.Context, c *http.Client, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return sumSamples(resp.Body, name)
}
