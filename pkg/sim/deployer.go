package sim

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/events"
)

// phase is a deployment's state. A deployment walks
//
//	queued → starting → pull_images → create_network → provision_volumes →
//	start_containers → run_migrations → health_check → completed
//
// and any step may instead go to failed, then rolled_back. A step moves to
// itself for its next task (the next image, volume, container, migration
// chunk or health poll) and for a retry after a transient error.
type phase int

const (
	phaseQueued phase = iota
	phaseStarting
	phasePullImages
	phaseCreateNetwork
	phaseProvisionVolumes
	phaseStartContainers
	phaseRunMigrations
	phaseHealthCheck
	phaseCompleted
	phaseFailed
	phaseRolledBack
)

var phaseNames = [...]string{"queued", "starting", "pull_images", "create_network", "provision_volumes",
	"start_containers", "run_migrations", "health_check", "completed", "failed", "rolled_back"}

func (p phase) String() string { return phaseNames[p] }

// deployTransitions is the whole state machine: every transition the
// model makes is checked against it.
var deployTransitions = map[phase][]phase{
	phaseQueued:           {phaseStarting},
	phaseStarting:         {phasePullImages},
	phasePullImages:       {phasePullImages, phaseCreateNetwork, phaseFailed},
	phaseCreateNetwork:    {phaseCreateNetwork, phaseProvisionVolumes, phaseFailed},
	phaseProvisionVolumes: {phaseProvisionVolumes, phaseStartContainers, phaseFailed},
	phaseStartContainers:  {phaseStartContainers, phaseRunMigrations, phaseFailed},
	phaseRunMigrations:    {phaseRunMigrations, phaseHealthCheck, phaseFailed},
	phaseHealthCheck:      {phaseHealthCheck, phaseCompleted, phaseFailed},
	phaseFailed:           {phaseRolledBack},
}

func allowed(from, to phase) bool {
	for _, p := range deployTransitions[from] {
		if p == to {
			return true
		}
	}
	return false
}

// healthEvery is the real time between two heartbeats on system:health.
const healthEvery = 5 * time.Second

// risks are the failure probabilities per task attempt; tests raise them
// to reach every path quickly.
type risks struct {
	pullTransient, pullPermanent           float64
	networkTransient                       float64
	volumeTransient, volumePermanent       float64
	containerTransient, containerPermanent float64
	migrateTransient, migratePermanent     float64
	healthPermanent                        float64
}

var defaultRisks = risks{
	pullTransient, pullPermanent, networkTransient, volumeTransient, volumePermanent,
	containerTransient, containerPermanent, migrateTransient, migratePermanent, healthPermanent,
}

// task is one unit of work inside a step; each finished task is one
// progress event.
type task struct {
	phase      phase
	n, of      int // 1-based position within its step
	image      image
	volume     volume
	container  container
	containerN int
}

func (t task) title() string {
	switch t.phase {
	case phasePullImages:
		return fmt.Sprintf("Pulling images (%d/%d)", t.n, t.of)
	case phaseCreateNetwork:
		return "Creating network"
	case phaseProvisionVolumes:
		return fmt.Sprintf("Provisioning volumes (%d/%d)", t.n, t.of)
	case phaseStartContainers:
		return fmt.Sprintf("Starting containers (%d/%d)", t.n, t.of)
	case phaseRunMigrations:
		return fmt.Sprintf("Running migrations (%d/%d)", t.n, t.of)
	default:
		return fmt.Sprintf("Health check (poll %d)", t.n)
	}
}

type deployment struct {
	id      string
	tenant  *tenant
	prof    *profile
	phase   phase
	tasks   []task
	next    int // task running or about to run
	attempt int // of tasks[next], from 1
	node    string
	project string // compose project: <tenant>-<app>-<short id>
	subnet  string
	queued  time.Time
	started time.Time
	// progress only grows: 0 queued, 2 started, up to 99 while running.
	progress int
	reason   string
}

