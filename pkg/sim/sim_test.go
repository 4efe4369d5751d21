package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/natsembed"
	"github.com/pulseplatform/pulse/streams"
)

// start runs an embedded server, connects, and creates the streams when
// withStreams.
func start(t *testing.T, withStreams bool) jetstream.JetStream {
	t.Helper()
	s := natsembed.RunForTest(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if withStreams {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := streams.Ensure(ctx, js, 1); err != nil {
			t.Fatal(err)
		}
	}
	return js
}

// stored returns every message of a stream, in order.
func stored(t *testing.T, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %s #%d: %v", name, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// withoutTimes decodes a payload and drops the fields that depend on the
// clock.
func withoutTimes(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("payload %s: %v", data, err)
	}
	delete(m, "timestamp")
	delete(m, "estimatedCompletion")
	return m
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func TestRunDeployerPublishesToEachTenantsSubject(t *testing.T) {
	t.Parallel()
	js := start(t, true)
	tenants := []string{"acme", "globex", "12345"}
	cfg := Config{Tenants: tenants, Rate: 200, Seed: 7, Duration: time.Second}
	if err := RunDeployer(context.Background(), js, cfg); err != nil {
		t.Fatalf("RunDeployer: %v", err)
	}

	msgs := stored(t, js, "TENANTS")
	if len(msgs) < 20 {
		t.Fatalf("only %d events stored", len(msgs))
	}
	perTenant := map[string]int{}
	for i, m := range msgs {
		ch, err := channel.FromSubject(m.Subject)
		if err != nil || ch.Tokens()[1] != "deployments" {
			t.Fatalf("event on unexpected subject %q (%v)", m.Subject, err)
		}
		var ev DeploymentEvent
		if err := decodeStrict(m.Data, &ev); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, m.Data)
		}
		if ev.TenantID != ch.Tenant() {
			t.Fatalf("event for tenant %q stored on %s", ev.TenantID, m.Subject)
		}
		if ev.Progress < 0 || ev.Progress > 100 || ev.DeploymentID == "" || ev.Timestamp.IsZero() || len(ev.Logs) == 0 {
			t.Fatalf("implausible event %s", m.Data)
		}
		if want := fmt.Sprintf("deployer-7-%d", i); m.Header.Get(jetstream.MsgIDHeader) != want {
			t.Fatalf("event %d has msg id %q, want %q", i, m.Header.Get(jetstream.MsgIDHeader), want)
		}
		perTenant[ev.TenantID]++
	}
	for _, tn := range tenants {
		if perTenant[tn] == 0 {
			t.Errorf("no events for tenant %s", tn)
		}
	}

	health := stored(t, js, "SYSTEM")
	if len(health) == 0 || health[0].Subject != "system.health" {
		t.Fatalf("no system.health beat: %v", health)
	}
	var beat HealthEvent
	if err := decodeStrict(health[0].Data, &beat); err != nil || beat.Component != "deployer-sim" {
		t.Fatalf("health beat %s: %v", health[0].Data, err)
	}
}

func TestRunDeployerSameSeedSameEvents(t *testing.T) {
	t.Parallel()
	runOnce := func(seed int64) []map[string]any {
		js := start(t, true)
		cfg := Config{Tenants: []string{"acme", "globex"}, Rate: 200, Seed: seed, Duration: 700 * time.Millisecond}
		if err := RunDeployer(context.Background(), js, cfg); err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, m := range stored(t, js, "TENANTS") {
			ev := withoutTimes(t, m.Data)
			ev["subject"] = m.Subject
			out = append(out, ev)
		}
		return out
	}
	a, b, c := runOnce(42), runOnce(42), runOnce(43)
	n := min(len(a), len(b), len(c))
	if n < 10 {
		t.Fatalf("too few events to compare: %d %d %d", len(a), len(b), len(c))
	}
	if !reflect.DeepEqual(a[:n], b[:n]) {
		t.Fatalf("same seed, different events:\n%v\n%v", a[:n], b[:n])
	}
	if reflect.DeepEqual(a[:n], c[:n]) {
		t.Fatal("different seeds gave the same events")
	}
}

