package gateway

import (
	"errors"
	"fmt"
	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/hub"
	"log/slog"
	"strings"
	"time"
)

// Config is everything the gateway needs, filled from flags and PULSE_*
// variables by cmd/gateway. Zero durations and limits take the defaults of
// Defaults.
type Config struct {
	Addr           string // HTTP listen address
	NATSURL        string // empty: start an embedded JetStream server
	NATSListen     string // embedded server's client address
	NATSSync       string // embedded server's fsync policy: "always", a duration, or "" (always with DataDir, else 2m)
	DataDir        string // embedded server's storage; empty: a temp dir
	StreamReplicas int    // replicas for the streams created at start-up

	JWTHMACSecret    string
	JWTPublicKeyFile string
	JWKSURL          string
	JWTAudience      string
	JWTIssuer        string
	JWTRequireExp    bool

	APIKey         string
	AllowedOrigins []string // WebSocket Origin patterns; empty: same host only
	Dev            bool

	Limits Limits

	// ForceRecovery makes every subscription in these namespaces recoverable
	// (and positioned) without the client asking, so SDKs recover after a
	// reconnect with no special options.
	ForceRecovery     map[channel.Namespace]bool
	RecoveryLimit     int           // most missed publications replayed on recovery
	HistoryLimit      int           // most publications in one history reply
	SearchScanCap     int           // most stored messages examined by one search
	SearchLimit       int           // most matches in one search page
	ReconcileInterval time.Duration // how often idle channels are checked against their streams
	ChannelLinger     time.Duration // a channel stays live this long after its last local subscriber left

	PresenceChannels   []string      // channel patterns with presence ("*" matches one part)
	PresenceJoinLeave  bool          // join/leave pushes to every subscriber of a presence channel
	PresenceTTL        time.Duration // a gateway's entries vanish this long after it dies
	PresenceReplyLimit int           // most members in one presence reply / API page

	PingInterval     time.Duration // server ping period (v2 empty-object ping)
	PongTimeout      time.Duration // how long a client has to answer a ping
	ExpiryGrace      time.Duration // time after token exp to refresh before 3005 / 2501
	StaleTimeout     time.Duration // time to send connect before 3502
	WriteTimeout     time.Duration // a single WebSocket write
	MinWriteInterval time.Duration // a client is written to at most once per interval (0: every frame at once)
	ShutdownTimeout  time.Duration // drain deadline on SIGTERM

	DebugAddr string // pprof listener; empty: none

	NodeName string
	Version  string
	Logger   *slog.Logger
}

// Limits bound what one client or node may use.
type Limits struct {
	MaxMessageSize       int64   // largest inbound frame and publication payload, bytes
	MaxChannelsPerClient int     // subscriptions per connection
	CommandRate          float64 // commands per second per connection (burst = 2×rate)
	QueueSize            int     // bytes queued for one connection before it is cut off with 3008
	MaxConnections       int     // per node; 0 = unlimited
}

// Defaults returns a Config with every default filled in.
func Defaults() Config {
	return Config{
		Addr:           "127.0.0.1:8080",
		NATSListen:     "127.0.0.1:4222",
		StreamReplicas: 1,
		JWTRequireExp:  true,
		Limits: Limits{
			MaxMessageSize:       65536,
			MaxChannelsPerClient: 128,
			CommandRate:          100,
			QueueSize:            1 << 20,
		},
		ForceRecovery:      map[channel.Namespace]bool{channel.Tenant: true, channel.Admin: true, channel.System: true},
		RecoveryLimit:      300,
		HistoryLimit:       300,
		SearchScanCap:      10000,
		SearchLimit:        200,
		ReconcileInterval:  30 * time.Second,
		ChannelLinger:      hub.Linger,
		PresenceChannels:   []string{"tenant:*:presence", "tenant:*:collaboration"},
		PresenceJoinLeave:  true,
		PresenceTTL:        30 * time.Second,
		PresenceReplyLimit: 10000,
		PingInterval:       25 * time.Second,
		PongTimeout:        8 * time.Second,
		ExpiryGrace:        25 * time.Second,
		StaleTimeout:       10 * time.Second,
		WriteTimeout:       10 * time.Second,
		MinWriteInterval:   20 * time.Millisecond,
		ShutdownTimeout:    20 * time.Second,
		NodeName:           "pulse",
		Version:            "dev",
	}
}

