package envflag

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestApplyPrecedence(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PULSE_ADDR": "0.0.0.0:9", "PULSE_NATS_URL": "nats://x:4222", "PULSE_PING_INTERVAL": "5s"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "")
	url := fs.String("nats-url", "", "")
	ping := fs.Duration("ping-interval", time.Second, "")
	dev := fs.Bool("dev", false, "")
	if err := fs.Parse([]string{"-addr", ":1"}); err != nil {
		t.Fatal(err)
	}
	if err := Apply(fs, lookup); err != nil {
		t.Fatal(err)
	}
	if *addr != ":1" || *url != "nats://x:4222" || *ping != 5*time.Second || *dev {
		t.Fatalf("got addr=%q url=%q ping=%v dev=%v", *addr, *url, *ping, *dev)
	}
}

func TestApplyNamesBadVariable(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Duration("ping-interval", time.Second, "")
	_ = fs.Parse(nil)
	err := Apply(fs, func(k string) (string, bool) { return "soon", k == "PULSE_PING_INTERVAL" })
	if err == nil || !strings.Contains(err.Error(), "PULSE_PING_INTERVAL") || !strings.Contains(err.Error(), "-ping-interval") {
		t.Fatalf("error %v does not name the variable and flag", err)
	}
}

func TestParseRefusesPositionalArguments(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("addr", "", "")
	err := Parse(fs, []string{"-addr", "x", "stray"}, func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), `"stray"`) {
		t.Fatalf("positional argument accepted: %v", err)
	}
}