// deployer is the deployment model, plus the tenants' metrics and alerts
// (metrics.go) and the health beat, all on one simulated clock.
type deployer struct {
	*model
	cfg      Config
	arrivals *rng // who deploys what, when
	work     *rng // durations and outcomes of tasks
	logs     *rng // ids and numbers inside log lines
	mrng     *rng // metrics, incidents, alerts
	tenants  []*tenant
	weights  []float64 // tenants' share of deployments
	// popularity of each profile.
	popularity []float64
	meanGap    time.Duration // between two deployments, all tenants
	risks      risks

	active, queuedN, completed, failed int
	recent                             []bool // last outcomes, true = failed

	// onTransition, when set (tests), sees every state change.
	onTransition func(d *deployment, from, to phase)
}

// meanEventsPerDeployment sizes the arrival rate from Config.Rate.
func meanEventsPerDeployment() (events float64, dur time.Duration) {
	var w, e, d float64
	for _, p := range profiles {
		w += p.weight
		e += p.weight * (p.expectedTasks() + 3) // + queued, started, completed
		d += p.weight * float64(p.expectedDuration())
	}
	return e / w, time.Duration(d / w)
}

func newDeployer(cfg Config) (*deployer, error) {
	perDeploy, meanDur := meanEventsPerDeployment()
	// Deployments take minutes to emit their events: without a warm-up a
	// run would ramp up slowly to its rate. The model starts earlier and
	// reaches its steady state before Start; what it emits before Start is
	// not published, so the first published events include deployments
	// already under way.
	m, err := newModel(cfg.Start, (2 * meanDur).Round(time.Second), cfg.Tenants,
		events.TypeDeploymentQueued, events.TypeMetricsSample, events.TypeMonitoringAlert, events.TypeSystemHealth)
	if err != nil {
		return nil, err
	}
	dp := &deployer{
		model:    m,
		cfg:      cfg,
		arrivals: newRNG(cfg.Seed, "deployer/arrivals"),
		work:     newRNG(cfg.Seed, "deployer/work"),
		logs:     newRNG(cfg.Seed, "deployer/logs"),
		mrng:     newRNG(cfg.Seed, "deployer/metrics"),
		risks:    defaultRisks,
	}
	for _, p := range profiles {
		dp.popularity = append(dp.popularity, p.weight)
	}
	// Rate is events per real second; the model runs in simulated time.
	perSimSecond := cfg.Rate / cfg.Speed / perDeploy
	dp.meanGap = max(time.Duration(float64(time.Second)/perSimSecond), time.Microsecond)

	var total float64
	for range cfg.Tenants {
		w := dp.arrivals.lognormal(1, 0.5) // some tenants deploy more than others
		dp.weights = append(dp.weights, w)
		total += w
	}
	for i, id := range cfg.Tenants {
		// Enough worker slots for the tenant's expected load with a margin,
		// so the queue stays short yet bursts wait their turn.
		load := perSimSecond * dp.weights[i] / total * meanDur.Seconds()
		dp.tenants = append(dp.tenants, newTenant(id, max(2, int(math.Ceil(1.25*load))), dp.mrng))
	}
	dp.startMetrics()
	dp.sched.at(cfg.Start, func() {
		dp.every(0, cfg.simSpan(healthEvery), func() bool { dp.beat(); return true })
	})
	dp.sched.after(dp.arrivals.exp(dp.meanGap), dp.arrive)
	return dp, nil
}

func (dp *deployer) every(first, period time.Duration, fn func() bool) {
	dp.sched.every(first, max(period, time.Second), fn)
}

func (dp *deployer) transition(d *deployment, to phase) {
	if !allowed(d.phase, to) && dp.err == nil {
		dp.err = fmt.Errorf("sim: deployment %s: impossible transition %s → %s", d.id, d.phase, to)
	}
	if dp.onTransition != nil {
		dp.onTransition(d, d.phase, to)
	}
	d.phase = to
}

