// Package metrics defines every Prometheus metric Pulse exports (DESIGN §10),
// in one place so names and labels stay consistent. Metrics live in a
// registry passed in, never in package-level state, so tests and several
// gateways in one process do not collide.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Directions of publications.
const (
	DirectionIn  = "in"  // accepted from a client or the API
	DirectionOut = "out" // delivered to a subscriber
)

// Metrics holds Pulse's collectors.
type Metrics struct {
	Connections          prometheus.Gauge
	Subscriptions        prometheus.Gauge
	Channels             prometheus.Gauge
	Publications         *prometheus.CounterVec // namespace, direction
	DeliveryLatency      prometheus.Histogram
	Refusals             *prometheus.CounterVec // reason
	Disconnects          *prometheus.CounterVec // code
	SlowDisconnects      prometheus.Counter
	Commands             *prometheus.CounterVec // method
	NATSReconnects       prometheus.Counter
	LiveDropped          *prometheus.CounterVec // reason
	APIRequests          *prometheus.CounterVec // method, code
	Recoveries           *prometheus.CounterVec // result: recovered, not_recovered, rejected
	RecoveryLatency      prometheus.Histogram
	RecoveriesFromMemory prometheus.Counter
	GapsBackfilled       prometheus.Counter
	GapsUnrecoverable    prometheus.Counter
	Reconciles           *prometheus.CounterVec // trigger
	HistoryReads         *prometheus.CounterVec // kind
	HistoryReadLatency   *prometheus.HistogramVec
	PresenceEntries      prometheus.Gauge
	PresenceJoins        prometheus.Counter
	PresenceLeaves       prometheus.Counter
	PresenceWrites       prometheus.Counter
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connections:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "pulse_connections", Help: "Open client connections that completed connect."}),
		Subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pulse_subscriptions", Help: "Active client subscriptions on this node."}),
		Channels:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "pulse_channels", Help: "Channels with at least one local subscriber (one NATS subscription each)."}),
		Publications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulse_publications_total",
			Help: "Publications accepted (direction=in) and delivered to subscribers (direction=out)."}, []string{"namespace", "direction"}),
		DeliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pulse_delivery_latency_seconds",
			Help:    "Time from the stream storing a message to its fan-out to local subscribers.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulse_refusals_total",
			Help: "Refused requests by reason."}, []string{"reason"}),
		Disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulse_disconnects_total",
			Help: "Server-initiated disconnects by code."}, []string{"code"}),
		SlowDisconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_slow_disconnects_total",
			Help: "Clients disconnected because their outbound queue overflowed."}),
		Commands: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulse_commands_total",
			Help: "Client protocol commands by method."}, []string{"method"}),
		NATSReconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_nats_reconnects_total",
			Help: "Reconnects of the gateway's NATS connection."}),
		LiveDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulse_live_dropped_total",
			Help: "Live messages not delivered: duplicates, stale offsets or not from a stream."}, []string{"reason"}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulse_api_requests_total",
			Help: "Server HTTP API requests by method and HTTP status."}, []string{"method", "status"}),
		Recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulse_recoveries_total",
			Help: "Subscribe-with-recover outcomes: recovered, not_recovered (reply recovered:false), rejected (error 112)."}, []string{"result"}),
		RecoveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pulse_recovery_seconds",
			Help: "Time to read what a recovering client missed.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}),
		RecoveriesFromMemory: prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_recoveries_from_memory_total",
			Help: "Recoveries served from the publications a gateway still held, without a stream read."}),
		GapsBackfilled: prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_gaps_backfilled_total",
			Help: "Live messages missed by a gateway and read back from the stream before delivery."}),
		GapsUnrecoverable: prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_gaps_unrecoverable_total",
			Help: "Live gaps that could not be backfilled (subscribers told to resubscribe, 2500)."}),
		Reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulse_reconciles_total",
			Help: "Checks of every active channel against its stream, by trigger."}, []string{"trigger"}),
		HistoryReads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pulse_history_reads_total",
			Help: "Reads from the streams by kind (top, range, recover, history, search)."}, []string{"kind"}),
		HistoryReadLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pulse_history_read_seconds",
			Help: "Latency of reads from the streams by kind.", Buckets: prometheus.ExponentialBuckets(0.0002, 2.5, 12)}, []string{"kind"}),
		PresenceEntries: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pulse_presence_entries",
			Help: "Presence keys this gateway keeps alive (one per subscription to a presence channel)."}),
		PresenceJoins: prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_presence_joins_total",
			Help: "Joins seen in channels this gateway watches."}),
		PresenceLeaves: prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_presence_leaves_total",
			Help: "Leaves (explicit or expired) seen in channels this gateway watches."}),
		PresenceWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_presence_kv_writes_total",
			Help: "Writes to the presence bucket: joins, leaves and refreshes."}),
	}
	reg.MustRegister(m.Connections, m.Subscriptions, m.Channels, m.Publications, m.DeliveryLatency, m.Refusals,
		m.Disconnects, m.SlowDisconnects, m.Commands, m.NATSReconnects, m.LiveDropped, m.APIRequests,
		m.Recoveries, m.RecoveryLatency, m.RecoveriesFromMemory, m.GapsBackfilled, m.GapsUnrecoverable, m.Reconciles, m.HistoryReads, m.HistoryReadLatency,
		m.PresenceEntries, m.PresenceJoins, m.PresenceLeaves, m.PresenceWrites)
	return m
}
