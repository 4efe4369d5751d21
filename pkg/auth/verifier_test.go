package auth

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewVerifierRefusesBadConfig(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	privDER, err := x509.MarshalPKCS8PrivateKey(ks.ec[0])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no key source", Config{}, ErrNoKeySource},
		{"empty secret is no key", Config{HMACSecret: []byte{}}, ErrNoKeySource},
		{"PEM garbage", Config{PublicKeyPEM: []byte("not a pem")}, ErrBadPublicKey},
		{"private key PEM", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})}, ErrBadPublicKey},
		{"corrupt PUBLIC KEY", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("xx")})}, ErrBadPublicKey},
		{"RSA key under 2048 bits", Config{PublicKeyPEM: pkixPEM(t, &ks.rsaSmall.PublicKey)}, ErrBadPublicKey},
		{"JWKS URL not parseable", Config{JWKSURL: "http://[::1"}, ErrBadJWKSURL},
		{"JWKS URL relative", Config{JWKSURL: "/jwks.json"}, ErrBadJWKSURL},
		{"JWKS URL wrong scheme", Config{JWKSURL: "ftp://example.com/jwks"}, ErrBadJWKSURL},
		{"JWKS URL without host", Config{JWKSURL: "https:///jwks"}, ErrBadJWKSURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(context.Background(), tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewVerifier error = %v, want %v", err, tt.want)
			}
			if v != nil {
				t.Fatal("got a verifier along with the error")
			}
		})
	}
}

func TestVerifyConnectAcceptsEverySupportedAlg(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	spec := TokenSpec{Subject: "42", TTL: time.Minute}
	tests := []struct {
		name string
		cfg  Config
		tok  func(t *testing.T) string
	}{
		{"HS256", Config{HMACSecret: testSecret}, func(t *testing.T) string { return mintHMAC(t, "HS256", spec) }},
		{"HS384", Config{HMACSecret: testSecret}, func(t *testing.T) string { return mintHMAC(t, "HS384", spec) }},
		{"HS512", Config{HMACSecret: testSecret}, func(t *testing.T) string { return mintHMAC(t, "HS512", spec) }},
		{"RS256 PKIX", Config{PublicKeyPEM: pkixPEM(t, &ks.rsa[0].PublicKey)}, func(t *testing.T) string { return mint(t, ks.rsa[0], "RS256", "", spec) }},
		{"RS384 PKCS1", Config{PublicKeyPEM: pkcs1PEM(&ks.rsa[0].PublicKey)}, func(t *testing.T) string { return mint(t, ks.rsa[0], "RS384", "", spec) }},
		{"RS512", Config{PublicKeyPEM: pkixPEM(t, &ks.rsa[0].PublicKey)}, func(t *testing.T) string { return mint(t, ks.rsa[0], "RS512", "", spec) }},
		{"ES256", Config{PublicKeyPEM: pkixPEM(t, &ks.ec[0].PublicKey)}, func(t *testing.T) string { return mint(t, ks.ec[0], "ES256", "", spec) }},
		{"ES384", Config{PublicKeyPEM: pkixPEM(t, &ks.ec[2].PublicKey)}, func(t *testing.T) string { return mint(t, ks.ec[2], "ES384", "", spec) }},
		{"ES512", Config{PublicKeyPEM: pkixPEM(t, &ks.ec[3].PublicKey)}, func(t *testing.T) string { return mint(t, ks.ec[3], "ES512", "", spec) }},
		{"EdDSA", Config{PublicKeyPEM: pkixPEM(t, ks.ed[0].Public())}, func(t *testing.T) string { return mint(t, ks.ed[0], "EdDSA", "", spec) }},
		{"kid ignored without JWKS", Config{PublicKeyPEM: pkixPEM(t, ks.ed[0].Public())}, func(t *testing.T) string { return mint(t, ks.ed[0], "EdDSA", "any", spec) }},
		{"HMAC and PEM together, HS256", Config{HMACSecret: testSecret, PublicKeyPEM: pkixPEM(t, &ks.rsa[0].PublicKey)}, func(t *testing.T) string { return mintHMAC(t, "HS256", spec) }},
		{"HMAC and PEM together, RS256", Config{HMACSecret: testSecret, PublicKeyPEM: pkixPEM(t, &ks.rsa[0].PublicKey)}, func(t *testing.T) string { return mint(t, ks.rsa[0], "RS256", "", spec) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, tt.cfg)
			c, err := v.VerifyConnect(context.Background(), tt.tok(t))
			if err != nil {
				t.Fatalf("VerifyConnect: %v", err)
			}
			if c.Subject != "42" {
				t.Fatalf("subject = %q", c.Subject)
			}
		})
	}
}