// arrive submits a new deployment and schedules the next arrival.
func (dp *deployer) arrive() {
	g := dp.arrivals
	t := dp.tenants[g.weighted(dp.weights)]
	p := &profiles[g.weighted(dp.popularity)]
	short := g.hex(6)
	d := &deployment{
		id:      "dep-" + short + g.hex(6),
		tenant:  t,
		prof:    p,
		phase:   phaseQueued,
		project: strings.ToLower(t.id) + "-" + p.name + "-" + short,
		queued:  dp.now(),
	}
	d.tasks = planTasks(p, g)
	t.queue = append(t.queue, d)
	dp.queuedN++
	wait := time.Duration(len(t.queue)-1) * p.expectedDuration() / time.Duration(t.slots)
	eta := dp.now().Add(dispatchDelay + wait + d.remaining()).Truncate(time.Second)
	dp.publish(d, events.TypeDeploymentQueued, events.DeploymentStarting, "Queued", eta,
		fmt.Sprintf("Deployment %s of %s %s queued for %s (position %d)", d.id, p.name, p.version, t.id, len(t.queue)))
	dp.dispatch(t)
	dp.sched.after(g.exp(dp.meanGap), dp.arrive)
}

// planTasks lays out every task of a deployment up front, so progress
// can be computed as a share of tasks done.
func planTasks(p *profile, g *rng) []task {
	var ts []task
	for i, im := range p.images {
		ts = append(ts, task{phase: phasePullImages, n: i + 1, of: len(p.images), image: im})
	}
	ts = append(ts, task{phase: phaseCreateNetwork, n: 1, of: 1})
	for i, v := range p.volumes {
		ts = append(ts, task{phase: phaseProvisionVolumes, n: i + 1, of: len(p.volumes), volume: v})
	}
	for i, c := range p.containers {
		ts = append(ts, task{phase: phaseStartContainers, n: i + 1, of: len(p.containers), container: c, containerN: i})
	}
	chunks := g.between(p.migration.chunksMin, p.migration.chunksMax)
	for i := range chunks {
		ts = append(ts, task{phase: phaseRunMigrations, n: i + 1, of: chunks})
	}
	polls := g.between(p.health.pollsMin, p.health.pollsMax)
	for i := range polls {
		ts = append(ts, task{phase: phaseHealthCheck, n: i + 1, of: polls})
	}
	return ts
}

// dispatch starts queued deployments of t while it has free slots.
func (dp *deployer) dispatch(t *tenant) {
	for t.running < t.slots && len(t.queue) > 0 {
		d := t.queue[0]
		t.queue = t.queue[1:]
		t.running++
		dp.sched.after(dp.work.duration(dispatchDelay, 0.5), func() { dp.begin(d) })
	}
}

func (dp *deployer) begin(d *deployment) {
	dp.queuedN--
	dp.active++
	dp.transition(d, phaseStarting)
	d.started = dp.now()
	d.node = pick(dp.logs, nodes)
	d.progress = 2
	d.subnet = fmt.Sprintf("10.%d.%d.0/24", dp.logs.between(16, 31), dp.logs.intn(256))
	dp.publish(d, events.TypeDeploymentStarted, events.DeploymentStarting, "Starting on "+d.node, dp.eta(d),
		fmt.Sprintf("Worker %s picked up %s after %s in queue", d.node, d.id, fmtDur(dp.now().Sub(d.queued))),
		fmt.Sprintf("Rendering compose project %s (%s %s, %d services)", d.project, d.prof.name, d.prof.version, len(d.prof.containers)))
	dp.runTask(d)
}

// runTask schedules the end of the current task attempt, whose outcome is
// drawn then: done, a transient error (retried with backoff), or a
// permanent one.
func (dp *deployer) runTask(d *deployment) {
	t := d.tasks[d.next]
	if d.attempt == 0 {
		d.attempt = 1
	}
	dp.transition(d, t.phase)
	transient, permanent := dp.taskRisks(t, d)
	r := dp.work.float()
	var took time.Duration
	switch {
	case t.phase == phaseHealthCheck && t.n == t.of && r < permanent:
		took = healthTimeout - time.Duration(t.of-1)*pollInterval
	default:
		took = dp.taskDuration(d, t)
	}
	dp.sched.after(took+dp.work.duration(stepGap, 0.3), func() {
		switch {
		case r < permanent:
			dp.fail(d, t, dp.permanentError(d, t))
		case r < permanent+transient:
			dp.retry(d, t, dp.transientError(d, t))
		default:
			dp.finishTask(d, t, took)
		}
	})
}

