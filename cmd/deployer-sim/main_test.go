package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulseplatform/pulse/pkg/natsembed"
	"github.com/pulseplatform/pulse/streams"
)

// TestInterruptLosesNothingAcknowledged runs the real binary against an
// embedded JetStream server, interrupts it mid-run and checks that it exits
// 0 and that every event it reports as acknowledged is in the streams.
func TestInterruptLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			s := natsembed.RunForTest(t)
			_, js := s.ConnectForTest(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := streams.Ensure(ctx, js, 1); err != nil {
				t.Fatal(err)
			}

			bin := filepath.Join(t.TempDir(), "deployer-sim")
			build := exec.Command("go", "build", "-o", bin, ".")
			build.Stderr = os.Stderr
			if err := build.Run(); err != nil {
				t.Fatalf("build: %v", err)
			}
			var stderr bytes.Buffer
			cmd := exec.Command(bin, "-tenants", "3", "-rate", "400", "-speed", "600", "-seed", "3")
			cmd.Env = append(os.Environ(), "PULSE_NATS_URL="+s.ClientURL())
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit: %v\n%s", err, stderr.String())
			}
			var acked float64
			for line := range strings.SplitSeq(stderr.String(), "\n") {
				if strings.Contains(line, "msg=\"simulator stopped\"") {
					for field := range strings.FieldsSeq(line) {
						if v, ok := strings.CutPrefix(field, "acked="); ok {
							json.Unmarshal([]byte(v), &acked)
						}
					}
				}
			}
			var stored uint64
			for _, name := range []string{"TENANTS", "SYSTEM"} {
				st, err := js.Stream(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				info, err := st.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				stored += info.State.Msgs
			}
			if acked == 0 || uint64(acked) != stored {
				t.Fatalf("binary reports %v acked, streams hold %d\n%s", acked, stored, stderr.String())
			}
		})
	}
}
