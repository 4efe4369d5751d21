package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pulseplatform/pulse/pkg/natsembed"
)

// Reads that do not complete: a slow link or server, a deadline, a batch
// the server ends early. None of them may look like a complete answer.

// A read that does not complete (the server is slow, the request's time is
// up) must fail with an error. It must never look like an empty channel, a
// trimmed position or a complete range: callers would tell clients their
// state is gone, or worse, that a partial replay is complete.
func TestReadsThatTimeOutAreErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 10, text("deploy"))
	top, epoch := s[len(s)-1], e.r.Epoch(ch)
	since := s[2]

	for _, tc := range []struct {
		name string
		read func(ctx context.Context) (string, error)
	}{
		{"Top", func(ctx context.Context) (string, error) {
			top, err := e.r.Top(ctx, ch)
			return fmt.Sprintf("top %d", top), err
		}},
		{"Has", func(ctx context.Context) (string, error) {
			ok, err := e.r.Has(ctx, ch, s[3])
			return fmt.Sprintf("has %v", ok), err
		}},
		{"Range", func(ctx context.Context) (string, error) {
			msgs, more, err := e.r.Range(ctx, ch, s[3], top, 300)
			return fmt.Sprintf("%d messages, more %v", len(msgs), more), err
		}},
		{"Backfill", func(ctx context.Context) (string, error) {
			msgs, err := e.r.Backfill(ctx, ch, s[3], top, 300)
			return fmt.Sprintf("%d messages", len(msgs)), err
		}},
		{"Recover", func(ctx context.Context) (string, error) {
			rec, err := e.r.Recover(ctx, ch, epoch, s[3], top, 300)
			return fmt.Sprintf("recovered %v, reason %q, %d messages", rec.Recovered, rec.Reason, len(rec.Msgs)), err
		}},
		{"History", func(ctx context.Context) (string, error) {
			p, err := e.r.History(ctx, ch, 10, &since, epoch, false)
			return fmt.Sprintf("%d messages, top %d", len(p.Msgs), p.Top), err
		}},
		{"Search", func(ctx context.Context) (string, error) {
			res, err := e.r.Search(ctx, ch, SearchQuery{Text: "deploy", Limit: 10, ScanCap: 100})
			return fmt.Sprintf("%d matches", len(res.Msgs)), err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.freshEpochs()
			e.gate.shut()
			defer e.gate.open()
			ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
			defer cancel()
			got, err := tc.read(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s timed out but reported %s, err %v; want an error wrapping %v",
					tc.name, got, err, context.DeadlineExceeded)
			}
		})
	}
}

// A read whose caller set no deadline must still end when the server does
// not answer (a request or reply lost around a reconnect: core NATS is at
// most once), as nats.go's own requests do with the connection's timeout.
// Otherwise the caller — a subscribe, a reconcile pass — waits forever.
func TestReadWithoutDeadlineEndsWhenTheServerDoesNotAnswer(t *testing.T) {
	t.Parallel()
	e := newEnvAt(t, natsembed.RunForTest(t).ClientURL(), nats.Timeout(500*time.Millisecond))
	ch := mustChannel(t, "tenant:acme:deployments")
	e.fill(subjAcmeDeploy, 3, text("deploy"))
	e.freshEpochs()
	e.gate.shut()
	defer e.gate.open()
	done := make(chan error, 1)
	go func() {
		_, err := e.r.Top(context.WithoutCancel(e.ctx), ch)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Top with no reply reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Top without a deadline still waiting 5 s after its request went unanswered (connection timeout 500 ms)")
	}
}

