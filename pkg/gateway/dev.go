package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/pulseplatform/pulse/pkg/auth"
)

// DevToken is a ready-made identity for -dev.
type DevToken struct {
	Label  string `json:"label"`
	User   string `json:"user"`
	Tenant string `json:"tenant,omitempty"`
	Token  string `json:"token"`
}

// devTokenTTL is long enough for a demo day; tokens are minted at each start.
const devTokenTTL = 24 * time.Hour

// DevTokens mints the demo identities of DESIGN §4: a user of tenant acme, a
// user of tenant globex and a platform admin.
func DevTokens(secret []byte) ([]DevToken, error) {
	specs := []struct {
		label string
		spec  auth.TokenSpec
	}{
		{"acme user (alice)", auth.TokenSpec{Subject: "alice", Tenant: "acme", Roles: []string{"member"},
			Info:  map[string]string{"name": "Alice", "tenant": "acme"},
			Allow: &auth.Grants{Publish: []string{"tenant:acme:collaboration"}}}},
		{"acme user (anna)", auth.TokenSpec{Subject: "anna", Tenant: "acme", Roles: []string{"member"},
			Info:  map[string]string{"name": "Anna", "tenant": "acme"},
			Allow: &auth.Grants{Publish: []string{"tenant:acme:collaboration"}}}},
		{"globex user (bob)", auth.TokenSpec{Subject: "bob", Tenant: "globex", Roles: []string{"member"},
			Info:  map[string]string{"name": "Bob", "tenant": "globex"},
			Allow: &auth.Grants{Publish: []string{"tenant:globex:collaboration"}}}},
		{"platform admin (root)", auth.TokenSpec{Subject: "root", Roles: []string{"admin"},
			Info: map[string]string{"name": "Platform admin"}}},
	}
	out := make([]DevToken, 0, len(specs))
	for _, s := range specs {
		s.spec.TTL = devTokenTTL
		tok, err := auth.MintHMAC(secret, "HS256", s.spec)
		if err != nil {
			return nil, fmt.Errorf("dev token %s: %w", s.label, err)
		}
		out = append(out, DevToken{Label: s.label, User: s.spec.Subject, Tenant: s.spec.Tenant, Token: tok})
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// printDev tells a newcomer how to use the dev gateway.
func printDev(w io.Writer, cfg Config, addr, natsURL string, tokens []DevToken) {
	fmt.Fprintf(w, "\nPulse dev mode: embedded NATS JetStream at %s, gateway at http://%s\n", natsURL, addr)
	fmt.Fprintf(w, "  Portal:     http://%s/ (pick a demo identity)\n", addr)
	fmt.Fprintf(w, "  WebSocket:  ws://%s/connection/websocket\n", addr)
	fmt.Fprintf(w, "  HMAC secret (-jwt-hmac-secret): %s\n", cfg.JWTHMACSecret)
	fmt.Fprintf(w, "  API key (X-API-Key):            %s\n", cfg.APIKey)
	fmt.Fprintf(w, "  Demo tokens (valid %s):\n", devTokenTTL)
	for _, t := range tokens {
		fmt.Fprintf(w, "    %-22s %s\n", t.Label+":", t.Token)
	}
	fmt.Fprintf(w, "  Publish:    nats --server %s pub tenants.acme.deployments '{\"status\":\"started\"}'\n", natsURL)
	fmt.Fprintf(w, "              curl -H 'X-API-Key: %s' -d '{\"channel\":\"tenant:acme:deployments\",\"data\":{\"status\":\"started\"}}' http://%s/api/publish\n\n", cfg.APIKey, addr)
}
