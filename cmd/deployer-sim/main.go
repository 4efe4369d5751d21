// Command deployer-sim is a simulated backend worker: it publishes
// deployment events on tenants.<tenant>.deployments and a heartbeat on
// system.health into NATS JetStream, with acknowledgements and Nats-Msg-Id
// (DESIGN §7).
// It does not create streams; the gateway does.
//
// Flags (each also read from PULSE_<FLAG>): -nats-url, -tenants, -rate,
// -seed, -duration. Run with -h for details.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/sim"
)

const name = "deployer-sim"

func main() {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cli, err := sim.ParseCLI(fs, os.Args[1:], os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cli.Config.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cli, log); err != nil {
		log.Error(name+" failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cli sim.CLI, log *slog.Logger) error {
	// Keep retrying the connection: the simulator may start before NATS does,
	// and publishes are retried (bounded) by the sim package.
	nc, err := nats.Connect(cli.NATSURL,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil on a deliberate Close
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	)
	if err != nil {
		return fmt.Errorf("connect %s: %w", cli.NATSURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return sim.RunDeployer(ctx, js, cli.Config)
}
