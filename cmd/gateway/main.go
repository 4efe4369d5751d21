// Command gateway serves Centrifugo-protocol WebSocket clients from NATS
// JetStream. Run with -dev for an all-in-one local setup; -h lists flags,
// each of which can also be set as PULSE_<FLAG>.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/envflag"
	"github.com/pulseplatform/pulse/pkg/gateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	return gateway.Run(ctx, cfg, stdout)
}

// parseConfig reads flags, then PULSE_* variables for flags not given.
func parseConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (gateway.Config, error) {
	cfg := gateway.Defaults()
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var origins, logLevel, logFormat string
	forceRecovery := "tenant,admin,system"
	presenceChannels := strings.Join(cfg.PresenceChannels, ",")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "HTTP and WebSocket listen address")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "NATS server or cluster URL(s), comma separated; empty starts an embedded JetStream server")
	fs.StringVar(&cfg.NATSListen, "nats-listen", cfg.NATSListen, "embedded NATS server's client address (workers and the nats CLI connect here)")
	fs.StringVar(&cfg.NATSSync, "nats-sync", cfg.NATSSync, `embedded JetStream fsync: "always" (no acknowledged write lost on a crash) or an interval like "2m" (default: always with -data-dir; 2m for the temporary store, which is removed on exit and never reopened)`)
	fs.StringVar(&cfg.DataDir, "data-dir", "", "embedded JetStream storage directory (default: a temporary directory, removed on exit)")
	fs.IntVar(&cfg.StreamReplicas, "stream-replicas", cfg.StreamReplicas, "replicas of the TENANTS/ADMIN/SYSTEM streams (3 on a 3-node cluster)")
	fs.StringVar(&cfg.JWTHMACSecret, "jwt-hmac-secret", "", "HMAC secret for HS256/384/512 tokens (at least 32 bytes)")
	fs.StringVar(&cfg.JWTPublicKeyFile, "jwt-public-key-file", "", "PEM public key (RSA, ECDSA or Ed25519) for RS/ES/EdDSA tokens")
	fs.StringVar(&cfg.JWKSURL, "jwks-url", "", "JWKS endpoint; keys are picked by kid and refetched on rotation")
	fs.StringVar(&cfg.JWTAudience, "jwt-audience", "", "required aud claim (empty: not checked)")
	fs.StringVar(&cfg.JWTIssuer, "jwt-issuer", "", "required iss claim (empty: not checked)")
	fs.BoolVar(&cfg.JWTRequireExp, "jwt-require-exp", cfg.JWTRequireExp, "refuse tokens without exp")
	fs.StringVar(&cfg.APIKey, "api-key", "", "key for the server HTTP API (header X-API-Key); empty disables /api")
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated Origin host patterns allowed to open WebSockets (default: same host)")
	fs.BoolVar(&cfg.Dev, "dev", false, "development mode: embedded NATS, simulators in process, printed secret, API key and demo tokens")
	fs.Int64Var(&cfg.Limits.MaxMessageSize, "max-message-size", cfg.Limits.MaxMessageSize, "largest inbound WebSocket frame and publication, bytes")
	fs.IntVar(&cfg.Limits.MaxChannelsPerClient, "max-channels-per-connection", cfg.Limits.MaxChannelsPerClient, "subscriptions per connection")
	fs.Float64Var(&cfg.Limits.CommandRate, "command-rate", cfg.Limits.CommandRate, "commands per second per connection (bursts of twice that); over it: error 111")
	fs.IntVar(&cfg.Limits.QueueSize, "client-queue-size", cfg.Limits.QueueSize, "bytes queued for one connection before it is disconnected as slow (3008)")
	fs.IntVar(&cfg.Limits.MaxConnections, "max-connections", 0, "connections per gateway (0: unlimited); over it: disconnect 3504")
	fs.StringVar(&forceRecovery, "force-recovery", forceRecovery, "namespaces whose subscriptions are always recoverable (comma list of tenant, admin, system; empty: only when the client asks)")
	fs.IntVar(&cfg.RecoveryLimit, "recovery-limit", cfg.RecoveryLimit, "most missed publications replayed when a client recovers; more: recovered=false")
	fs.IntVar(&cfg.HistoryLimit, "history-limit", cfg.HistoryLimit, "most publications in one history reply")
	fs.IntVar(&cfg.SearchScanCap, "search-scan-cap", cfg.SearchScanCap, "most stored messages one history search examines (the reply says when it stopped there)")
	fs.IntVar(&cfg.SearchLimit, "search-limit", cfg.SearchLimit, "most matches in one history search page")
	fs.DurationVar(&cfg.ReconcileInterval, "reconcile-interval", cfg.ReconcileInterval, "how often channels are checked against their streams for live copies that never came")
	fs.DurationVar(&cfg.ChannelLinger, "channel-linger", cfg.ChannelLinger, "a channel stays live this long after its last subscriber on this gateway left, so clients that come back recover from memory (0: drop it at once)")
	fs.StringVar(&presenceChannels, "presence-channels", presenceChannels, "channel patterns with presence, comma separated (\"*\" matches one part)")
	fs.BoolVar(&cfg.PresenceJoinLeave, "presence-join-leave", cfg.PresenceJoinLeave, "send join/leave pushes to every subscriber of a presence channel (false: only to those that ask)")
	fs.DurationVar(&cfg.PresenceTTL, "presence-ttl", cfg.PresenceTTL, "a dead gateway's presence entries vanish within this (entries are rewritten every third of it)")
	fs.IntVar(&cfg.PresenceReplyLimit, "presence-reply-limit", cfg.PresenceReplyLimit, "most members in one presence reply (more: error 106; /api/presence pages with a cursor)")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "server ping period")
	fs.DurationVar(&cfg.PongTimeout, "pong-timeout", cfg.PongTimeout, "time a client has to answer a ping before 3012")
	fs.DurationVar(&cfg.ExpiryGrace, "token-expiry-grace", cfg.ExpiryGrace, "time after a token's exp to refresh it before 3005 / unsubscribe 2501")
	fs.DurationVar(&cfg.MinWriteInterval, "min-write-interval", cfg.MinWriteInterval, "a client is written to at most once per interval: publications arriving sooner wait (at most this long) and share the next write, saving system calls; 0 writes every publication at once")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "drain deadline on SIGTERM")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", "", "address for Go profiling (/debug/pprof/); empty: off. Keep it private: profiles show internals")
	fs.StringVar(&cfg.NodeName, "node-name", hostname(), "name of this gateway in /api/info and logs")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "text", "text or json")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gateway [flags]\nEvery flag can also be set as PULSE_<FLAG> (e.g. PULSE_NATS_URL).\n\n")
		fs.PrintDefaults()
	}
	if err := envflag.Parse(fs, args, lookupEnv); err != nil {
		return cfg, err
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	cfg.PresenceChannels = nil
	for _, p := range strings.Split(presenceChannels, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.PresenceChannels = append(cfg.PresenceChannels, p)
		}
	}
	cfg.ForceRecovery = map[channel.Namespace]bool{}
	for _, ns := range strings.Split(forceRecovery, ",") {
		switch ns = strings.TrimSpace(ns); channel.Namespace(ns) {
		case "":
		case channel.Tenant, channel.Admin, channel.System:
			cfg.ForceRecovery[channel.Namespace(ns)] = true
		default:
			return cfg, fmt.Errorf("-force-recovery: unknown namespace %q (want tenant, admin or system)", ns)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return cfg, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch logFormat {
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, opts))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(stderr, opts))
	default:
		return cfg, fmt.Errorf("-log-format must be text or json, got %q", logFormat)
	}
	return cfg, cfg.Validate()
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "pulse"
	}
	return h
}