// Validate reports the first bad setting, naming its flag.
func (c *Config) Validate() error {
	var errs []error
	if c.Limits.MaxMessageSize < 1024 {
		errs = append(errs, errors.New("-max-message-size must be at least 1024 bytes"))
	}
	if c.Limits.MaxChannelsPerClient < 1 {
		errs = append(errs, errors.New("-max-channels-per-connection must be at least 1"))
	}
	if c.Limits.CommandRate <= 0 {
		errs = append(errs, errors.New("-command-rate must be > 0"))
	}
	if c.Limits.QueueSize < int(c.Limits.MaxMessageSize) {
		errs = append(errs, fmt.Errorf("-client-queue-size must be at least -max-message-size (%d)", c.Limits.MaxMessageSize))
	}
	if c.Limits.MaxConnections < 0 {
		errs = append(errs, errors.New("-max-connections must be >= 0"))
	}
	if c.RecoveryLimit < 1 || c.RecoveryLimit > 10000 {
		errs = append(errs, errors.New("-recovery-limit must be between 1 and 10000"))
	}
	if c.HistoryLimit < 1 || c.HistoryLimit > 10000 {
		errs = append(errs, errors.New("-history-limit must be between 1 and 10000"))
	}
	if c.SearchScanCap < 100 {
		errs = append(errs, errors.New("-search-scan-cap must be at least 100"))
	}
	if c.SearchLimit < 1 || c.SearchLimit > 1000 {
		errs = append(errs, errors.New("-search-limit must be between 1 and 1000"))
	}
	if c.ReconcileInterval < time.Second {
		errs = append(errs, errors.New("-reconcile-interval must be at least 1s"))
	}
	if c.PresenceTTL < 3*time.Second {
		errs = append(errs, errors.New("-presence-ttl must be at least 3s"))
	}
	if c.PresenceReplyLimit < 1 {
		errs = append(errs, errors.New("-presence-reply-limit must be at least 1"))
	}
	for _, p := range c.PresenceChannels {
		if !validPattern(p) {
			errs = append(errs, fmt.Errorf("-presence-channels: %q is not a channel pattern like tenant:*:presence", p))
		}
	}
	if c.PingInterval < time.Second {
		errs = append(errs, errors.New("-ping-interval must be at least 1s"))
	}
	if c.PongTimeout <= 0 || c.PongTimeout >= c.PingInterval {
		errs = append(errs, errors.New("-pong-timeout must be > 0 and shorter than -ping-interval"))
	}
	if c.ExpiryGrace < 0 {
		errs = append(errs, errors.New("-token-expiry-grace must be >= 0"))
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, errors.New("-stream-replicas must be between 1 and 5"))
	}
	if c.ChannelLinger < 0 {
		errs = append(errs, errors.New("-channel-linger must not be negative"))
	}
	if c.MinWriteInterval < 0 || c.MinWriteInterval > time.Second {
		errs = append(errs, errors.New("-min-write-interval must be between 0 and 1s"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("-shutdown-timeout must be > 0"))
	}
	if !c.Dev && c.JWTHMACSecret == "" && c.JWTPublicKeyFile == "" && c.JWKSURL == "" {
		errs = append(errs, errors.New("no token key: set -jwt-hmac-secret, -jwt-public-key-file or -jwks-url (or -dev)"))
	}
	if c.JWTHMACSecret != "" && len(c.JWTHMACSecret) < 32 {
		errs = append(errs, errors.New("-jwt-hmac-secret must be at least 32 bytes"))
	}
	return errors.Join(errs...)
}

// validPattern reports whether p is a channel name in which some parts may
// be "*".
func validPattern(p string) bool {
	_, err := channel.Parse(strings.ReplaceAll(p, "*", "x"))
	return err == nil && !strings.Contains(strings.ReplaceAll(p, ":*", ""), "*")
}