// TestVerifyConnectRefusesForgedAndMalformed covers alg none, algorithm
// confusion, wrong key family, bad signatures and malformed input: all must
// be ErrTokenInvalid, never ErrTokenExpired.
func TestVerifyConnectRefusesForgedAndMalformed(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	rsaPEM := pkixPEM(t, &ks.rsa[0].PublicKey)
	ecPEM := pkixPEM(t, &ks.ec[0].PublicKey)
	edPEM := pkixPEM(t, ks.ed[0].Public())
	live := TokenSpec{Subject: "42", TTL: time.Minute}
	liveClaims := map[string]any{"sub": "42", "exp": time.Now().Add(time.Minute).Unix()}
	hmacWith := func(secret []byte, alg string) func(t *testing.T) string {
		return func(t *testing.T) string {
			tok, err := MintHMAC(secret, alg, live)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	tests := []struct {
		name string
		cfg  Config
		tok  func(t *testing.T) string
	}{
		{"alg none", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return rawToken(t, map[string]any{"alg": "none", "typ": "JWT"}, liveClaims, nil)
		}},
		{"alg none with PEM", Config{PublicKeyPEM: rsaPEM}, func(t *testing.T) string {
			return rawToken(t, map[string]any{"alg": "none"}, liveClaims, nil)
		}},
		{"alg None spelled differently", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return rawToken(t, map[string]any{"alg": "NONE"}, liveClaims, nil)
		}},
		{"alg missing", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return rawToken(t, map[string]any{"typ": "JWT"}, liveClaims, []byte("x"))
		}},
		{"HS256 signed with RSA PEM as secret", Config{PublicKeyPEM: rsaPEM}, hmacWith(rsaPEM, "HS256")},
		{"HS256 signed with RSA PEM, HMAC also configured", Config{HMACSecret: testSecret, PublicKeyPEM: rsaPEM}, hmacWith(rsaPEM, "HS256")},
		{"HS384 signed with EC PEM as secret", Config{PublicKeyPEM: ecPEM}, hmacWith(ecPEM, "HS384")},
		{"HS512 signed with Ed25519 PEM as secret", Config{PublicKeyPEM: edPEM}, hmacWith(edPEM, "HS512")},
		{"HS256 signed with PKCS1 PEM as secret", Config{PublicKeyPEM: pkcs1PEM(&ks.rsa[0].PublicKey)}, hmacWith(pkcs1PEM(&ks.rsa[0].PublicKey), "HS256")},
		{"HS256 with wrong secret", Config{HMACSecret: testSecret}, hmacWith([]byte("another secret of enough length!"), "HS256")},
		{"RS256 with only HMAC configured", Config{HMACSecret: testSecret}, func(t *testing.T) string { return mint(t, ks.rsa[0], "RS256", "", live) }},
		{"RS256 token, EC key configured", Config{PublicKeyPEM: ecPEM}, func(t *testing.T) string { return mint(t, ks.rsa[0], "RS256", "", live) }},
		{"ES256 token, RSA key configured", Config{PublicKeyPEM: rsaPEM}, func(t *testing.T) string { return mint(t, ks.ec[0], "ES256", "", live) }},
		{"EdDSA token, RSA key configured", Config{PublicKeyPEM: rsaPEM}, func(t *testing.T) string { return mint(t, ks.ed[0], "EdDSA", "", live) }},
		{"ES384 token, P-256 key configured", Config{PublicKeyPEM: ecPEM}, func(t *testing.T) string { return mint(t, ks.ec[2], "ES384", "", live) }},
		{"ES256 token signed by other P-256 key", Config{PublicKeyPEM: ecPEM}, func(t *testing.T) string { return mint(t, ks.ec[1], "ES256", "", live) }},
		{"RS256 token signed by other RSA key", Config{PublicKeyPEM: rsaPEM}, func(t *testing.T) string { return mint(t, ks.rsa[1], "RS256", "", live) }},
		{"EdDSA token signed by other key", Config{PublicKeyPEM: edPEM}, func(t *testing.T) string { return mint(t, ks.ed[1], "EdDSA", "", live) }},
		{"PS256 not supported", Config{PublicKeyPEM: rsaPEM}, func(t *testing.T) string {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodPS256, jwt.MapClaims(liveClaims)).SignedString(ks.rsa[0])
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{"payload tampered", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return tamper(t, mintHMAC(t, "HS256", live), map[string]any{"sub": "admin", "roles": []string{"admin"}, "exp": time.Now().Add(time.Minute).Unix()})
		}},
		{"signature stripped", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			tok := mintHMAC(t, "HS256", live)
			return tok[:strings.LastIndex(tok, ".")+1]
		}},
		{"kid not a string", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			tk := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(liveClaims))
			tk.Header["kid"] = 7
			tok, err := tk.SignedString(testSecret)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{"empty", Config{HMACSecret: testSecret}, func(*testing.T) string { return "" }},
		{"one segment", Config{HMACSecret: testSecret}, func(*testing.T) string { return "abc" }},
		{"four segments", Config{HMACSecret: testSecret}, func(t *testing.T) string { return mintHMAC(t, "HS256", live) + ".x" }},
		{"header not JSON", Config{HMACSecret: testSecret}, func(*testing.T) string { return "bm90IGpzb24.e30.c2ln" }},
		{"too long", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return mintHMAC(t, "HS256", TokenSpec{Subject: "42", TTL: time.Minute, Info: strings.Repeat("x", MaxTokenLen)})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, tt.cfg)
			c, err := v.VerifyConnect(context.Background(), tt.tok(t))
			wantErr(t, err, ErrTokenInvalid)
			if c != nil {
				t.Fatalf("claims returned with error: %+v", c)
			}
		})
	}
}