func TestModelsAreDeterministic(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	type gen func(seed int64) (model, error)
	models := map[string]gen{
		"deployer": func(seed int64) (model, error) {
			d, err := newDeployer(seed, []string{"acme", "globex"})
			if err != nil {
				return nil, err
			}
			return d.next, nil
		},
		"billing": func(seed int64) (model, error) {
			b, err := newBilling(seed, []string{"acme", "globex"})
			if err != nil {
				return nil, err
			}
			return b.next, nil
		},
	}
	for name, newModel := range models {
		t.Run(name, func(t *testing.T) {
			seq := func(seed int64) []any {
				m, err := newModel(seed)
				if err != nil {
					t.Fatal(err)
				}
				var out []any
				for i := range 500 {
					ch, ev := m(now.Add(time.Duration(i) * time.Second))
					out = append(out, ch.Name(), ev)
				}
				return out
			}
			if !reflect.DeepEqual(seq(1), seq(1)) {
				t.Fatal("same seed, different sequence")
			}
			if reflect.DeepEqual(seq(1), seq(2)) {
				t.Fatal("different seeds, same sequence")
			}
		})
	}
}

func TestDeploymentsWalkTheStateMachine(t *testing.T) {
	t.Parallel()
	d, err := newDeployer(3, []string{"acme", "globex"})
	if err != nil {
		t.Fatal(err)
	}
	type state struct {
		status   string
		progress int
	}
	last := map[string]state{}
	var completed, failed int
	for i := range 5000 {
		_, v := d.next(time.Unix(int64(i), 0))
		ev := v.(DeploymentEvent)
		prev, seen := last[ev.DeploymentID]
		switch ev.Status {
		case DeploymentStarting:
			if seen || ev.Progress != 0 {
				t.Fatalf("%s starts twice or above 0: %+v", ev.DeploymentID, ev)
			}
		case DeploymentInProgress, DeploymentCompleted, DeploymentFailed:
			if !seen || prev.status == DeploymentCompleted || prev.status == DeploymentFailed || ev.Progress < prev.progress {
				t.Fatalf("%s: %+v after %+v", ev.DeploymentID, ev, prev)
			}
		default:
			t.Fatalf("unknown status %q", ev.Status)
		}
		switch ev.Status {
		case DeploymentCompleted:
			completed++
			if ev.Progress != 100 || !ev.EstimatedCompletion.IsZero() {
				t.Fatalf("completed event %+v", ev)
			}
		case DeploymentFailed:
			failed++
		}
		last[ev.DeploymentID] = state{ev.Status, ev.Progress}
	}
	if completed == 0 || failed == 0 || failed > completed/5 {
		t.Fatalf("completed %d, failed %d: want a few percent failures", completed, failed)
	}
}

func TestRunBillingPublishesToEachTenantsSubject(t *testing.T) {
	t.Parallel()
	js := start(t, true)
	tenants := []string{"acme", "globex"}
	if err := RunBilling(context.Background(), js, Config{Tenants: tenants, Rate: 200, Seed: 9, Duration: time.Second}); err != nil {
		t.Fatalf("RunBilling: %v", err)
	}
	msgs := stored(t, js, "TENANTS")
	if len(msgs) < 20 {
		t.Fatalf("only %d events stored", len(msgs))
	}
	types := map[string]bool{}
	for _, m := range msgs {
		ch, err := channel.FromSubject(m.Subject)
		if err != nil || ch.Tokens()[1] != "billing" {
			t.Fatalf("event on unexpected subject %q (%v)", m.Subject, err)
		}
		var ev BillingEvent
		if err := decodeStrict(m.Data, &ev); err != nil {
			t.Fatalf("%v: %s", err, m.Data)
		}
		if ev.TenantID != ch.Tenant() || ev.Currency == "" || ev.PlanName == "" || ev.Message == "" || ev.Amount < 0 {
			t.Fatalf("implausible event on %s: %s", m.Subject, m.Data)
		}
		if (ev.Type == BillingInvoice || ev.Type == BillingPayment) && (ev.Amount == 0 || ev.InvoiceID == "") {
			t.Fatalf("invoice/payment without amount or id: %s", m.Data)
		}
		types[ev.Type] = true
	}
	for _, typ := range []string{BillingInvoice, BillingPayment, BillingUsageAlert} {
		if !types[typ] {
			t.Errorf("no %s events", typ)
		}
	}
}

