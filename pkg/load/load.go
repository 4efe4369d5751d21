// Package load drives many client connections at a local Pulse gateway and
// measures what they cost the server: resident memory and CPU time from
// /proc, heap and goroutines from its /metrics.
//
// It is a measuring tool for one machine (Linux, /proc). It must never open a
// connection to anything but a loopback address: every -url and -metrics-url
// is checked up front, and every dial is checked again after name resolution
// and redirects.
package load

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is one run of a scenario. Fields are named after their flags in the
// Validate messages.
type Config struct {
	URL         string        // -url: the gateway's WebSocket endpoint, loopback only
	Conns       int           // -n: connections to open
	Channels    int           // -channels: distinct channels the connections spread over
	Tenant      string        // -tenant: tenant claim of the tokens and of the channel names
	RampRate    float64       // -ramp-rate: new connections per second
	MaxInFlight int           // -max-inflight: handshakes in progress at once
	ConnTimeout time.Duration // -conn-timeout: one connection's dial, connect and subscribe
	Settle      time.Duration // -settle: wait after the ramp before measuring
	Timeout     time.Duration // -timeout: the whole run, closing excluded (bounded by closeTimeout)
	HMACSecret  []byte        // -jwt-hmac-secret: the gateway's HS256 secret, to mint tokens
	ServerPID   int           // -server-pid: gateway process; 0 finds it by ServerPort
	ServerPort  int           // -server-port: port the gateway listens on; 0 takes the port of URL
	MetricsURL  string        // -metrics-url: the gateway's /metrics; empty derives it from URL

	Logger *slog.Logger // progress; nil discards
}

// Defaults returns a Config with every default filled in except the secret.
func Defaults() Config {
	return Config{
		URL:         "ws://127.0.0.1:8080/connection/websocket",
		Conns:       1000,
		Channels:    100,
		Tenant:      "acme",
		RampRate:    500,
		MaxInFlight: 256,
		ConnTimeout: 10 * time.Second,
		Settle:      5 * time.Second,
		Timeout:     5 * time.Minute,
	}
}

// tokenTTL is the lifetime of minted connection tokens; a run must end
// before they expire, or the gateway would start closing connections.
const tokenTTL = time.Hour

// Validate reports every bad setting, each naming its flag.
func (c *Config) Validate() error {
	var errs []error
	if err := CheckLoopback(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("-url: %w", err))
	}
	if c.MetricsURL != "" {
		if err := CheckLoopback(c.MetricsURL); err != nil {
			errs = append(errs, fmt.Errorf("-metrics-url: %w", err))
		}
	}
	if c.Conns < 1 {
		errs = append(errs, errors.New("-n must be at least 1"))
	}
	if c.Channels < 1 {
		errs = append(errs, errors.New("-channels must be at least 1"))
	}
	if c.Tenant == "" || strings.ContainsAny(c.Tenant, ":.*> ") {
		errs = append(errs, fmt.Errorf("-tenant %q must be a channel token like acme", c.Tenant))
	}
	if c.RampRate <= 0 {
		errs = append(errs, errors.New("-ramp-rate must be > 0 connections per second"))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, errors.New("-max-inflight must be at least 1"))
	}
	if c.ConnTimeout <= 0 {
		errs = append(errs, errors.New("-conn-timeout must be > 0"))
	}
	if c.Settle < 0 {
		errs = append(errs, errors.New("-settle must be >= 0"))
	}
	if c.Timeout <= 0 || c.Timeout > tokenTTL-time.Minute {
		errs = append(errs, fmt.Errorf("-timeout must be > 0 and under %v (the minted tokens' lifetime)", tokenTTL-time.Minute))
	}
	if len(c.HMACSecret) < 32 {
		errs = append(errs, errors.New("-jwt-hmac-secret must be the gateway's secret (at least 32 bytes)"))
	}
	if c.ServerPID < 0 {
		errs = append(errs, errors.New("-server-pid must be >= 0"))
	}
	if c.ServerPort < 0 || c.ServerPort > 65535 {
		errs = append(errs, errors.New("-server-port must be between 0 and 65535"))
	}
	return errors.Join(errs...)
}

// ErrNotLoopback is returned for a target outside this machine.
var ErrNotLoopback = errors.New("not a loopback address (want 127.0.0.0/8, ::1 or localhost): pulse-load only targets a gateway on this machine")

// CheckLoopback accepts a ws, wss, http or https URL whose host is localhost
// or a loopback IP.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("bad URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return fmt.Errorf("URL %q: scheme must be ws, wss, http or https", rawURL)
	}
	if !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("host %q: %w", u.Hostname(), ErrNotLoopback)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// metricsURL is MetricsURL, or /metrics on the host of the WebSocket URL.
func (c *Config) metricsURL() (string, error) {
	if c.MetricsURL != "" {
		return c.MetricsURL, nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return "", fmt.Errorf("-url: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "/metrics", "", "", ""
	return u.String(), nil
}

// serverPort is ServerPort, or the port of the WebSocket URL.
func (c *Config) serverPort() (int, error) {
	if c.ServerPort != 0 {
		return c.ServerPort, nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return 0, fmt.Errorf("-url: %w", err)
	}
	p := u.Port()
	if p == "" {
		if u.Scheme == "wss" || u.Scheme == "https" {
			return 443, nil
		}
		return 80, nil
	}
	n, err := net.LookupPort("tcp", p)
	if err != nil {
		return 0, fmt.Errorf("-url port: %w", err)
	}
	return n, nil
}

// channelName is the channel connection i subscribes to.
func (c *Config) channelName(i int) string {
	return fmt.Sprintf("tenant:%s:load-%d", c.Tenant, i%c.Channels)
}