func (dp *deployer) finishTask(d *deployment, t task, took time.Duration) {
	lines := dp.taskLines(d, t, took)
	d.next++
	d.attempt = 0
	if d.next == len(d.tasks) {
		d.progress = 99
		dp.publish(d, events.TypeDeploymentProgress, events.DeploymentInProgress, t.title(), dp.now().Add(time.Second), lines...)
		dp.sched.after(dp.work.duration(time.Second, 0.3), func() { dp.complete(d) })
		return
	}
	d.progress = 5 + 94*d.next/len(d.tasks)
	dp.publish(d, events.TypeDeploymentProgress, events.DeploymentInProgress, t.title(), dp.eta(d), lines...)
	dp.runTask(d)
}

func (dp *deployer) retry(d *deployment, t task, errLine string) {
	if d.attempt >= maxAttempts {
		dp.fail(d, t, fmt.Sprintf("%s (gave up after %d attempts)", errLine, d.attempt))
		return
	}
	backoff := time.Duration(5<<(d.attempt-1)) * time.Second
	backoff += time.Duration(dp.work.intn(2000)) * time.Millisecond
	dp.publish(d, events.TypeDeploymentProgress, events.DeploymentInProgress, t.title(), dp.eta(d).Add(backoff),
		errLine, fmt.Sprintf("Retrying %s in %s (attempt %d/%d)", strings.ToLower(t.title()), fmtDur(backoff), d.attempt+1, maxAttempts))
	d.attempt++
	dp.sched.after(backoff, func() { dp.runTask(d) })
}

func (dp *deployer) complete(d *deployment) {
	dp.transition(d, phaseCompleted)
	d.progress = 100
	url := fmt.Sprintf("https://%s-%s.%s.apps.pulse.example", d.prof.name, d.project[strings.LastIndexByte(d.project, '-')+1:], hostLabel(d.tenant.id))
	ev := dp.deploymentData(d, events.DeploymentCompleted, "Completed", time.Time{},
		"Instance ready at "+url,
		fmt.Sprintf("TLS certificate for %s issued (Let's Encrypt R11, expires %s)", strings.TrimPrefix(url, "https://"), dp.now().Add(90*24*time.Hour).Format("2006-01-02")),
		fmt.Sprintf("Deployment %s finished in %s", d.id, fmtDur(dp.now().Sub(d.started))))
	ev.URL = url
	dp.emit(events.TypeDeploymentCompleted, d.tenant.id, d.id, ev)
	if dp.logs.chance(0.3) { // a new instance rather than a redeploy
		d.tenant.instances++
	}
	dp.end(d, false)
}

func (dp *deployer) fail(d *deployment, t task, reason string) {
	dp.transition(d, phaseFailed)
	d.reason = reason
	ev := dp.deploymentData(d, events.DeploymentFailed, t.title(), time.Time{},
		reason,
		fmt.Sprintf("Deployment %s failed at %q after %s", d.id, t.title(), fmtDur(dp.now().Sub(d.started))),
		"Rolling back")
	ev.Reason = reason
	dp.emit(events.TypeDeploymentFailed, d.tenant.id, d.id, ev)
	dp.sched.after(dp.work.duration(rollbackTime, 0.4), func() { dp.rollBack(d) })
}

func (dp *deployer) rollBack(d *deployment) {
	began := dp.now()
	dp.transition(d, phaseRolledBack)
	var lines []string
	for _, t := range d.tasks[:d.next] {
		if t.phase == phaseStartContainers {
			lines = append(lines, fmt.Sprintf(" Container %s-%s-1  Removed", d.project, t.container.service))
		}
	}
	for _, t := range d.tasks[:d.next] {
		if t.phase == phaseProvisionVolumes {
			lines = append(lines, fmt.Sprintf(" Volume %s_%s  Removed", d.project, t.volume.name))
		}
	}
	if d.next > len(d.prof.images) {
		lines = append(lines, fmt.Sprintf(" Network %s_default  Removed", d.project))
	}
	lines = append(lines, fmt.Sprintf("Rollback of %s finished: no resources left (failed after %s)", d.id, fmtDur(began.Sub(d.started))))
	ev := dp.deploymentData(d, events.DeploymentRolledBack, "Rolled back", time.Time{}, lines...)
	ev.Reason = d.reason
	dp.emit(events.TypeDeploymentRolledBack, d.tenant.id, d.id, ev)
	dp.end(d, true)
}

