package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

func TestMintRefusesMismatchedKeys(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	ed := ks.ed[0]
	tests := []struct {
		name string
		key  any
		alg  string
	}{
		{"alg none", ks.rsa[0], "none"},
		{"HMAC alg with RSA key", ks.rsa[0], "HS256"},
		{"RSA key with ES256", ks.rsa[0], "ES256"},
		{"RSA-PSS not offered", ks.rsa[0], "PS256"},
		{"small RSA key", ks.rsaSmall, "RS256"},
		{"P-256 key with ES384", ks.ec[0], "ES384"},
		{"Ed25519 key with RS256", ks.ed[0], "RS256"},
		{"public key", ks.ed[0].Public(), "EdDSA"},
		{"bytes", []byte("secret"), "HS256"},
		{"nil", nil, "EdDSA"},
		{"nil Ed25519 pointer", (*ed25519.PrivateKey)(nil), "EdDSA"},
		{"Ed25519 pointer works", &ed, "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Mint(tt.key, tt.alg, "", TokenSpec{Subject: "42"})
			if tt.name == "Ed25519 pointer works" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrMint) {
				t.Fatalf("Mint error = %v, want ErrMint", err)
			}
		})
	}
	for _, alg := range []string{"none", "RS256", "", "hs256"} {
		if _, err := MintHMAC(testSecret, alg, TokenSpec{Subject: "42"}); !errors.Is(err, ErrMint) {
			t.Errorf("MintHMAC alg %q error = %v, want ErrMint", alg, err)
		}
	}
	if _, err := MintHMAC(nil, "HS256", TokenSpec{Subject: "42"}); !errors.Is(err, ErrMint) {
		t.Errorf("MintHMAC empty secret error = %v, want ErrMint", err)
	}
}

func TestMintExtraOverrides(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, Config{HMACSecret: testSecret, Audience: "pulse"})
	tok := mintHMAC(t, "HS256", TokenSpec{Subject: "42", Tenant: "acme", TTL: time.Minute,
		Extra: map[string]any{"aud": "pulse", "tenant": "globex"}})
	c, err := v.VerifyConnect(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tenant != "globex" {
		t.Fatalf("tenant = %q, want Extra to override", c.Tenant)
	}
}
