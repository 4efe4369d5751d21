package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

const secret = "0123456789abcdef0123456789abcdef"

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestParseConfigTakesFlagsThenEnv(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig([]string{"-n", "7"}, env(map[string]string{
		"PULSE_N": "9", "PULSE_JWT_HMAC_SECRET": secret, "PULSE_RAMP_RATE": "25",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Conns != 7 || cfg.RampRate != 25 || string(cfg.HMACSecret) != secret {
		t.Fatalf("conns %d, ramp %v, secret set %v", cfg.Conns, cfg.RampRate, string(cfg.HMACSecret) == secret)
	}
}

func TestBadFlagsAreUsageErrorsNamingTheFlag(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		env  map[string]string
		flag string
	}{
		{[]string{"idle", "-n", "0", "-jwt-hmac-secret", secret}, nil, "-n"},
		{[]string{"idle", "-url", "ws://example.com/connection/websocket", "-jwt-hmac-secret", secret}, nil, "-url"},
		{[]string{"idle", "-settle", "soon"}, nil, "-settle"},
		{[]string{"idle"}, map[string]string{"PULSE_N": "many"}, "-n"},
		{[]string{"idle"}, nil, "-jwt-hmac-secret"},
		{[]string{"flood"}, nil, "flood"},
	} {
		err := run(context.Background(), tt.args, env(tt.env), io.Discard, io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("%q: %v, want a usage error naming %s", tt.args, err, tt.flag)
		}
	}
	if err := run(context.Background(), []string{"idle", "-h"}, env(nil), io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}