// end frees the deployment's slot and starts the next queued one.
func (dp *deployer) end(d *deployment, failed bool) {
	dp.active--
	if failed {
		dp.failed++
	} else {
		dp.completed++
	}
	dp.recent = append(dp.recent, failed)
	if len(dp.recent) > 20 {
		dp.recent = dp.recent[1:]
	}
	d.tenant.running--
	dp.dispatch(d.tenant)
}

// remaining is the typical time the tasks not yet done still take.
func (d *deployment) remaining() time.Duration {
	var r time.Duration
	for _, t := range d.tasks[d.next:] {
		r += typicalDuration(d.prof, t) + stepGap
	}
	return r
}

func (dp *deployer) eta(d *deployment) time.Time {
	return dp.now().Add(d.remaining()).Truncate(time.Second)
}

func (dp *deployer) deploymentData(d *deployment, status, step string, eta time.Time, logs ...string) events.Deployment {
	return events.Deployment{
		TenantID:            d.tenant.id,
		DeploymentID:        d.id,
		InstanceType:        d.prof.name,
		Version:             d.prof.version,
		Status:              status,
		Progress:            d.progress,
		CurrentStep:         step,
		Logs:                logs,
		Node:                d.node,
		EstimatedCompletion: eta,
		Timestamp:           dp.now(),
	}
}

func (dp *deployer) publish(d *deployment, typ, status, step string, eta time.Time, logs ...string) {
	dp.emit(typ, d.tenant.id, d.id, dp.deploymentData(d, status, step, eta, logs...))
}

// beat publishes the deployer's heartbeat on system:health.
func (dp *deployer) beat() {
	status := events.HealthOK
	var bad int
	for _, f := range dp.recent {
		if f {
			bad++
		}
	}
	if bad >= 3 {
		status = events.HealthDegraded
	}
	var firing, instances int64
	for _, t := range dp.tenants {
		firing += int64(len(t.firing))
		instances += int64(t.instances)
	}
	dp.emit(events.TypeSystemHealth, "", "deployer-sim", events.Health{
		Component:     "deployer-sim",
		Status:        status,
		UptimeSeconds: int64(dp.now().Sub(dp.start) / time.Second),
		Counters: map[string]int64{
			"tenants":              int64(len(dp.tenants)),
			"deploymentsActive":    int64(dp.active),
			"deploymentsQueued":    int64(dp.queuedN),
			"deploymentsCompleted": int64(dp.completed),
			"deploymentsFailed":    int64(dp.failed),
			"instances":            instances,
			"alertsFiring":         firing,
		},
		Timestamp: dp.now(),
	})
}

// hostLabel turns a tenant id into a DNS label.
func hostLabel(s string) string {
	s = strings.ToLower(strings.ReplaceAll(s, "_", "-"))
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.Trim(s, "-")
}

// fmtDur prints a duration the way deploy tools do: 3m12s, 4.2s.
func fmtDur(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// RunDeployer publishes the deployer's events — deployments on
// tenant:<t>:deployments, metric samples on tenant:<t>:metrics, threshold
// alerts on tenant:<t>:monitoring and heartbeats on system:health — until
// ctx is done or cfg.Duration has passed (then it returns nil, once every
// published event is acknowledged). It returns an error for an invalid cfg
// or when an event could not be stored within cfg.RetryFor.
func RunDeployer(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults(DefaultDeployerSpeed)
	dp, err := newDeployer(cfg)
	if err != nil {
		return err
	}
	return run(ctx, js, cfg, "deployer", dp.model)
}
