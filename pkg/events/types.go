package events

import (
	"sort"
	"strings"
)

// Event types. Each has a JSON Schema schemas/<type>.json and one channel it
// is published on (Info.Channel).
const (
	// tenant:<tenant>:deployments — one deployment's lifecycle, in order:
	// queued → started → progress… → completed, or → failed → rolled_back.
	TypeDeploymentQueued     = "io.pulse.deployment.queued"
	TypeDeploymentStarted    = "io.pulse.deployment.started"
	TypeDeploymentProgress   = "io.pulse.deployment.progress"
	TypeDeploymentCompleted  = "io.pulse.deployment.completed"
	TypeDeploymentFailed     = "io.pulse.deployment.failed"
	TypeDeploymentRolledBack = "io.pulse.deployment.rolled_back"

	// tenant:<tenant>:metrics — a resource sample for the dashboards.
	TypeMetricsSample = "io.pulse.metrics.sample"

	// tenant:<tenant>:monitoring — a threshold alert and its resolution.
	TypeMonitoringAlert    = "io.pulse.monitoring.alert"
	TypeMonitoringResolved = "io.pulse.monitoring.resolved"

	// tenant:<tenant>:billing — one per BillingEvent.Type.
	TypeBillingInvoice      = "io.pulse.billing.invoice"
	TypeBillingPayment      = "io.pulse.billing.payment"
	TypeBillingPlanChange   = "io.pulse.billing.plan_change"
	TypeBillingUsageAlert   = "io.pulse.billing.usage_alert"
	TypeBillingSubscription = "io.pulse.billing.subscription"

	// admin:billing:alerts — what the platform team must look at.
	TypeAdminBillingAlert = "io.pulse.admin.billing.alert"

	// system:health — a component's heartbeat.
	TypeSystemHealth = "io.pulse.system.health"
)

// TenantPlaceholder stands for the tenant id in Info.Channel.
const TenantPlaceholder = "<tenant>"

// Info describes one event type of the catalogue.
type Info struct {
	Type string
	// Channel is the channel the type is published on; tenant channels
	// contain TenantPlaceholder.
	Channel string
	// Summary says in a line what the event means.
	Summary string
}

// SchemaFile is the name of the type's schema inside Schemas().
func (i Info) SchemaFile() string { return SchemaDir + "/" + i.Type + ".json" }

// ChannelFor is the type's channel for a tenant (the tenant is ignored for
// admin and system channels). The result still has to go through
// channel.Parse before it names a subject.
func (i Info) ChannelFor(tenant string) string {
	return strings.ReplaceAll(i.Channel, TenantPlaceholder, tenant)
}

// catalogue is read-only after package initialisation.
var catalogue = func() map[string]Info {
	m := make(map[string]Info)
	for _, i := range []Info{
		{TypeDeploymentQueued, "tenant:<tenant>:deployments", "a deployment was accepted and waits for a worker slot"},
		{TypeDeploymentStarted, "tenant:<tenant>:deployments", "a worker picked the deployment up"},
		{TypeDeploymentProgress, "tenant:<tenant>:deployments", "a step advanced (or is retried), with its log lines"},
		{TypeDeploymentCompleted, "tenant:<tenant>:deployments", "the instance is up at url"},
		{TypeDeploymentFailed, "tenant:<tenant>:deployments", "a step failed for good; reason says why; a rollback follows"},
		{TypeDeploymentRolledBack, "tenant:<tenant>:deployments", "the failed deployment's resources were removed"},
		{TypeMetricsSample, "tenant:<tenant>:metrics", "cpu, memory, disk, requests and traffic of the tenant's instances"},
		{TypeMonitoringAlert, "tenant:<tenant>:monitoring", "a sample crossed a warning or critical threshold"},
		{TypeMonitoringResolved, "tenant:<tenant>:monitoring", "the resource fell back below the alert's threshold"},
		{TypeBillingInvoice, "tenant:<tenant>:billing", "an invoice was issued, paid, became overdue or was voided"},
		{TypeBillingPayment, "tenant:<tenant>:billing", "a payment attempt succeeded or failed (with dunning retry)"},
		{TypeBillingPlanChange, "tenant:<tenant>:billing", "a subscription was upgraded or downgraded, with proration"},
		{TypeBillingUsageAlert, "tenant:<tenant>:billing", "usage reached 80, 90 or 100 % of a plan limit"},
		{TypeBillingSubscription, "tenant:<tenant>:billing", "a subscription started, went past due, was suspended, reactivated or cancelled"},
		{TypeAdminBillingAlert, "admin:billing:alerts", "a billing problem the platform team should see"},
		{TypeSystemHealth, "system:health", "a component's heartbeat with its counters"},
	} {
		m[i.Type] = i
	}
	return m
}()

// Lookup returns the catalogue entry of an event type.
func Lookup(typ string) (Info, bool) {
	i, ok := catalogue[typ]
	return i, ok
}

// Types lists the catalogue, ordered by type.
func Types() []Info {
	out := make([]Info, 0, len(catalogue))
	for _, i := range catalogue {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Type < out[b].Type })
	return out
}
