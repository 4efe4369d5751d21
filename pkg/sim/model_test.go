package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/events"
)

var testStart = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// record is one encoded event, as the publisher would send it.
type record struct {
	subject string
	ev      events.Event
	raw     []byte
}

// simulate runs m until its clock passes until and encodes every event.
func simulate(tb testing.TB, name string, seed int64, m *model, until time.Time) []record {
	tb.Helper()
	var out []record
	for {
		at, ok := m.sched.peek()
		if !ok || at.After(until) {
			return out
		}
		es, _, err := m.step()
		if err != nil {
			tb.Fatal(err)
		}
		if at.Before(m.start) {
			continue // warm-up, not published
		}
		for _, e := range es {
			raw, err := encode(name, seed, int64(len(out)), e)
			if err != nil {
				tb.Fatal(err)
			}
			ev, err := events.Parse(raw)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, record{subject: e.ch.Subject(), ev: ev, raw: raw})
		}
	}
}

func deployerCfg(seed int64, rate float64, tenants ...string) Config {
	if len(tenants) == 0 {
		tenants = []string{"acme", "globex", "initech"}
	}
	return Config{Tenants: tenants, Rate: rate, Seed: seed, Start: testStart}.withDefaults(DefaultDeployerSpeed)
}

func billingCfg(seed int64, rate float64, tenants ...string) Config {
	if len(tenants) == 0 {
		tenants = []string{"acme", "globex", "initech"}
	}
	return Config{Tenants: tenants, Rate: rate, Seed: seed, Start: testStart}.withDefaults(DefaultBillingSpeed)
}

func mustDeployer(tb testing.TB, cfg Config) *deployer {
	tb.Helper()
	dp, err := newDeployer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return dp
}

func mustBilling(tb testing.TB, cfg Config) *billing {
	tb.Helper()
	b, err := newBilling(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func decode[T any](tb testing.TB, r record) T {
	tb.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(r.ev.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("%s: %v: %s", r.ev.Type, err, r.ev.Data)
	}
	return v
}

var (
	validatorOnce sync.Once
	validator     *events.Validator
	validatorErr  error
)

func schemaValidator(tb testing.TB) *events.Validator {
	tb.Helper()
	validatorOnce.Do(func() { validator, validatorErr = events.NewValidator() })
	if validatorErr != nil {
		tb.Fatal(validatorErr)
	}
	return validator
}

// checkEvents validates every event against its schema and checks that it
// is on its type's channel, and returns how many of each type there are.
func checkEvents(tb testing.TB, recs []record) map[string]int {
	tb.Helper()
	v := schemaValidator(tb)
	counts := map[string]int{}
	for _, r := range recs {
		if err := v.Validate(r.raw); err != nil {
			tb.Fatalf("%v\n%s", err, r.raw)
		}
		info, _ := events.Lookup(r.ev.Type)
		ch, err := channel.FromSubject(r.subject)
		if err != nil {
			tb.Fatal(err)
		}
		if want := info.ChannelFor(ch.Tenant()); ch.Name() != want {
			tb.Fatalf("%s published on %s, want %s", r.ev.Type, ch.Name(), want)
		}
		var tenant struct {
			TenantID string `json:"tenantId"`
		}
		if err := json.Unmarshal(r.ev.Data, &tenant); err != nil {
			tb.Fatal(err)
		}
		if ch.Namespace() == channel.Tenant && tenant.TenantID != ch.Tenant() {
			tb.Fatalf("event of tenant %q on %s", tenant.TenantID, ch.Name())
		}
		counts[r.ev.Type]++
	}
	return counts
}

func TestModelsAreDeterministic(t *testing.T) {
	t.Parallel()
	runs := map[string]func(seed int64) []record{
		"deployer": func(seed int64) []record {
			return simulate(t, "deployer", seed, mustDeployer(t, deployerCfg(seed, 5)).model, testStart.Add(30*time.Minute))
		},
		"billing": func(seed int64) []record {
			return simulate(t, "billing", seed, mustBilling(t, billingCfg(seed, 5)).model, testStart.Add(120*day))
		},
	}
	for name, sim := range runs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			join := func(rs []record) []byte {
				var b bytes.Buffer
				for _, r := range rs {
					fmt.Fprintf(&b, "%s %s\n", r.subject, r.raw)
				}
				return b.Bytes()
			}
			a, b, c := sim(42), sim(42), sim(43)
			if len(a) < 200 {
				t.Fatalf("only %d events", len(a))
			}
			if !bytes.Equal(join(a), join(b)) {
				t.Fatal("same seed, different events")
			}
			if bytes.Equal(join(a[:100]), join(c[:min(100, len(c))])) {
				t.Fatal("different seeds, same events")
			}
		})
	}
}

