package sim

import (
	"bytes"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCLI(t *testing.T) {
	t.Parallel()
	def := func(c CLI) CLI {
		if c.NATSURL == "" {
			c.NATSURL = "nats://127.0.0.1:4222"
		}
		if c.ConnectTimeout == 0 {
			c.ConnectTimeout = DefaultConnectTimeout
		}
		if c.Config.Tenants == nil {
			c.Config.Tenants = []string{"acme", "globex"}
		}
		if c.Config.Rate == 0 {
			c.Config.Rate = 2
		}
		return c
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    CLI
		wantErr string
	}{
		{name: "defaults", want: def(CLI{})},
		{
			name: "env over default",
			env: map[string]string{"PULSE_NATS_URL": "nats://n:4222", "PULSE_TENANTS": "a, b", "PULSE_RATE": "5",
				"PULSE_SEED": "3", "PULSE_DURATION": "1m", "PULSE_SPEED": "86400", "PULSE_START": "2025-01-06T09:00:00Z"},
			want: def(CLI{NATSURL: "nats://n:4222", Config: Config{Tenants: []string{"a", "b"}, Rate: 5, Seed: 3,
				Duration: time.Minute, Speed: 86400, Start: time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)}}),
		},
		{
			name: "flag over env",
			args: []string{"-rate", "7", "-tenants", "x", "-seed", "11", "-connect-timeout", "2s"},
			env:  map[string]string{"PULSE_RATE": "5", "PULSE_TENANTS": "a"},
			want: def(CLI{ConnectTimeout: 2 * time.Second, Config: Config{Tenants: []string{"x"}, Rate: 7, Seed: 11}}),
		},
		{name: "tenant count", args: []string{"-tenants", "14", "-seed", "1"},
			want: def(CLI{Config: Config{Seed: 1, Tenants: append(append([]string{}, demoTenants...), "tenant-00013", "tenant-00014")}})},
		{name: "lone numeric tenant", args: []string{"-tenants", "12345,", "-seed", "1"},
			want: def(CLI{Config: Config{Seed: 1, Tenants: []string{"12345"}}})},
		{name: "zero rate", args: []string{"-rate", "0"}, wantErr: "-rate must be > 0"},
		{name: "NaN rate", args: []string{"-rate", "NaN"}, wantErr: "-rate must be > 0"},
		{name: "negative speed", args: []string{"-speed", "-3"}, wantErr: "-speed"},
		{name: "bad rate in env", env: map[string]string{"PULSE_RATE": "fast"}, wantErr: "PULSE_RATE"},
		{name: "dotted tenant", args: []string{"-tenants", "acme,ev.il"}, wantErr: "-tenants"},
		{name: "empty tenant", args: []string{"-tenants", "acme,,b"}, wantErr: "-tenants"},
		{name: "duplicate tenant", args: []string{"-tenants", "acme,acme"}, wantErr: "-tenants"},
		{name: "zero tenants", args: []string{"-tenants", "0"}, wantErr: "-tenants"},
		{name: "negative duration", args: []string{"-duration", "-1s"}, wantErr: "-duration"},
		{name: "bad start", args: []string{"-start", "yesterday"}, wantErr: "-start"},
		{name: "zero connect timeout", args: []string{"-connect-timeout", "0s"}, wantErr: "-connect-timeout"},
		{name: "empty url", env: map[string]string{"PULSE_NATS_URL": ""}, wantErr: "-nats-url"},
		{name: "unknown flag", args: []string{"-sped", "2"}, wantErr: "-sped"},
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

func TestMainRejectsBadFlags(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := Main("deployer-sim", RunDeployer, []string{"-rate", "-1"}, &out); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if got := out.String(); !strings.HasPrefix(got, "deployer-sim: -rate must be > 0") {
		t.Fatalf("stderr %q", got)
	}
	out.Reset()
	if code := Main("billing-sim", RunBilling, []string{"-h"}, &out); code != 0 || !strings.Contains(out.String(), "-speed") {
		t.Fatalf("-h: exit %d, %q", code, out.String())
	}
}

// With no server at -nats-url the command fails within -connect-timeout
// and says where it looked.
func TestMainFailsClearlyWhenNATSIsUnreachable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	start := time.Now()
	code := Main("deployer-sim", RunDeployer, []string{"-nats-url", "nats://user:secret@127.0.0.1:1", "-connect-timeout", "500ms"}, &out)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; output:\n%s", code, out.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s", took)
	}
	got := out.String()
	if !strings.Contains(got, "NATS not reachable at nats://REDACTED@127.0.0.1:1 (-nats-url, PULSE_NATS_URL) within 500ms") || strings.Contains(got, "secret") {
		t.Fatalf("stderr:\n%s", got)
	}
}

func TestMainPublishesAndStops(t *testing.T) {
	t.Parallel()
	js := startJS(t, true)
	var out bytes.Buffer
	code := Main("billing-sim", RunBilling, []string{"-nats-url", js.Conn().ConnectedUrl(), "-tenants", "2",
		"-rate", "50", "-speed", "2592000", "-duration", "1s", "-seed", "5"}, &out)
	if code != 0 {
		t.Fatalf("exit code %d:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "simulator stopped") || len(stored(t, js, "TENANTS")) == 0 {
		t.Fatalf("nothing published:\n%s", out.String())
	}
}

func TestTerminalKeepsTheStatusLineBelowTheLogs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	term := &terminal{w: &buf}
	st := statusLine{term}
	io.WriteString(st, "sent 1")
	io.WriteString(term, "level=INFO msg=hello\n")
	io.WriteString(st, "sent 2")
	term.done()
	want := clearLine + "sent 1" + clearLine + "level=INFO msg=hello\nsent 1" + clearLine + "sent 2\n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
}
