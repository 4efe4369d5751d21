package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzVerifyConnect feeds arbitrary strings to VerifyConnect and
// VerifySubscribe: they must never panic, and every refusal must be one of
// the two named errors.
func FuzzVerifyConnect(f *testing.F) {
	ks := testKeys()
	v, err := NewVerifier(context.Background(), Config{
		HMACSecret:   testSecret,
		PublicKeyPEM: pkixPEM(f, &ks.ec[0].PublicKey),
		RequireExp:   true,
		Audience:     "pulse",
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	spec := TokenSpec{Subject: "42", Tenant: "acme", Roles: []string{"admin"}, Info: map[string]any{"a": 1},
		Allow: &Grants{Subscribe: []string{"tenant:*:x"}}, TTL: time.Hour, Extra: map[string]any{"aud": "pulse"}}
	f.Add(mintHMAC(f, "HS256", spec))
	f.Add(mintHMAC(f, "HS512", TokenSpec{Subject: "42", TTL: -time.Hour}))
	f.Add(mint(f, ks.ec[0], "ES256", "kid", spec))
	f.Add(mintHMAC(f, "HS256", TokenSpec{Subject: "42", Channel: "tenant:acme:x", TTL: time.Hour}))
	f.Add(rawToken(f, map[string]any{"alg": "none"}, map[string]any{"sub": "42"}, nil))
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add("..")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		ctx := context.Background()
		c, err := v.VerifyConnect(ctx, token)
		if err != nil {
			if c != nil || !(errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired)) {
				t.Fatalf("VerifyConnect = %v, %v", c, err)
			}
		} else if c.Subject == "" {
			t.Fatalf("accepted token without subject: %+v", c)
		}
		s, err := v.VerifySubscribe(ctx, token)
		if err != nil {
			if s != nil || !(errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired)) {
				t.Fatalf("VerifySubscribe = %v, %v", s, err)
			}
		} else if s.Subject == "" || s.Channel == "" {
			t.Fatalf("accepted sub token without subject or channel: %+v", s)
		}
	})
}
