package sim

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pulseplatform/pulse/pkg/events"
)

// Every transition of the deployment state machine is reachable, and the
// model never makes one outside it (newDeployer's transition check would
// fail the run).
func TestDeploymentStateMachineReachesEveryTransition(t *testing.T) {
	t.Parallel()
	dp := mustDeployer(t, deployerCfg(11, 20))
	// Risky enough that even the rare paths (the network step failing three
	// times) happen within a few thousand deployments.
	dp.risks = risks{
		pullTransient: 0.3, pullPermanent: 0.03, networkTransient: 0.3,
		volumeTransient: 0.3, volumePermanent: 0.03, containerTransient: 0.3, containerPermanent: 0.03,
		migrateTransient: 0.3, migratePermanent: 0.03, healthPermanent: 0.1,
	}
	seen := map[[2]phase]int{}
	dp.onTransition = func(_ *deployment, from, to phase) { seen[[2]phase{from, to}]++ }
	simulate(t, "deployer", 11, dp.model, testStart.Add(2*time.Hour))
	for from, tos := range deployTransitions {
		for _, to := range tos {
			if seen[[2]phase{from, to}] == 0 {
				t.Errorf("transition %s → %s never happened", from, to)
			}
		}
	}
	for tr := range seen {
		if !allowed(tr[0], tr[1]) {
			t.Errorf("impossible transition %s → %s", tr[0], tr[1])
		}
	}
}

func TestTransitionOutsideTheMachineFailsTheRun(t *testing.T) {
	t.Parallel()
	dp := mustDeployer(t, deployerCfg(1, 1))
	d := &deployment{id: "dep-x", phase: phaseQueued}
	dp.transition(d, phaseCompleted)
	if dp.err == nil || !strings.Contains(dp.err.Error(), "impossible transition queued → completed") {
		t.Fatalf("err = %v", dp.err)
	}
}

// Seen from a portal, each deployment's events tell a coherent story:
// queued, started, progress that never goes back, then completed or failed
// and rolled back, and nothing after.
func TestDeploymentEventsTellOneStoryEach(t *testing.T) {
	t.Parallel()
	recs := simulate(t, "deployer", 5, mustDeployer(t, deployerCfg(5, 5)).model, testStart.Add(2*time.Hour))
	type story struct {
		types    []string
		progress int
		last     time.Time
	}
	stories := map[string]*story{}
	for _, r := range recs {
		if !strings.HasPrefix(r.ev.Type, "io.pulse.deployment.") {
			continue
		}
		d := decode[events.Deployment](t, r)
		s := stories[d.DeploymentID]
		if s == nil {
			s = &story{}
			stories[d.DeploymentID] = s
		}
		if r.ev.Subject != d.DeploymentID || !r.ev.Time.Equal(d.Timestamp) {
			t.Fatalf("envelope does not match data: %s", r.raw)
		}
		if d.Progress < s.progress || d.Timestamp.Before(s.last) {
			t.Fatalf("%s goes back: %d%% after %d%%", d.DeploymentID, d.Progress, s.progress)
		}
		s.progress, s.last = d.Progress, d.Timestamp
		s.types = append(s.types, strings.TrimPrefix(r.ev.Type, "io.pulse.deployment."))
	}
	var done, failed, underway int
	for id, s := range stories {
		seq := strings.Join(s.types, " ")
		if !strings.HasPrefix(seq, "queued") {
			underway++ // queued during the warm-up, before the first published event
			continue
		}
		switch {
		case strings.HasSuffix(seq, "progress completed"):
			done++
		case strings.HasSuffix(seq, " failed rolled_back"):
			failed++
		case strings.Contains(seq, "completed") || strings.Contains(seq, "rolled_back"):
			t.Fatalf("%s: events after the end: %s", id, seq)
		default:
			continue // still running when the simulation stopped
		}
		if len(s.types) > 1 && s.types[1] != "started" {
			t.Fatalf("%s: %s", id, seq)
		}
		for _, typ := range s.types[2 : len(s.types)-1] {
			if typ != "progress" && typ != "failed" {
				t.Fatalf("%s: %s", id, seq)
			}
		}
	}
	if underway == 0 || underway > len(stories)/10 {
		t.Fatalf("%d of %d deployments were under way at the start: the warm-up is missing or too long", underway, len(stories))
	}
	share := float64(failed) / float64(done+failed)
	if done < 500 || share < 0.01 || share > 0.1 {
		t.Fatalf("%d completed, %d failed (%.1f%%): want a few percent failures", done, failed, 100*share)
	}
}