// A link so slow that the missed messages take longer to arrive than the
// caller allows: the recovery must fail (the SDK retries) rather than
// replay the first part of the gap as if it were all of it, which would
// lose the rest for that client for good.
func TestSlowReadIsNeverAPartialRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 300, func(i int) []byte {
		return append(fmt.Appendf(nil, "deploy %d ", i), bytes.Repeat([]byte("x"), 1000)...)
	})
	top, epoch := s[len(s)-1], e.r.Epoch(ch)
	e.freshEpochs()
	e.gate.throttle(1024, 10*time.Millisecond) // ~100 KB/s: the gap needs ~3 s
	defer e.gate.throttle(0, 0)
	ctx, cancel := context.WithTimeout(e.ctx, time.Second)
	defer cancel()

	rec, err := e.r.Recover(ctx, ch, epoch, s[0], top, 300)
	if err == nil && (!rec.Recovered || !slices.Equal(offsets(rec.Msgs), s[1:])) {
		t.Fatalf("recovery cut short by the deadline returned recovered=%v reason=%q with %d of %d messages and no error",
			rec.Recovered, rec.Reason, len(rec.Msgs), len(s[1:]))
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want it to wrap %v", err, context.DeadlineExceeded)
	}
}

// runServerWithMaxPending starts a JetStream server with a small
// max_pending: the most bytes the server queues for one client connection
// before cutting it off as a slow consumer, and also the byte budget of one
// batched direct get that sets no max_bytes (64 MB by default). natsembed
// has no option for it; this is the same real server with that setting.
func runServerWithMaxPending(t *testing.T, maxPending int64) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, ServerName: "small-pending",
		JetStream: true, StoreDir: t.TempDir(),
		MaxPending: maxPending, MaxPayload: 64 << 10,
		NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	return ns
}

// A read whose messages add up to more than the server's max_pending: the
// server queues a whole batch for the connection at once, so a batch that
// large cuts the gateway's NATS connection as a slow consumer (every live
// subscription of the replica with it), and a batch the server ends at its
// byte budget is not the end of the channel. Reads must ask for batches
// well under max_pending (max_bytes) and go on after a batch cut short.
// Here max_pending is 4 MB and the read 4.8 MB (at the 64 MB default:
// 300 missed messages of 220 KB, which a worker publishing straight to
// NATS may send).
func TestReadsLargerThanMaxPendingAreCompleteAndKeepTheConnection(t *testing.T) {
	t.Parallel()
	ns := runServerWithMaxPending(t, 4<<20)
	e := newEnvAt(t, ns.ClientURL())
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 300, func(i int) []byte {
		return append(fmt.Appendf(nil, "deploy %d ", i), bytes.Repeat([]byte("x"), 16<<10)...)
	})
	top := s[len(s)-1]
	e.freshEpochs()

	for _, tc := range []struct {
		name string
		read func(ctx context.Context) ([]*Msg, error)
		want []uint64
	}{
		{"Recover", func(ctx context.Context) ([]*Msg, error) {
			rec, err := e.r.Recover(ctx, ch, e.r.Epoch(ch), s[0], top, 300)
			if err == nil && !rec.Recovered {
				err = fmt.Errorf("not recovered: %s", rec.Reason)
			}
			return rec.Msgs, err
		}, s[1:]},
		{"Range", func(ctx context.Context) ([]*Msg, error) {
			msgs, _, err := e.r.Range(ctx, ch, 0, 0, 300)
			return msgs, err
		}, s},
		{"History", func(ctx context.Context) ([]*Msg, error) {
			p, err := e.r.History(ctx, ch, 300, nil, "", false)
			return p.Msgs, err
		}, s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slow := ns.NumSlowConsumersClients()
			ctx, cancel := context.WithTimeout(e.ctx, 3*time.Second)
			defer cancel()
			msgs, err := tc.read(ctx)
			if n := ns.NumSlowConsumersClients() - slow; n > 0 {
				t.Errorf("the read made the server cut the reader's connection as a slow consumer")
			}
			if err != nil || !slices.Equal(offsets(msgs), tc.want) {
				t.Errorf("%s = %d messages, %v; want all %d", tc.name, len(msgs), err, len(tc.want))
			}
			// Let the connection come back before the next read.
			for deadline := time.Now().Add(10 * time.Second); !e.rnc.IsConnected() && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
