package sim

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pulseplatform/pulse/pkg/events"
)

// tenant is one tenant's state in the deployer model: its worker slots and
// queue, and what its dashboards show.
type tenant struct {
	id      string
	slots   int
	running int
	queue   []*deployment

	instances int
	tz        time.Duration // offset of the tenant's users from UTC: traffic follows their day
	peakRPS   float64
	cpuBase   float64
	memBase   float64
	disk      float64
	diskGrow  float64 // percent per hour
	cpuNoise  float64 // AR(1) noise state
	memNoise  float64
	incident  *incident
	nextIncid time.Time
	lastAt    time.Time
	firing    map[string]*events.MonitoringAlert // by "resource/severity"
}

// incident is a temporary excursion: a CPU-bound job, a memory leak until
// the process restarts, or a traffic surge.
type incident struct {
	kind       string // cpu, memory, traffic
	start, end time.Time
	amp        float64
}

// thresholds are the alert limits per resource, with the hysteresis that
// stops an alert from flapping: it resolves only once the value is that
// far below its threshold.
var thresholds = []struct {
	resource          string
	warning, critical float64
	hysteresis        float64
}{
	{events.ResourceCPU, 80, 90, 5},
	{events.ResourceMemory, 85, 95, 3},
	{events.ResourceDisk, 80, 90, 2},
}

const (
	incidentEvery    = 45 * time.Minute // mean gap between two incidents of a tenant
	metricsMinPeriod = 10 * time.Second
	metricsRealGap   = 2 * time.Second // at most one sample per tenant per this much real time
)

func newTenant(id string, slots int, g *rng) *tenant {
	return &tenant{
		id:        id,
		slots:     slots,
		instances: g.between(2, 9),
		tz:        time.Duration(pick(g, []int{-8, -5, -3, 0, 1, 2, 5, 8})) * time.Hour,
		peakRPS:   g.lognormal(400, 0.8),
		cpuBase:   10 + 25*g.float(),
		memBase:   40 + 20*g.float(),
		disk:      35 + 40*g.float(),
		diskGrow:  0.05 + 0.35*g.float(),
		firing:    make(map[string]*events.MonitoringAlert),
	}
}

func (dp *deployer) metricsPeriod() time.Duration {
	if dp.cfg.MetricsInterval > 0 {
		return dp.cfg.MetricsInterval
	}
	return max(metricsMinPeriod, dp.cfg.simSpan(metricsRealGap)).Round(time.Second)
}

// startMetrics schedules each tenant's samples, staggered so a dashboard
// of many tenants does not get them all at the same instant.
func (dp *deployer) startMetrics() {
	period := dp.metricsPeriod()
	for i, t := range dp.tenants {
		t.lastAt = dp.now()
		t.nextIncid = dp.now().Add(dp.mrng.exp(incidentEvery))
		first := period * time.Duration(i+1) / time.Duration(len(dp.tenants))
		dp.every(first, period, func() bool { dp.sample(t); return true })
	}
}

// load is the share of the daily peak the tenant's users put on it now: a
// trough at 04:00 and a peak at 16:00 their time, quieter at weekends.
func load(now time.Time, tz time.Duration) float64 {
	local := now.Add(tz)
	h := float64(local.Hour()) + float64(local.Minute())/60
	l := 0.5 - 0.5*math.Cos(2*math.Pi*(h-4)/24)
	if wd := local.Weekday(); wd == time.Saturday || wd == time.Sunday {
		l *= 0.55
	}
	return l
}