// Durations depend on the application: a wazuh takes minutes, a grafana
// well under one.
func TestStepDurationsDependOnTheApplication(t *testing.T) {
	t.Parallel()
	recs := simulate(t, "deployer", 9, mustDeployer(t, deployerCfg(9, 5)).model, testStart.Add(2*time.Hour))
	started := map[string]time.Time{}
	total := map[string]time.Duration{}
	count := map[string]int{}
	for _, r := range recs {
		switch r.ev.Type {
		case events.TypeDeploymentStarted:
			started[r.ev.Subject] = r.ev.Time
		case events.TypeDeploymentCompleted:
			if _, ok := started[r.ev.Subject]; !ok {
				continue // started during the warm-up
			}
			d := decode[events.Deployment](t, r)
			total[d.InstanceType] += r.ev.Time.Sub(started[r.ev.Subject])
			count[d.InstanceType]++
		}
	}
	mean := func(app string) time.Duration { return total[app] / time.Duration(max(1, count[app])) }
	for app := range count {
		t.Logf("%s: %d deployments, mean %s", app, count[app], mean(app).Round(time.Second))
	}
	if mean("wazuh") < 3*mean("grafana") || mean("wazuh") < 2*time.Minute || mean("grafana") > time.Minute {
		t.Fatalf("mean deployment time: wazuh %s, grafana %s, odoo %s", mean("wazuh"), mean("grafana"), mean("odoo"))
	}
}

func TestMonitoringAlertsFireAndResolveInPairs(t *testing.T) {
	t.Parallel()
	dp := mustDeployer(t, deployerCfg(4, 1))
	recs := simulate(t, "deployer", 4, dp.model, testStart.Add(12*time.Hour))
	firing := map[string]events.MonitoringAlert{}
	var fired, resolved int
	for _, r := range recs {
		switch r.ev.Type {
		case events.TypeMonitoringAlert:
			a := decode[events.MonitoringAlert](t, r)
			if _, dup := firing[a.AlertID]; dup || a.Value < a.Threshold {
				t.Fatalf("bad alert %s", r.raw)
			}
			for _, f := range firing {
				if f.TenantID == a.TenantID && f.Resource == a.Resource && f.Severity == a.Severity {
					t.Fatalf("second %s %s alert for %s while one fires", a.Severity, a.Resource, a.TenantID)
				}
			}
			firing[a.AlertID] = a
			fired++
		case events.TypeMonitoringResolved:
			a := decode[events.MonitoringAlert](t, r)
			f, ok := firing[a.AlertID]
			if !ok || a.Value >= a.Threshold || f.Threshold != a.Threshold || f.Resource != a.Resource || !a.StartsAt.Equal(f.StartsAt) {
				t.Fatalf("resolved without a matching alert: %s", r.raw)
			}
			delete(firing, a.AlertID)
			resolved++
		}
	}
	var stillFiring int
	for _, tn := range dp.tenants {
		stillFiring += len(tn.firing)
	}
	if len(firing) != stillFiring {
		t.Fatalf("%d alerts unresolved in the events, %d firing in the model", len(firing), stillFiring)
	}
	if fired < 10 || resolved < fired-stillFiring {
		t.Fatalf("%d fired, %d resolved", fired, resolved)
	}
}

// Traffic follows the tenant's day: afternoons are busier than nights.
func TestMetricsHaveADailyShape(t *testing.T) {
	t.Parallel()
	cfg := deployerCfg(8, 0.01, "acme")
	cfg.MetricsInterval = 5 * time.Minute
	dp := mustDeployer(t, cfg)
	tz := dp.tenants[0].tz
	var day, night []float64
	for _, r := range simulate(t, "deployer", 8, dp.model, testStart.Add(4*24*time.Hour)) {
		if r.ev.Type != events.TypeMetricsSample {
			continue
		}
		s := decode[events.MetricsSample](t, r)
		if s.CPU < 0 || s.CPU > 100 || s.Memory < 0 || s.Memory > 100 || s.Disk < 0 || s.Disk > 100 {
			t.Fatalf("sample out of range: %s", r.raw)
		}
		switch h := s.Timestamp.Add(tz).Hour(); {
		case h >= 13 && h < 18:
			day = append(day, float64(s.Requests))
		case h >= 2 && h < 6:
			night = append(night, float64(s.Requests))
		}
	}
	if avg(day) < 2*avg(night) {
		t.Fatalf("afternoon %.0f req/s, night %.0f req/s: no daily shape", avg(day), avg(night))
	}
}

func avg(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / math.Max(1, float64(len(xs)))
}