func TestVerifyConnectExpiry(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	edPEM := pkixPEM(t, ks.ed[0].Public())
	expired := TokenSpec{Subject: "42", TTL: -time.Minute}
	tests := []struct {
		name string
		cfg  Config
		tok  func(t *testing.T) string
		want error
	}{
		{"expired HS256", Config{HMACSecret: testSecret}, func(t *testing.T) string { return mintHMAC(t, "HS256", expired) }, ErrTokenExpired},
		{"expired EdDSA", Config{PublicKeyPEM: edPEM}, func(t *testing.T) string { return mint(t, ks.ed[0], "EdDSA", "", expired) }, ErrTokenExpired},
		{"nbf in the future", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return mintHMAC(t, "HS256", TokenSpec{Subject: "42", TTL: time.Hour, Extra: map[string]any{"nbf": time.Now().Add(time.Minute).Unix()}})
		}, ErrTokenExpired},
		{"expired within leeway", Config{HMACSecret: testSecret, Leeway: time.Hour}, func(t *testing.T) string { return mintHMAC(t, "HS256", expired) }, nil},
		{"expired and forged (wrong secret)", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			tok, err := MintHMAC([]byte("not the configured secret at all"), "HS256", expired)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, ErrTokenInvalid},
		{"expired and tampered", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return tamper(t, mintHMAC(t, "HS256", expired), map[string]any{"sub": "43", "exp": time.Now().Add(-time.Minute).Unix()})
		}, ErrTokenInvalid},
		{"expired and signed by another key", Config{PublicKeyPEM: edPEM}, func(t *testing.T) string { return mint(t, ks.ed[1], "EdDSA", "", expired) }, ErrTokenInvalid},
		{"expired alg none", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return rawToken(t, map[string]any{"alg": "none"}, map[string]any{"sub": "42", "exp": time.Now().Add(-time.Minute).Unix()}, nil)
		}, ErrTokenInvalid},
		{"expired without sub", Config{HMACSecret: testSecret}, func(t *testing.T) string { return mintHMAC(t, "HS256", TokenSpec{TTL: -time.Minute}) }, ErrTokenInvalid},
		{"expired with wrong audience", Config{HMACSecret: testSecret, Audience: "pulse"}, func(t *testing.T) string {
			return mintHMAC(t, "HS256", TokenSpec{Subject: "42", TTL: -time.Minute, Extra: map[string]any{"aud": "other"}})
		}, ErrTokenInvalid},
		{"no exp when required", Config{HMACSecret: testSecret, RequireExp: true}, func(t *testing.T) string { return mintHMAC(t, "HS256", TokenSpec{Subject: "42"}) }, ErrTokenInvalid},
		{"no exp when not required", Config{HMACSecret: testSecret}, func(t *testing.T) string { return mintHMAC(t, "HS256", TokenSpec{Subject: "42"}) }, nil},
		{"exp not a number", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return mintHMAC(t, "HS256", TokenSpec{Subject: "42", Extra: map[string]any{"exp": "tomorrow"}})
		}, ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, tt.cfg)
			_, err := v.VerifyConnect(context.Background(), tt.tok(t))
			wantErr(t, err, tt.want)
		})
	}
}

func TestVerifyConnectClaimRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		spec TokenSpec
		want error
	}{
		{"missing sub", Config{}, TokenSpec{TTL: time.Minute}, ErrTokenInvalid},
		{"empty sub in Extra", Config{}, TokenSpec{TTL: time.Minute, Extra: map[string]any{"sub": ""}}, ErrTokenInvalid},
		{"numeric sub", Config{}, TokenSpec{TTL: time.Minute, Extra: map[string]any{"sub": 42}}, ErrTokenInvalid},
		{"channel claim in connection token", Config{}, TokenSpec{Subject: "42", TTL: time.Minute, Channel: "tenant:acme:deployments"}, ErrTokenInvalid},
		{"null channel claim in connection token", Config{}, TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"channel": nil}}, ErrTokenInvalid},
		{"audience string matches", Config{Audience: "pulse"}, TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"aud": "pulse"}}, nil},
		{"audience array matches", Config{Audience: "pulse"}, TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"aud": []string{"other", "pulse"}}}, nil},
		{"audience wrong", Config{Audience: "pulse"}, TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"aud": []string{"other"}}}, ErrTokenInvalid},
		{"audience missing", Config{Audience: "pulse"}, TokenSpec{Subject: "42", TTL: time.Minute}, ErrTokenInvalid},
		{"audience not checked when unset", Config{}, TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"aud": "whatever"}}, nil},
		{"audience of wrong type", Config{}, TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"aud": 5}}, ErrTokenInvalid},
		{"issuer matches", Config{Issuer: "https://id.example"}, TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"iss": "https://id.example"}}, nil},
		{"issuer wrong", Config{Issuer: "https://id.example"}, TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"iss": "https://evil.example"}}, ErrTokenInvalid},
		{"issuer missing", Config{Issuer: "https://id.example"}, TokenSpec{Subject: "42", TTL: time.Minute}, ErrTokenInvalid},
		{"roles of wrong type", Config{}, TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"roles": 1}}, ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.HMACSecret = testSecret
			v := newVerifier(t, tt.cfg)
			_, err := v.VerifyConnect(context.Background(), mintHMAC(t, "HS256", tt.spec))
			wantErr(t, err, tt.want)
		})
	}
}