func (dp *deployer) sample(t *tenant) {
	g := dp.mrng
	now := dp.now()
	hours := now.Sub(t.lastAt).Hours()
	t.lastAt = now

	if t.incident != nil && !now.Before(t.incident.end) {
		t.incident = nil
	}
	if t.incident == nil && !now.Before(t.nextIncid) {
		t.incident = dp.newIncident(now)
		t.nextIncid = t.incident.end.Add(g.exp(incidentEvery))
	}
	var cpuX, memX, rpsX float64 = 0, 0, 1
	if in := t.incident; in != nil {
		elapsed := now.Sub(in.start).Minutes()
		switch in.kind {
		case "cpu":
			ramp := math.Min(1, elapsed/1.5) * math.Min(1, in.end.Sub(now).Minutes()/1.5+0.2)
			cpuX = in.amp * ramp
		case "memory":
			memX = in.amp * elapsed // leaks until the restart at in.end
		default:
			rpsX = in.amp
			cpuX = 12 * (in.amp - 1)
		}
	}

	l := load(now, t.tz)
	busy := float64(t.running)
	t.cpuNoise = 0.7*t.cpuNoise + g.normal(0, 2.5)
	t.memNoise = 0.9*t.memNoise + g.normal(0, 0.8)
	rps := t.peakRPS * (0.12 + 0.88*l) * g.lognormal(1, 0.08) * rpsX
	cpu := clamp(t.cpuBase+45*l+math.Min(20, 5*busy)+cpuX+t.cpuNoise, 0.5, 100)
	mem := clamp(t.memBase+12*l+math.Min(10, 2*busy)+memX+t.memNoise, 5, 100)
	t.disk = clamp(t.disk+t.diskGrow*hours+g.normal(0, 0.05), 1, 99.5)
	if t.disk > 92 && g.chance(0.3) { // log rotation and a cleanup job free space
		t.disk -= 15 + 10*g.float()
	}
	s := events.MetricsSample{
		TenantID:        t.id,
		CPU:             round1(cpu),
		Memory:          round1(mem),
		Disk:            round1(t.disk),
		Requests:        int(math.Round(rps)),
		NetworkIn:       int64(rps * g.lognormal(2200, 0.1)),
		NetworkOut:      int64(rps * g.lognormal(18000, 0.15)),
		ActiveInstances: t.instances,
		Timestamp:       now,
	}
	dp.emit(events.TypeMetricsSample, t.id, t.id, s)
	dp.checkAlerts(t, s)
}

func (dp *deployer) newIncident(now time.Time) *incident {
	g := dp.mrng
	switch g.intn(3) {
	case 0:
		return &incident{kind: "cpu", start: now, end: now.Add(g.duration(8*time.Minute, 0.4)), amp: 35 + 20*g.float()}
	case 1: // percent per minute
		return &incident{kind: "memory", start: now, end: now.Add(g.duration(12*time.Minute, 0.3)), amp: 2 + 2*g.float()}
	default:
		return &incident{kind: "traffic", start: now, end: now.Add(g.duration(10*time.Minute, 0.4)), amp: 2 + 2*g.float()}
	}
}

// checkAlerts fires an alert when a value reaches a threshold and resolves
// it when the value falls back below threshold − hysteresis. Warning and
// critical are separate alerts.
func (dp *deployer) checkAlerts(t *tenant, s events.MetricsSample) {
	values := map[string]float64{events.ResourceCPU: s.CPU, events.ResourceMemory: s.Memory, events.ResourceDisk: s.Disk}
	for _, th := range thresholds {
		v := values[th.resource]
		for _, lvl := range []struct {
			severity string
			limit    float64
		}{{events.SeverityWarning, th.warning}, {events.SeverityCritical, th.critical}} {
			key := th.resource + "/" + lvl.severity
			a, firing := t.firing[key]
			switch {
			case !firing && v >= lvl.limit:
				a = &events.MonitoringAlert{
					TenantID:  t.id,
					AlertID:   dp.mrng.id("alt-", 12),
					Status:    events.AlertFiring,
					Severity:  lvl.severity,
					Resource:  th.resource,
					Value:     v,
					Threshold: lvl.limit,
					Message:   fmt.Sprintf("%s at %.1f%% on %s: above the %s threshold of %.0f%%", resourceName(th.resource), v, t.id, lvl.severity, lvl.limit),
					StartsAt:  s.Timestamp,
					Timestamp: s.Timestamp,
				}
				t.firing[key] = a
				dp.emit(events.TypeMonitoringAlert, t.id, a.AlertID, *a)
			case firing && v < lvl.limit-th.hysteresis:
				r := *a
				r.Status = events.AlertResolved
				r.Value = v
				r.EndsAt = s.Timestamp
				r.Timestamp = s.Timestamp
				r.Message = fmt.Sprintf("%s back to %.1f%% on %s, below the %s threshold of %.0f%% (firing for %s)",
					resourceName(th.resource), v, t.id, lvl.severity, lvl.limit, fmtDur(s.Timestamp.Sub(a.StartsAt)))
				delete(t.firing, key)
				dp.emit(events.TypeMonitoringResolved, t.id, r.AlertID, r)
			}
		}
	}
}

func resourceName(r string) string {
	if r == events.ResourceCPU {
		return "CPU"
	}
	return strings.ToUpper(r[:1]) + r[1:]
}
