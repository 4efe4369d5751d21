package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenSpec describes a token to mint. Empty fields are left out of the
// token.
type TokenSpec struct {
	Subject, Tenant string
	Roles, Channels []string
	Info            any     // marshalled as JSON; pass json.RawMessage to embed verbatim
	Allow           *Grants // allow claim
	Channel         string  // only for subscription tokens
	// TTL sets exp to now+TTL. 0 means no exp; a negative TTL mints an
	// already expired token (useful in tests).
	TTL time.Duration
	// Extra claims are applied last and may override any of the above
	// (aud, iss, nbf, client, ...).
	Extra map[string]any
}

// ErrMint is wrapped by every Mint and MintHMAC error.
var ErrMint = errors.New("auth: cannot mint token")

// MintHMAC signs spec with an HMAC secret; alg is HS256, HS384 or HS512.
func MintHMAC(secret []byte, alg string, spec TokenSpec) (string, error) {
	if familyOf(alg) != familyHMAC {
		return "", fmt.Errorf("%w: alg %q is not HS256/384/512", ErrMint, alg)
	}
	if len(secret) == 0 {
		return "", fmt.Errorf("%w: empty HMAC secret", ErrMint)
	}
	return sign(jwt.GetSigningMethod(alg), secret, "", spec)
}

// Mint signs spec with a private key: *rsa.PrivateKey (RS256/384/512),
// *ecdsa.PrivateKey (ES256/384/512, curve must fit) or ed25519.PrivateKey
// (EdDSA). A non-empty kid goes into the header for JWKS lookup.
func Mint(key crypto.PrivateKey, alg, kid string, spec TokenSpec) (string, error) {
	var pub any
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PrivateKey:
		pub = k.Public()
	case *ed25519.PrivateKey:
		if k == nil {
			return "", fmt.Errorf("%w: nil key", ErrMint)
		}
		key, pub = *k, k.Public()
	default:
		return "", fmt.Errorf("%w: unsupported key type %T", ErrMint, key)
	}
	if !keyFits(pub, alg) {
		return "", fmt.Errorf("%w: alg %q does not fit a %T key (RSA needs %d bits or more, an ECDSA curve must match the alg)", ErrMint, alg, pub, MinRSABits)
	}
	return sign(jwt.GetSigningMethod(alg), key, kid, spec)
}

func sign(method jwt.SigningMethod, key any, kid string, spec TokenSpec) (string, error) {
	now := time.Now()
	c := jwt.MapClaims{"iat": now.Unix()}
	set := func(name string, v any, ok bool) {
		if ok {
			c[name] = v
		}
	}
	set("sub", spec.Subject, spec.Subject != "")
	set("tenant", spec.Tenant, spec.Tenant != "")
	set("roles", spec.Roles, spec.Roles != nil)
	set("channels", spec.Channels, spec.Channels != nil)
	set("info", spec.Info, spec.Info != nil)
	set("allow", spec.Allow, spec.Allow != nil)
	set("channel", spec.Channel, spec.Channel != "")
	set("exp", now.Add(spec.TTL).Unix(), spec.TTL != 0)
	maps.Copy(c, spec.Extra)
	t := jwt.NewWithClaims(method, c)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMint, err)
	}
	return s, nil
}
