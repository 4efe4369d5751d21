// Package auth verifies the JWTs that clients present to Pulse (connection
// tokens and Centrifugo-style subscription tokens), turns their claims into
// typed values and decides, by the default rules of DESIGN §5, who may read and
// publish on which channel. It also mints tokens for the gateway's -dev mode
// and for tests.
//
// Keys come from an HMAC secret, a PEM public key (RSA, ECDSA or Ed25519) and/or
// a JWKS endpoint. The key used for a token is chosen by the family of the
// token's alg header, and only a key of that family is ever handed to the
// signature check.
//
// This package must never accept an unsigned token (alg "none"), and must never
// use a public key (PEM bytes or JWKS material) as an HMAC secret: HS* tokens
// are checked with the configured HMAC secret and nothing else. It must never
// log a token.
//
// The package is pure apart from the optional JWKS fetch: no NATS, no globals.
package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Named errors. Callers map them to protocol codes with errors.Is.
var (
	// ErrTokenExpired means the signature is valid but exp has passed (or nbf
	// is still in the future). The gateway answers with protocol error 109 so
	// the SDK fetches a fresh token.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenInvalid covers every other refusal: malformed token, bad
	// signature, refused or mismatched alg, unknown kid, missing or forbidden
	// claims, wrong audience or issuer. It is always wrapped with the reason.
	ErrTokenInvalid = errors.New("invalid token")
	// ErrNoKeySource is returned by NewVerifier when Config names no key.
	ErrNoKeySource = errors.New("auth: no key source configured (set an HMAC secret, a public key file or a JWKS URL)")
	// ErrBadPublicKey is returned by NewVerifier when the PEM public key
	// cannot be used.
	ErrBadPublicKey = errors.New("auth: unusable public key")
	// ErrBadJWKSURL is returned by NewVerifier for a JWKS URL that is not an
	// absolute http(s) URL.
	ErrBadJWKSURL = errors.New("auth: bad JWKS URL")
)

// MaxTokenLen bounds the size of a token we are willing to parse, so a client
// cannot make us base64-decode and JSON-parse megabytes.
const MaxTokenLen = 64 << 10

// MinRSABits is the smallest RSA modulus accepted, from PEM or JWKS.
const MinRSABits = 2048

// RoleAdmin is the platform administrator role (DESIGN §5).
const RoleAdmin = "admin"

// Defaults for the JWKS client. Centrifugo caches JWKS keys for an hour and
// uses a short GET timeout; we do the same.
const (
	DefaultJWKSRefreshInterval    = time.Hour
	DefaultJWKSMinRefetchInterval = 30 * time.Second
	DefaultJWKSTimeout            = 2 * time.Second
)

// Config for a Verifier. Any combination of key sources may be set; at least
// one is required.
type Config struct {
	// HMACSecret verifies HS256/384/512 tokens. Empty means HS* tokens are
	// refused.
	HMACSecret []byte
	// PublicKeyPEM is the contents of -jwt-public-key-file: an RSA
	// (RS256/384/512), ECDSA (ES256/384/512, curve must fit the alg) or
	// Ed25519 (EdDSA) public key, as "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY"
	// (PKCS #1).
	PublicKeyPEM []byte
	// JWKSURL is a JWKS endpoint (RSA, EC and OKP/Ed25519 keys; "oct" keys
	// are ignored). An RS*/ES*/EdDSA token carrying a kid is checked with
	// that JWKS key only, even when PublicKeyPEM is also set; one without kid
	// tries the PEM key and every fitting JWKS key. An unknown kid triggers a
	// rate-limited refetch so key rotation works, and the set is also
	// refreshed periodically.
	JWKSURL string
	// HTTPClient is used for JWKS requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// RequireExp refuses tokens without exp. When false such tokens are
	// accepted and never expire.
	RequireExp bool
	// Audience and Issuer, when non-empty, must appear in aud / equal iss.
	Audience, Issuer string
	// Leeway is the allowed clock skew for exp and nbf.
	Leeway time.Duration

	// JWKSRefreshInterval is the period of the background refresh
	// (default DefaultJWKSRefreshInterval).
	JWKSRefreshInterval time.Duration
	// JWKSMinRefetchInterval is the minimum gap between refetches caused by
	// an unknown kid, so random kids cannot make us hammer the endpoint
	// (default DefaultJWKSMinRefetchInterval).
	JWKSMinRefetchInterval time.Duration
	// JWKSTimeout bounds one JWKS request (default DefaultJWKSTimeout).
	JWKSTimeout time.Duration
	// Logger receives JWKS fetch failures; nil means slog.Default().
	Logger *slog.Logger
}
