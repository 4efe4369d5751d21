// Command deployer-sim is a simulated backend worker: the deployer of a
// hosting platform (DESIGN §7). It publishes CloudEvents (pkg/events) into
// NATS JetStream with acknowledgements and Nats-Msg-Id: deployments walking
// their state machine on tenants.<tenant>.deployments, resource samples on
// tenants.<tenant>.metrics, threshold alerts on tenants.<tenant>.monitoring
// and a heartbeat on system.health. It does not create streams; the
// gateway does.
//
// Flags (each also read from PULSE_<FLAG>): -nats-url, -tenants, -rate,
// -speed, -seed, -start, -duration, -connect-timeout. Run with -h for
// details. SIGINT or SIGTERM stops it once what was sent is acknowledged.
package main

import (
	"os"

	"github.com/pulseplatform/pulse/pkg/sim"
)

func main() {
	os.Exit(sim.Main("deployer-sim", sim.RunDeployer, os.Args[1:], os.Stderr))
}
