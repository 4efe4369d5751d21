package events

import (
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/pulseplatform/pulse/pkg/channel"
)

var at = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

func mustValidator(t *testing.T) *Validator {
	t.Helper()
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// examples are one valid event of each type, as a worker would build it.
func examples() map[string]any {
	dep := Deployment{TenantID: "acme", DeploymentID: "dep-3f9a0c12b7e4", InstanceType: "odoo", Version: "17.0",
		Status: DeploymentInProgress, Progress: 42, CurrentStep: "Starting containers (1/2)",
		Logs: []string{" Container acme-odoo-3f9a0c-db-1  Started"}, Node: "node-03", EstimatedCompletion: at.Add(time.Minute), Timestamp: at}
	queued := dep
	queued.Status, queued.Progress, queued.Node, queued.CurrentStep = DeploymentStarting, 0, "", "Queued"
	started := dep
	started.Status, started.Progress = DeploymentStarting, 2
	done := dep
	done.Status, done.Progress, done.EstimatedCompletion, done.URL = DeploymentCompleted, 100, time.Time{}, "https://odoo-3f9a0c.acme.apps.pulse.example"
	failed := dep
	failed.Status, failed.EstimatedCompletion, failed.Reason = DeploymentFailed, time.Time{}, "container exited with code 137 (OOMKilled)"
	rolled := failed
	rolled.Status = DeploymentRolledBack

	alert := MonitoringAlert{TenantID: "acme", AlertID: "alt-1", Status: AlertFiring, Severity: SeverityCritical, Resource: ResourceCPU,
		Value: 91.3, Threshold: 90, Message: "CPU at 91.3%", StartsAt: at, Timestamp: at}
	resolved := alert
	resolved.Status, resolved.Value, resolved.EndsAt = AlertResolved, 71.2, at.Add(7*time.Minute)

	bill := func(kind, status string, amount int64) Billing {
		return Billing{TenantID: "acme", Type: kind, Status: status, Amount: amount, Currency: "EUR", SubscriptionID: "sub_1",
			PlanName: "pro", Message: "m", Metadata: BillingMetadata{Product: "Managed Odoo", Interval: "month"}, Timestamp: at}
	}
	invoice := bill(BillingInvoice, InvoiceOpen, 11781)
	invoice.InvoiceID = "INV-ACME-00001"
	invoice.Invoice = &InvoiceDetails{PeriodStart: at, PeriodEnd: at.AddDate(0, 1, 0), DueDate: at.AddDate(0, 0, 7),
		LineItems: []LineItem{{Description: "Managed Odoo — pro plan", Quantity: 1, UnitAmount: 9900, Amount: 9900}},
		Subtotal:  9900, TaxRateBps: 1900, Tax: 1881, Total: 11781}
	payment := bill(BillingPayment, PaymentFailed, 11781)
	payment.InvoiceID, payment.PaymentID = "INV-ACME-00001", "pay_1"
	payment.Metadata.Attempt, payment.Metadata.MaxAttempts, payment.Metadata.Reason = 1, 4, DeclineCardDeclined
	payment.Metadata.CardBrand, payment.Metadata.CardLast4, payment.Metadata.NextRetryAt = "visa", "4242", at.AddDate(0, 0, 3)
	change := bill(BillingPlanChange, PlanDowngraded, -3000)
	change.Metadata.FromPlan, change.Metadata.ToPlan, change.Metadata.ProrationCredit, change.Metadata.ProrationCharge = "pro", "starter", 4950, 1950
	usage := bill(BillingUsageAlert, UsageWarning, 0)
	usage.Metadata.Resource, usage.Metadata.Unit, usage.Metadata.Usage, usage.Metadata.Limit = "storage", "GB", 201, 250
	usage.Metadata.Percentage, usage.Metadata.Threshold = 80, 80
	sub := bill(BillingSubscription, SubscriptionPastDue, 9900)
	sub.Metadata.PreviousStatus = SubscriptionActive

	return map[string]any{
		TypeDeploymentQueued:     queued,
		TypeDeploymentStarted:    started,
		TypeDeploymentProgress:   dep,
		TypeDeploymentCompleted:  done,
		TypeDeploymentFailed:     failed,
		TypeDeploymentRolledBack: rolled,
		TypeMetricsSample: MetricsSample{TenantID: "acme", CPU: 45.2, Memory: 67.8, Disk: 23.1, Requests: 812,
			NetworkIn: 1_800_000, NetworkOut: 14_000_000, ActiveInstances: 4, Timestamp: at},
		TypeMonitoringAlert:     alert,
		TypeMonitoringResolved:  resolved,
		TypeBillingInvoice:      invoice,
		TypeBillingPayment:      payment,
		TypeBillingPlanChange:   change,
		TypeBillingUsageAlert:   usage,
		TypeBillingSubscription: sub,
		TypeAdminBillingAlert: AdminBillingAlert{AlertID: "bal-1", Kind: AdminSubscriptionSuspended, Severity: SeverityCritical,
			TenantID: "acme", SubscriptionID: "sub_1", InvoiceID: "INV-ACME-00001", Amount: 11781, Currency: "EUR", Message: "m", Timestamp: at},
		TypeSystemHealth: Health{Component: "deployer-sim", Status: HealthOK, UptimeSeconds: 5, Counters: map[string]int64{"deploymentsActive": 3}, Timestamp: at},
	}
}

func encodeExample(t *testing.T, typ string, data any) []byte {
	t.Helper()
	e, err := New("test-1", "/pulse/test", typ, "subject-1", at, data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEveryTypeHasASchemaAndAChannel(t *testing.T) {
	t.Parallel()
	schemas := map[string]bool{}
	fs.WalkDir(Schemas(), SchemaDir, func(p string, d fs.DirEntry, _ error) error {
		if !d.IsDir() && !strings.Contains(p, "/data/") && !strings.HasSuffix(p, "/envelope.json") {
			schemas[p] = true
		}
		return nil
	})
	for _, info := range Types() {
		if !schemas[info.SchemaFile()] {
			t.Errorf("%s has no schema %s", info.Type, info.SchemaFile())
		}
		delete(schemas, info.SchemaFile())
		if _, err := channel.Parse(info.ChannelFor("acme")); err != nil {
			t.Errorf("%s: channel %s: %v", info.Type, info.Channel, err)
		}
		b, _ := fs.ReadFile(Schemas(), info.SchemaFile())
		if !strings.Contains(string(b), `"const": "`+info.Type+`"`) {
			t.Errorf("%s does not pin its type", info.SchemaFile())
		}
	}
	for orphan := range schemas {
		t.Errorf("schema %s belongs to no event type", orphan)
	}
	if len(examples()) != len(Types()) {
		t.Errorf("%d examples for %d types", len(examples()), len(Types()))
	}
}

func TestExamplesAreValid(t *testing.T) {
	t.Parallel()
	v := mustValidator(t)
	for typ, data := range examples() {
		if err := v.Validate(encodeExample(t, typ, data)); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

func TestSchemasRejectBrokenEvents(t *testing.T) {
	t.Parallel()
	v := mustValidator(t)
	ex := examples()
	tests := []struct {
		name string
		typ  string
		edit func(m map[string]any)
	}{
		{"missing tenant", TypeDeploymentProgress, func(m map[string]any) { delete(data(m), "tenantId") }},
		{"progress above 100", TypeDeploymentProgress, func(m map[string]any) { data(m)["progress"] = 120 }},
		{"status of another type", TypeDeploymentProgress, func(m map[string]any) { data(m)["status"] = "completed" }},
		{"completed without url", TypeDeploymentCompleted, func(m map[string]any) { delete(data(m), "url") }},
		{"failed without reason", TypeDeploymentFailed, func(m map[string]any) { delete(data(m), "reason") }},
		{"unknown data field", TypeMetricsSample, func(m map[string]any) { data(m)["storage"] = 1.0 }},
		{"cpu above 100", TypeMetricsSample, func(m map[string]any) { data(m)["cpu"] = 140.0 }},
		{"resolved without end", TypeMonitoringResolved, func(m map[string]any) { delete(data(m), "endsAt") }},
		{"float money", TypeBillingInvoice, func(m map[string]any) { data(m)["amount"] = 117.81 }},
		{"lower-case currency", TypeBillingInvoice, func(m map[string]any) { data(m)["currency"] = "eur" }},
		{"invoice without lines", TypeBillingInvoice, func(m map[string]any) {
			data(m)["invoice"].(map[string]any)["lineItems"] = []any{}
		}},
		{"failed payment without reason", TypeBillingPayment, func(m map[string]any) {
			delete(data(m)["metadata"].(map[string]any), "reason")
		}},
		{"unknown decline reason", TypeBillingPayment, func(m map[string]any) { data(m)["metadata"].(map[string]any)["reason"] = "moon" }},
		{"downgrade that charges", TypeBillingPlanChange, func(m map[string]any) { data(m)["amount"] = 100 }},
		{"usage threshold 85", TypeBillingUsageAlert, func(m map[string]any) { data(m)["metadata"].(map[string]any)["threshold"] = 85 }},
		{"bad time", TypeSystemHealth, func(m map[string]any) { m["time"] = "yesterday" }},
		{"wrong specversion", TypeSystemHealth, func(m map[string]any) { m["specversion"] = "0.3" }},
		{"upper-case extension", TypeSystemHealth, func(m map[string]any) { m["Tenant"] = "acme" }},
		{"non-integer counter", TypeSystemHealth, func(m map[string]any) { data(m)["counters"].(map[string]any)["x"] = 1.5 }},
		{"unknown type", "io.pulse.nope", func(m map[string]any) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := TypeSystemHealth
			if _, ok := ex[tt.typ]; ok {
				src = tt.typ
			}
			var m map[string]any
			if err := json.Unmarshal(encodeExample(t, src, ex[src]), &m); err != nil {
				t.Fatal(err)
			}
			m["type"] = tt.typ
			tt.edit(m)
			b, _ := json.Marshal(m)
			if err := v.Validate(b); !errors.Is(err, ErrInvalid) {
				t.Fatalf("accepted %s (err %v)", b, err)
			}
		})
	}
	t.Run("extension attribute", func(t *testing.T) {
		t.Parallel()
		var m map[string]any
		json.Unmarshal(encodeExample(t, TypeSystemHealth, ex[TypeSystemHealth]), &m)
		m["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		b, _ := json.Marshal(m)
		if err := v.Validate(b); err != nil {
			t.Fatalf("CloudEvents extensions must be allowed: %v", err)
		}
	})
}

func data(m map[string]any) map[string]any { return m["data"].(map[string]any) }

func TestNewAndParse(t *testing.T) {
	t.Parallel()
	if _, err := New("id", "/src", "io.pulse.nope", "s", at, struct{}{}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := New("", "/src", TypeSystemHealth, "s", at, struct{}{}); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("empty id: %v", err)
	}
	b := encodeExample(t, TypeMetricsSample, examples()[TypeMetricsSample])
	e, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var s MetricsSample
	if err := e.DecodeData(&s); err != nil || s.CPU != 45.2 || e.Time != at || e.DataContentType != ContentTypeJSON {
		t.Fatalf("round trip: %+v %+v %v", e, s, err)
	}
	for _, bad := range []string{`{`, `{"specversion":"0.3","id":"a","source":"s","type":"t","data":{}}`, `{"specversion":"1.0","id":"a","source":"s","type":"t"}`} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("Parse(%s) = %v", bad, err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	v, err := NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	e, _ := New("id", "/src", TypeDeploymentProgress, "s", at, examples()[TypeDeploymentProgress])
	raw, _ := json.Marshal(e)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Validate(raw); err != nil {
			b.Fatal(err)
		}
	}
}
