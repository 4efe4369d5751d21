// Command billing-sim is a simulated backend worker: it publishes billing
// events (invoices, payments, usage alerts) on tenants.<tenant>.billing into
// NATS JetStream, with acknowledgements and Nats-Msg-Id (DESIGN §7). It does
// not create streams; the gateway does.
//
// Flags (each also read from PULSE_<FLAG>): -nats-url, -tenants, -rate,
// -seed, -duration. Run with -h for details.
package main

import (
	"os"

	"github.com/pulseplatform/pulse/pkg/sim"
)

func main() {
	os.Exit(sim.Main("billing-sim", sim.RunBilling, os.Args[1:], os.Stderr))
}
