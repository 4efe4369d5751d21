// Command billing-sim is a simulated backend worker: the billing service of
// a hosting platform (DESIGN §7). It publishes CloudEvents (pkg/events)
// into NATS JetStream with acknowledgements and Nats-Msg-Id: invoices,
// payments with dunning, plan changes, usage alerts and subscription
// changes on tenants.<tenant>.billing, alerts for the platform team on
// admin.billing.alerts and a heartbeat on system.health. It does not create
// streams; the gateway does.
//
// Flags (each also read from PULSE_<FLAG>): -nats-url, -tenants, -rate,
// -speed (default a simulated day per second), -seed, -start, -duration,
// -connect-timeout. Run with -h for details. SIGINT or SIGTERM stops it
// once what was sent is acknowledged.
package main

import (
	"os"

	"github.com/pulseplatform/pulse/pkg/sim"
)

func main() {
	os.Exit(sim.Main("billing-sim", sim.RunBilling, os.Args[1:], os.Stderr))
}