func TestVerifyConnectParsesClaims(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, Config{HMACSecret: testSecret, RequireExp: true})
	tests := []struct {
		name  string
		extra map[string]any
		check func(t *testing.T, c *Claims)
	}{
		{"roles missing", nil, func(t *testing.T, c *Claims) {
			if c.Roles != nil || c.IsAdmin() || c.Info != nil || c.Channels != nil {
				t.Fatalf("got %+v", c)
			}
		}},
		{"roles as a single string", map[string]any{"roles": "admin"}, func(t *testing.T, c *Claims) {
			if !c.IsAdmin() {
				t.Fatalf("roles = %v", c.Roles)
			}
		}},
		{"info object verbatim", map[string]any{"info": json.RawMessage(`{"name":"Ann","n":[1,2]}`)}, func(t *testing.T, c *Claims) {
			if string(c.Info) != `{"name":"Ann","n":[1,2]}` {
				t.Fatalf("info = %s", c.Info)
			}
		}},
		{"info string", map[string]any{"info": "hello"}, func(t *testing.T, c *Claims) {
			if string(c.Info) != `"hello"` {
				t.Fatalf("info = %s", c.Info)
			}
		}},
		{"info number", map[string]any{"info": 3.5}, func(t *testing.T, c *Claims) {
			if string(c.Info) != `3.5` {
				t.Fatalf("info = %s", c.Info)
			}
		}},
		{"info array", map[string]any{"info": []int{1}}, func(t *testing.T, c *Claims) {
			if string(c.Info) != `[1]` {
				t.Fatalf("info = %s", c.Info)
			}
		}},
		{"info null", map[string]any{"info": nil}, func(t *testing.T, c *Claims) {
			if c.Info != nil {
				t.Fatalf("info = %s", c.Info)
			}
		}},
		{"allow as strings", map[string]any{"allow": map[string]any{"subscribe": "tenant:globex:shared", "publish": []string{"tenant:acme:*"}}}, func(t *testing.T, c *Claims) {
			if len(c.Allow.Subscribe) != 1 || c.Allow.Subscribe[0] != "tenant:globex:shared" || len(c.Allow.Publish) != 1 {
				t.Fatalf("allow = %+v", c.Allow)
			}
		}},
		{"unknown claims ignored", map[string]any{"jti": "x", "subs": map[string]any{}, "meta": 1}, func(*testing.T, *Claims) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := mintHMAC(t, "HS256", TokenSpec{Subject: "42", TTL: time.Minute, Extra: tt.extra})
			c, err := v.VerifyConnect(context.Background(), tok)
			if err != nil {
				t.Fatalf("VerifyConnect: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestVerifyConnectReturnsAllClaims(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, Config{HMACSecret: testSecret, RequireExp: true})
	tok := mintHMAC(t, "HS512", TokenSpec{
		Subject:  "u1",
		Tenant:   "acme",
		Roles:    []string{"member", "tenant_admin"},
		Channels: []string{"tenant:acme:deployments", "system:health"},
		Info:     map[string]string{"name": "Ann"},
		Allow:    &Grants{Subscribe: []string{"tenant:globex:shared"}, Publish: []string{"tenant:acme:collaboration"}},
		TTL:      time.Hour,
	})
	c, err := v.VerifyConnect(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "u1" || c.Tenant != "acme" || len(c.Roles) != 2 || c.IsAdmin() ||
		len(c.Channels) != 2 || string(c.Info) != `{"name":"Ann"}` ||
		c.Allow.Subscribe[0] != "tenant:globex:shared" || c.Allow.Publish[0] != "tenant:acme:collaboration" {
		t.Fatalf("claims = %+v", c)
	}
	if d := time.Until(c.ExpiresAt); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Fatalf("ExpiresAt %v is %v away", c.ExpiresAt, d)
	}
	noExp, err := v.VerifyConnect(context.Background(), mintHMAC(t, "HS256", TokenSpec{Subject: "u1", TTL: time.Hour, Extra: map[string]any{"exp": nil}}))
	if err == nil {
		t.Fatalf("exp null accepted with RequireExp: %+v", noExp)
	}
}

func TestVerifySubscribe(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	v := newVerifier(t, Config{HMACSecret: testSecret, PublicKeyPEM: pkixPEM(t, ks.ed[0].Public()), RequireExp: true})
	tests := []struct {
		name string
		tok  func(t *testing.T) string
		want error
	}{
		{"valid", func(t *testing.T) string {
			return mintHMAC(t, "HS256", TokenSpec{Subject: "42", Channel: "tenant:globex:shared", TTL: time.Minute, Info: "x", Extra: map[string]any{"client": "c1"}})
		}, nil},
		{"valid EdDSA", func(t *testing.T) string {
			return mint(t, ks.ed[0], "EdDSA", "", TokenSpec{Subject: "42", Channel: "tenant:globex:shared", TTL: time.Minute})
		}, nil},
		{"connection token", func(t *testing.T) string { return mintHMAC(t, "HS256", TokenSpec{Subject: "42", TTL: time.Minute}) }, ErrTokenInvalid},
		{"channel not a string", func(t *testing.T) string {
			return mintHMAC(t, "HS256", TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"channel": []string{"a"}}})
		}, ErrTokenInvalid},
		{"channel empty", func(t *testing.T) string {
			return mintHMAC(t, "HS256", TokenSpec{Subject: "42", TTL: time.Minute, Extra: map[string]any{"channel": ""}})
		}, ErrTokenInvalid},
		{"missing sub", func(t *testing.T) string {
			return mintHMAC(t, "HS256", TokenSpec{Channel: "tenant:globex:shared", TTL: time.Minute})
		}, ErrTokenInvalid},
		{"missing exp", func(t *testing.T) string {
			return mintHMAC(t, "HS256", TokenSpec{Subject: "42", Channel: "tenant:globex:shared"})
		}, ErrTokenInvalid},
		{"expired", func(t *testing.T) string {
			return mintHMAC(t, "HS256", TokenSpec{Subject: "42", Channel: "tenant:globex:shared", TTL: -time.Minute})
		}, ErrTokenExpired},
		{"expired and forged", func(t *testing.T) string {
			return mint(t, ks.ed[1], "EdDSA", "", TokenSpec{Subject: "42", Channel: "tenant:globex:shared", TTL: -time.Minute})
		}, ErrTokenInvalid},
		{"alg none", func(t *testing.T) string {
			return rawToken(t, map[string]any{"alg": "none"}, map[string]any{"sub": "42", "channel": "tenant:globex:shared", "exp": time.Now().Add(time.Minute).Unix()}, nil)
		}, ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := v.VerifySubscribe(context.Background(), tt.tok(t))
			wantErr(t, err, tt.want)
			if err == nil && (c.Subject != "42" || c.Channel != "tenant:globex:shared" || c.ExpiresAt.IsZero()) {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
	c, err := v.VerifySubscribe(context.Background(), mintHMAC(t, "HS256", TokenSpec{Subject: "42", Channel: "tenant:globex:shared", TTL: time.Minute, Info: "x", Extra: map[string]any{"client": "c1"}}))
	if err != nil || c.Client != "c1" || string(c.Info) != `"x"` {
		t.Fatalf("VerifySubscribe = %+v, %v", c, err)
	}
}

// TestVerifyConnectUsesVerifierClock pins the clock so expiry is decided by
// the Verifier's time, with leeway on both sides.
func TestVerifyConnectUsesVerifierClock(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, Config{HMACSecret: testSecret, Leeway: 5 * time.Second})
	tok := mintHMAC(t, "HS256", TokenSpec{Subject: "42", TTL: time.Minute})
	base := time.Now()
	for _, tc := range []struct {
		at   time.Duration
		want error
	}{
		{0, nil},
		{time.Minute + 3*time.Second, nil},
		{time.Minute + 10*time.Second, ErrTokenExpired},
	} {
		v.now = func() time.Time { return base.Add(tc.at) }
		_, err := v.VerifyConnect(context.Background(), tok)
		wantErr(t, err, tc.want)
	}
}

func TestVerifierIgnoresUnreachableJWKSAtStart(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(nil)
	url := srv.URL + "/jwks.json"
	srv.Close()
	v, err := NewVerifier(context.Background(), Config{JWKSURL: url, JWKSTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatalf("NewVerifier with unreachable JWKS: %v", err)
	}
	defer v.Close()
	_, err = v.VerifyConnect(context.Background(), mint(t, testKeys().ed[0], "EdDSA", "a", TokenSpec{Subject: "42"}))
	wantErr(t, err, ErrTokenInvalid)
}