func TestDeployerEventsMatchTheirSchemas(t *testing.T) {
	t.Parallel()
	recs := simulate(t, "deployer", 7, mustDeployer(t, deployerCfg(7, 2)).model, testStart.Add(3*time.Hour))
	counts := checkEvents(t, recs)
	t.Logf("%d events: %v", len(recs), counts)
	for _, typ := range []string{
		events.TypeDeploymentQueued, events.TypeDeploymentStarted, events.TypeDeploymentProgress,
		events.TypeDeploymentCompleted, events.TypeDeploymentFailed, events.TypeDeploymentRolledBack,
		events.TypeMetricsSample, events.TypeMonitoringAlert, events.TypeMonitoringResolved, events.TypeSystemHealth,
	} {
		if counts[typ] == 0 {
			t.Errorf("no %s in %d events: %v", typ, len(recs), counts)
		}
	}
}

func TestBillingEventsMatchTheirSchemas(t *testing.T) {
	t.Parallel()
	recs := simulate(t, "billing", 7, mustBilling(t, billingCfg(7, 10)).model, testStart.Add(730*day))
	counts := checkEvents(t, recs)
	t.Logf("%d events: %v", len(recs), counts)
	for _, typ := range []string{
		events.TypeBillingInvoice, events.TypeBillingPayment, events.TypeBillingPlanChange,
		events.TypeBillingUsageAlert, events.TypeBillingSubscription, events.TypeAdminBillingAlert, events.TypeSystemHealth,
	} {
		if counts[typ] == 0 {
			t.Errorf("no %s in %d events: %v", typ, len(recs), counts)
		}
	}
}

// The rate a run aims for is the rate it produces, within the noise of
// random arrivals.
func TestRateIsMet(t *testing.T) {
	t.Parallel()
	t.Run("deployer", func(t *testing.T) {
		t.Parallel()
		cfg := deployerCfg(3, 10)
		span := 2 * time.Hour
		var n int
		for _, r := range simulate(t, "deployer", 3, mustDeployer(t, cfg).model, testStart.Add(span)) {
			if r.ev.Type != events.TypeMetricsSample && r.ev.Type != events.TypeSystemHealth &&
				r.ev.Type != events.TypeMonitoringAlert && r.ev.Type != events.TypeMonitoringResolved {
				n++
			}
		}
		t.Logf("%.2f deployment events/s", float64(n)/span.Seconds())
		if got := float64(n) / span.Seconds(); got < 7.5 || got > 12.5 {
			t.Fatalf("%.2f deployment events/s at -rate 10", got)
		}
	})
	t.Run("billing", func(t *testing.T) {
		t.Parallel()
		cfg := billingCfg(3, 20)
		span := 365 * day
		n := 0
		for _, r := range simulate(t, "billing", 3, mustBilling(t, cfg).model, testStart.Add(span)) {
			if r.ev.Type != events.TypeSystemHealth {
				n++
			}
		}
		t.Logf("%.2f billing events/s", float64(n)/(span.Seconds()/cfg.Speed))
		if got := float64(n) / (span.Seconds() / cfg.Speed); got < 14 || got > 26 {
			t.Fatalf("%.2f billing events/s at -rate 20, -speed %v", got, cfg.Speed)
		}
	})
}