func TestRunWaitsForTheStream(t *testing.T) {
	t.Parallel()
	js := start(t, false)
	done := make(chan error, 1)
	go func() {
		done <- RunDeployer(context.Background(), js, Config{Tenants: []string{"acme"}, Rate: 50, Seed: 1, Duration: 1500 * time.Millisecond, RetryFor: 10 * time.Second})
	}()
	time.Sleep(400 * time.Millisecond) // the sim is retrying now
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("RunDeployer: %v", err)
	}
	if len(stored(t, js, "SYSTEM")) == 0 || len(stored(t, js, "TENANTS")) == 0 {
		t.Fatal("nothing stored once the streams existed")
	}
}

func TestRunGivesUpWithoutStream(t *testing.T) {
	t.Parallel()
	js := start(t, false)
	err := RunBilling(context.Background(), js, Config{Tenants: []string{"acme"}, Rate: 50, RetryFor: 300 * time.Millisecond})
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("err = %v, want %v", err, jetstream.ErrNoStreamResponse)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	js := start(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	if err := RunDeployer(ctx, js, Config{Tenants: []string{"acme"}, Rate: 20}); err != nil {
		t.Fatalf("RunDeployer after cancel: %v", err)
	}
}

func TestConfigRejectsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no tenants", Config{Rate: 1}, "no tenants"},
		{"dotted tenant", Config{Tenants: []string{"ac.me"}, Rate: 1}, "ac.me"},
		{"wildcard tenant", Config{Tenants: []string{"*"}, Rate: 1}, `"*"`},
		{"duplicate tenant", Config{Tenants: []string{"a", "a"}, Rate: 1}, "twice"},
		{"zero rate", Config{Tenants: []string{"a"}}, "rate"},
		{"negative duration", Config{Tenants: []string{"a"}, Rate: 1, Duration: -time.Second}, "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A nil JetStream is never reached: validation comes first.
			for _, run := range []func(context.Context, jetstream.JetStream, Config) error{RunDeployer, RunBilling} {
				err := run(context.Background(), nil, tt.cfg)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
				}
			}
		})
	}
}

func TestParseCLI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    CLI
		wantErr string
	}{
		{
			name: "defaults",
			want: CLI{NATSURL: "nats://127.0.0.1:4222", Config: Config{Tenants: []string{"acme", "globex"}, Rate: 2}},
		},
		{
			name: "env over default",
			env:  map[string]string{"PULSE_NATS_URL": "nats://n:4222", "PULSE_TENANTS": "a, b", "PULSE_RATE": "5", "PULSE_SEED": "3", "PULSE_DURATION": "1m"},
			want: CLI{NATSURL: "nats://n:4222", Config: Config{Tenants: []string{"a", "b"}, Rate: 5, Seed: 3, Duration: time.Minute}},
		},
		{
			name: "flag over env",
			args: []string{"-rate", "7", "-tenants", "x", "-seed", "11"},
			env:  map[string]string{"PULSE_RATE": "5", "PULSE_TENANTS": "a"},
			want: CLI{NATSURL: "nats://127.0.0.1:4222", Config: Config{Tenants: []string{"x"}, Rate: 7, Seed: 11}},
		},
		{name: "zero rate", args: []string{"-rate", "0"}, wantErr: "-rate must be > 0"},
		{name: "NaN rate", args: []string{"-rate", "NaN"}, wantErr: "-rate must be > 0"},
		{name: "bad rate in env", env: map[string]string{"PULSE_RATE": "fast"}, wantErr: "PULSE_RATE"},
		{name: "dotted tenant", args: []string{"-tenants", "acme,ev.il"}, wantErr: "-tenants"},
		{name: "empty tenant", args: []string{"-tenants", "acme,"}, wantErr: "-tenants"},
		{name: "duplicate tenant", args: []string{"-tenants", "acme,acme"}, wantErr: "-tenants"},
		{name: "negative duration", args: []string{"-duration", "-1s"}, wantErr: "-duration"},
		{name: "empty url", env: map[string]string{"PULSE_NATS_URL": ""}, wantErr: "-nats-url"},
		{name: "unknown flag", args: []string{"-speed", "2"}, wantErr: "-speed"},
		{name: "stray argument", args: []string{"acme"}, wantErr: "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("sim", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			got, err := ParseCLI(fs, tt.args, lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.Config.Seed == 0 {
				if got.Config.Seed == 0 {
					t.Fatal("seed 0 was not replaced by a clock seed")
				}
				got.Config.Seed = 0
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
