package sim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Runner is RunDeployer or RunBilling.
type Runner func(ctx context.Context, js jetstream.JetStream, cfg Config) error

// Main is the whole of a simulator command: flags and PULSE_* variables,
// a NATS connection that waits for the server, the run, and a clean stop on
// SIGINT/SIGTERM. It returns the process exit code: 2 for bad input, 1 for a
// failed run.
func Main(name string, runner Runner, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cli, err := ParseCLI(fs, args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cli.Config.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runCLI(ctx, name, cli, runner, log); err != nil {
		log.Error(name+" failed", "err", err)
		return 1
	}
	return 0
}

func runCLI(ctx context.Context, name string, cli CLI, runner Runner, log *slog.Logger) error {
	// Keep retrying the connection: the simulator may start before NATS does,
	// and publishes are retried (bounded) by Run*.
	nc, err := nats.Connect(cli.NATSURL,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil on a deliberate Close
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return fmt.Errorf("connect %s (-nats-url): %w", cli.NATSURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return runner(ctx, js, cli.Config)
}
