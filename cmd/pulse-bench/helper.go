package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"

	"github.com/pulseplatform/pulse/pkg/load"
)

// holdScenario is the hidden scenario of an idle run's helper process: it
// holds its share of the connections, prints "ready <ok> <failed>" and keeps
// them until its standard input closes.
const holdScenario = "idle-hold"

func hold(ctx context.Context, cfg load.BenchConfig, stdout io.Writer) error {
	ok, failed, stop, err := load.HoldIdle(ctx, cfg)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(stdout, "ready %d %d\n", ok, failed)
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// spawner starts helper processes of this binary with the parent's flags
// (the secret travels in the environment, as PULSE_JWT_HMAC_SECRET may),
// overriding the share each holds.
func spawner(args []string, stderr io.Writer) func(ctx context.Context, first, n int, rampRate float64) (*load.Helper, error) {
	return func(ctx context.Context, first, n int, rampRate float64) (*load.Helper, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		// Later flags win: the share, its ramp rate and one process each.
		hargs := append([]string{holdScenario}, args...)
		hargs = append(hargs, "-n", strconv.Itoa(n), "-first", strconv.Itoa(first),
			"-ramp-rate", strconv.FormatFloat(rampRate, 'f', -1, 64), "-procs", "1")
		cmd := exec.CommandContext(ctx, exe, hargs...)
		cmd.Stderr = stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		lines := bufio.NewScanner(out)
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			_ = stdin.Close()
			_ = cmd.Wait()
		}
		return &load.Helper{
			Ready: func() (ok, failed int, err error) {
				if !lines.Scan() {
					stop()
					return 0, 0, errors.New("helper ended before its connections were ready")
				}
				if _, err := fmt.Sscanf(lines.Text(), "ready %d %d", &ok, &failed); err != nil {
					return 0, 0, fmt.Errorf("helper said %q: %w", lines.Text(), err)
				}
				return ok, failed, nil
			},
			Stop: stop,
		}, nil
	}
}
