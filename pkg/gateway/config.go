package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config is everything the gateway needs, filled from flags and PULSE_*
// variables by cmd/gateway. Zero durations and limits take the defaults of
// Defaults.
type Config struct {
	Addr           string // HTTP listen address
	NATSURL        string // empty: start an embedded JetStream server
	NATSListen     string // embedded server's client address
	NATSSync       string // embedded server's fsync policy: "always" or a duration
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

	PingInterval    time.Duration // server ping period (v2 empty-object ping)
	PongTimeout     time.Duration // how long a client has to answer a ping
	ExpiryGrace     time.Duration // time after token exp to refresh before 3005 / 2501
	StaleTimeout    time.Duration // time to send connect before 3502
	WriteTimeout    time.Duration // a single WebSocket write
	ShutdownTimeout time.Duration // drain deadline on SIGTERM

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
		NATSSync:       "always",
		StreamReplicas: 1,
		JWTRequireExp:  true,
		Limits: Limits{
			MaxMessageSize:       65536,
			MaxChannelsPerClient: 128,
			CommandRate:          100,
			QueueSize:            1 << 20,
		},
		PingInterval:    25 * time.Second,
		PongTimeout:     8 * time.Second,
		ExpiryGrace:     25 * time.Second,
		StaleTimeout:    10 * time.Second,
		WriteTimeout:    10 * time.Second,
		ShutdownTimeout: 20 * time.Second,
		NodeName:        "pulse",
		Version:         "dev",
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
