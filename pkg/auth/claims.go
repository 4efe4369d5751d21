package auth

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pulseplatform/pulse/pkg/channel"
)

// Grants are explicit permissions from the token issuer (claim allow).
// Patterns are channel names where a "*" token matches exactly one token
// (channel.Match).
type Grants struct {
	Subscribe []string `json:"subscribe,omitempty"`
	Publish   []string `json:"publish,omitempty"`
}

// Claims of a verified connection token.
type Claims struct {
	Subject   string          // sub, never empty
	Tenant    string          // tenant claim; "" for users outside any tenant
	Roles     []string        // roles claim
	Channels  []string        // channels claim: server-side subscriptions at connect, not permissions
	Info      json.RawMessage // info claim verbatim, nil if absent
	Allow     Grants          // allow claim
	ExpiresAt time.Time       // zero when the token has no exp
}

// SubClaims of a verified subscription token.
type SubClaims struct {
	Subject   string          // sub, never empty; must equal the connection's user
	Channel   string          // channel, never empty; must equal the requested channel
	Client    string          // optional: binds the token to one client id
	Info      json.RawMessage // info claim verbatim, nil if absent
	ExpiresAt time.Time       // zero when the token has no exp
}

// IsAdmin reports whether the user has the platform admin role.
func (c *Claims) IsAdmin() bool {
	return c != nil && slices.Contains(c.Roles, RoleAdmin)
}

// CanSubscribe reports whether the user may read ch (subscribe, history,
// presence) by the default rules of DESIGN §5:
//   - an allow.subscribe pattern matching ch grants it;
//   - role admin reads everything;
//   - system:* is readable by every authenticated user;
//   - tenant:T:* is readable when the tenant claim is T (non-empty);
//   - nothing else (admin:*, other tenants).
//
// A subscription token may grant one more channel; the gateway checks that
// separately.
func (c *Claims) CanSubscribe(ch channel.Channel) bool {
	if c == nil || ch.Name() == "" {
		return false
	}
	if matchAny(c.Allow.Subscribe, ch.Name()) || c.IsAdmin() {
		return true
	}
	switch ch.Namespace() {
	case channel.System:
		return true
	case channel.Tenant:
		return c.Tenant != "" && c.Tenant == ch.Tenant()
	}
	return false
}

// CanPublish reports whether the user may publish to ch from the client. Only
// an allow.publish grant allows it, for admins too: workers publish via NATS
// or the API, not through client connections.
func (c *Claims) CanPublish(ch channel.Channel) bool {
	return c != nil && ch.Name() != "" && matchAny(c.Allow.Publish, ch.Name())
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if p != "" && channel.Match(p, name) {
			return true
		}
	}
	return false
}

// tokenClaims is the wire shape of both token kinds. Lists use
// jwt.ClaimStrings so a single string is accepted where an array is expected
// (as for aud).
type tokenClaims struct {
	jwt.RegisteredClaims
	Tenant   string           `json:"tenant,omitempty"`
	Roles    jwt.ClaimStrings `json:"roles,omitempty"`
	Channels jwt.ClaimStrings `json:"channels,omitempty"`
	Info     json.RawMessage  `json:"info,omitempty"`
	Allow    *wireGrants      `json:"allow,omitempty"`
	// Channel stays raw so that its mere presence in a connection token is
	// detected, whatever its type.
	Channel json.RawMessage `json:"channel,omitempty"`
	Client  string          `json:"client,omitempty"`
}

type wireGrants struct {
	Subscribe jwt.ClaimStrings `json:"subscribe,omitempty"`
	Publish   jwt.ClaimStrings `json:"publish,omitempty"`
}

// rawInfo returns info verbatim, nil for an absent or null claim.
func (c *tokenClaims) rawInfo() json.RawMessage {
	if len(c.Info) == 0 || bytes.Equal(c.Info, []byte("null")) {
		return nil
	}
	return slices.Clone(c.Info)
}

func (c *tokenClaims) expiresAt() time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Time
}

func (c *tokenClaims) connect() *Claims {
	out := &Claims{
		Subject:   c.Subject,
		Tenant:    c.Tenant,
		Roles:     []string(c.Roles),
		Channels:  []string(c.Channels),
		Info:      c.rawInfo(),
		ExpiresAt: c.expiresAt(),
	}
	if c.Allow != nil {
		out.Allow = Grants{Subscribe: []string(c.Allow.Subscribe), Publish: []string(c.Allow.Publish)}
	}
	return out
}

func (c *tokenClaims) subscribe(ch string) *SubClaims {
	return &SubClaims{
		Subject:   c.Subject,
		Channel:   ch,
		Client:    c.Client,
		Info:      c.rawInfo(),
		ExpiresAt: c.expiresAt(),
	}
}
