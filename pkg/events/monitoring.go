package events

import "time"

// MetricsSample is the data of io.pulse.metrics.sample, published on
// tenant:<tenant>:metrics: one sample of the tenant's instances for the
// dashboards. Percentages are 0–100 with one decimal.
type MetricsSample struct {
	TenantID string  `json:"tenantId"`
	CPU      float64 `json:"cpu"`
	Memory   float64 `json:"memory"`
	Disk     float64 `json:"disk"`
	// Requests is HTTP requests per second across the tenant's instances.
	Requests int `json:"requests"`
	// NetworkIn and NetworkOut are bytes per second.
	NetworkIn  int64 `json:"networkIn"`
	NetworkOut int64 `json:"networkOut"`
	// ActiveInstances counts the tenant's running instances.
	ActiveInstances int       `json:"activeInstances"`
	Timestamp       time.Time `json:"timestamp"`
}

// Alert severities, statuses and resources (MonitoringAlert).
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"

	AlertFiring   = "firing"
	AlertResolved = "resolved"

	ResourceCPU    = "cpu"
	ResourceMemory = "memory"
	ResourceDisk   = "disk"
)

// MonitoringAlert is the data of io.pulse.monitoring.alert (Status firing)
// and io.pulse.monitoring.resolved (Status resolved, same AlertID), published
// on tenant:<tenant>:monitoring. Each (resource, severity) pair is its own
// alert: crossing 90 % CPU fires a critical alert while the 80 % warning one
// keeps firing, and each is resolved on its own.
type MonitoringAlert struct {
	TenantID string `json:"tenantId"`
	AlertID  string `json:"alertId"`
	Status   string `json:"status"`
	Severity string `json:"severity"`
	// Resource is cpu, memory or disk.
	Resource string `json:"resource"`
	// Value is the sample that fired or resolved the alert (percent).
	Value float64 `json:"value"`
	// Threshold is the limit that was crossed (percent).
	Threshold float64 `json:"threshold"`
	Message   string  `json:"message"`
	// StartsAt is when the alert fired; EndsAt when it resolved.
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt,omitzero"`
	Timestamp time.Time `json:"timestamp"`
}

// Health statuses.
const (
	HealthOK       = "ok"
	HealthDegraded = "degraded"
)

// Health is the data of io.pulse.system.health, published on system:health:
// a component's heartbeat.
type Health struct {
	Component string `json:"component"`
	Status    string `json:"status"`
	// UptimeSeconds is how long the component has been running.
	UptimeSeconds int64 `json:"uptimeSeconds"`
	// Counters are the component's gauges and totals, e.g.
	// deploymentsActive; keys are camelCase.
	Counters  map[string]int64 `json:"counters"`
	Timestamp time.Time        `json:"timestamp"`
}
