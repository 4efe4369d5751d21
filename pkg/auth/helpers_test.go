package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
)

// testSecret is the HMAC secret used across tests.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// keys are generated once per test binary: RSA generation is slow and the
// machine is shared.
var testKeys = sync.OnceValue(func() *keySet {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	ks := &keySet{}
	var err error
	for i := range ks.rsa {
		ks.rsa[i], err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
	}
	ks.rsaSmall, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	for i, c := range []elliptic.Curve{elliptic.P256(), elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		ks.ec[i], err = ecdsa.GenerateKey(c, rand.Reader)
		must(err)
	}
	for i := range ks.ed {
		_, ks.ed[i], err = ed25519.GenerateKey(rand.Reader)
		must(err)
	}
	return ks
})

type keySet struct {
	rsa      [2]*rsa.PrivateKey   // two, for rotation
	rsaSmall *rsa.PrivateKey      // 1024 bits, must be refused
	ec       [4]*ecdsa.PrivateKey // P-256, P-256, P-384, P-521
	ed       [2]ed25519.PrivateKey
}

// pkixPEM encodes a public key as a "PUBLIC KEY" PEM block.
func pkixPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// pkcs1PEM encodes an RSA public key as an "RSA PUBLIC KEY" PEM block.
func pkcs1PEM(pub *rsa.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
}

func newVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

func mintHMAC(t testing.TB, alg string, spec TokenSpec) string {
	t.Helper()
	tok, err := MintHMAC(testSecret, alg, spec)
	if err != nil {
		t.Fatalf("MintHMAC: %v", err)
	}
	return tok
}

func mint(t testing.TB, key any, alg, kid string, spec TokenSpec) string {
	t.Helper()
	tok, err := Mint(key, alg, kid, spec)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

// rawToken assembles a token from a header, a claims object and a raw
// signature, for shapes the minting functions refuse to produce.
func rawToken(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// tamper flips the payload of a signed token so its signature no longer
// matches.
func tamper(t testing.TB, token string, claims map[string]any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// wantErr checks err against a sentinel and, for ErrTokenInvalid, that it is
// not also reported as expired.
func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if err != nil {
		t.Logf("error: %v", err) // shows *why* a token was refused under -v
	}
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want == nil:
		return
	case !errors.Is(err, want):
		t.Fatalf("error = %v, want %v", err, want)
	case want == ErrTokenInvalid && errors.Is(err, ErrTokenExpired):
		t.Fatalf("error = %v is both invalid and expired", err)
	case want == ErrTokenExpired && errors.Is(err, ErrTokenInvalid):
		t.Fatalf("error = %v is both expired and invalid", err)
	}
}
