package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// keyFamily groups algs that share a key type. A key is only ever handed to
// the signature check of its own family, which is what makes algorithm
// confusion impossible.
type keyFamily int

const (
	familyNone keyFamily = iota
	familyHMAC
	familyRSA
	familyECDSA
	familyEd25519
)

// familyOf maps a JWS alg to its key family; unsupported algs (including
// "none" and the RSA-PSS family) map to familyNone.
func familyOf(alg string) keyFamily {
	switch alg {
	case "HS256", "HS384", "HS512":
		return familyHMAC
	case "RS256", "RS384", "RS512":
		return familyRSA
	case "ES256", "ES384", "ES512":
		return familyECDSA
	case "EdDSA":
		return familyEd25519
	}
	return familyNone
}

// algsOf lists the algs of a family, in the order they are offered.
func algsOf(f keyFamily) []string {
	switch f {
	case familyHMAC:
		return []string{"HS256", "HS384", "HS512"}
	case familyRSA:
		return []string{"RS256", "RS384", "RS512"}
	case familyECDSA:
		return []string{"ES256", "ES384", "ES512"}
	case familyEd25519:
		return []string{"EdDSA"}
	}
	return nil
}

// curveFor is the curve an ES* alg requires.
func curveFor(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	}
	return nil
}

// keyFits reports whether a public key may verify a token signed with alg.
func keyFits(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return familyOf(alg) == familyRSA && k.N != nil && k.N.BitLen() >= MinRSABits
	case *ecdsa.PublicKey:
		c := curveFor(alg)
		return c != nil && k.Curve != nil && k.Curve.Params().Name == c.Params().Name
	case ed25519.PublicKey:
		return alg == "EdDSA" && len(k) == ed25519.PublicKeySize
	}
	return false
}

// Verifier checks connection and subscription tokens. It is safe for
// concurrent use.
type Verifier struct {
	hmacSecret []byte
	publicKey  any            // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey; nil if none
	jwks       jwkset.Storage // nil without JWKSURL
	methods    []string       // algs some configured key can verify
	validator  *jwt.Validator // exp/nbf/aud/iss; signature is checked before it runs
	now        func() time.Time
	log        *slog.Logger
	cancel     context.CancelFunc
}

// NewVerifier builds a Verifier from cfg. ctx bounds the background JWKS
// refresh; Close stops it earlier. An unreachable JWKS endpoint is not fatal
// (it is logged and retried on demand), but a malformed JWKS URL, a bad PEM
// key or a config without any key is.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if len(cfg.HMACSecret) == 0 && len(cfg.PublicKeyPEM) == 0 && cfg.JWKSURL == "" {
		return nil, ErrNoKeySource
	}
	v := &Verifier{now: time.Now, log: cfg.Logger}
	if v.log == nil {
		v.log = slog.Default()
	}
	families := map[keyFamily]bool{}
	if len(cfg.HMACSecret) > 0 {
		v.hmacSecret = slices.Clone(cfg.HMACSecret)
		families[familyHMAC] = true
	}
	if len(cfg.PublicKeyPEM) > 0 {
		key, fam, err := parsePublicKeyPEM(cfg.PublicKeyPEM)
		if err != nil {
			return nil, err
		}
		v.publicKey = key
		families[fam] = true
	}
	if cfg.JWKSURL != "" {
		ctx, cancel := context.WithCancel(ctx)
		store, err := newJWKSStorage(ctx, cfg, v.log)
		if err != nil {
			cancel()
			return nil, err
		}
		v.jwks, v.cancel = store, cancel
		// JWKS never supplies HMAC keys: a symmetric "oct" JWK would let
		// whoever can read the endpoint forge tokens.
		families[familyRSA], families[familyECDSA], families[familyEd25519] = true, true, true
	}
	for _, f := range []keyFamily{familyHMAC, familyRSA, familyECDSA, familyEd25519} {
		if families[f] {
			v.methods = append(v.methods, algsOf(f)...)
		}
	}
	if len(v.methods) == 0 {
		// Never reached with the checks above, but an empty list would make
		// jwt.WithValidMethods accept every alg: refuse to build.
		v.Close()
		return nil, ErrNoKeySource
	}
	opts := []jwt.ParserOption{
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	}
	if cfg.RequireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.validator = jwt.NewValidator(opts...)
	return v, nil
}

// Close stops background JWKS refreshing. It is safe to call more than once.
func (v *Verifier) Close() {
	if v.cancel != nil {
		v.cancel()
	}
}

// parsePublicKeyPEM reads the first PEM block of data as a public key.
func parsePublicKeyPEM(data []byte) (any, keyFamily, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, familyNone, fmt.Errorf("%w: no PEM block found", ErrBadPublicKey)
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, familyNone, fmt.Errorf("%w: PEM block is %q, want \"PUBLIC KEY\" or \"RSA PUBLIC KEY\"", ErrBadPublicKey, block.Type)
	}
	if err != nil {
		return nil, familyNone, fmt.Errorf("%w: %w", ErrBadPublicKey, err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, familyNone, fmt.Errorf("%w: RSA key has %d bits, want at least %d", ErrBadPublicKey, k.N.BitLen(), MinRSABits)
		}
		return k, familyRSA, nil
	case *ecdsa.PublicKey:
		switch k.Curve.Params().Name {
		case "P-256", "P-384", "P-521":
			return k, familyECDSA, nil
		}
		return nil, familyNone, fmt.Errorf("%w: unsupported ECDSA curve %s", ErrBadPublicKey, k.Curve.Params().Name)
	case ed25519.PublicKey:
		return k, familyEd25519, nil
	}
	return nil, familyNone, fmt.Errorf("%w: unsupported key type %T", ErrBadPublicKey, key)
}

// keyfunc picks the verification key for a token. The parser has already
// refused any alg not in v.methods (so "none" never gets here), and the key
// returned is always of the alg's family.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		fam := familyOf(alg)
		if fam == familyNone {
			return nil, fmt.Errorf("alg %q not supported", alg)
		}
		rawKid, hasKid := t.Header["kid"]
		kid, ok := rawKid.(string)
		if hasKid && (!ok || kid == "") {
			return nil, errors.New("kid header must be a non-empty string")
		}
		if fam == familyHMAC {
			// Only the configured secret, never key material from PEM or
			// JWKS, whatever the kid says.
			if len(v.hmacSecret) == 0 {
				return nil, errors.New("HMAC tokens are not accepted (no secret configured)")
			}
			return v.hmacSecret, nil
		}
		if hasKid && v.jwks != nil {
			return v.jwksKey(ctx, kid, alg)
		}
		var keys []jwt.VerificationKey
		if v.publicKey != nil && keyFits(v.publicKey, alg) {
			keys = append(keys, v.publicKey)
		}
		if !hasKid && v.jwks != nil {
			more, err := v.jwksKeys(ctx, alg)
			if err != nil {
				return nil, err
			}
			for _, k := range more {
				keys = append(keys, k)
			}
		}
		switch len(keys) {
		case 0:
			return nil, fmt.Errorf("no configured key fits alg %s", alg)
		case 1:
			return keys[0], nil
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
}

// tokenError turns a jwt parse error into ErrTokenInvalid with the reason.
func tokenError(err error) error {
	return fmt.Errorf("%w: %w", ErrTokenInvalid, err)
}

// verify checks size, signature and then the registered claims, in that
// order, so that only a token with a valid signature can be reported as
// expired. check runs between the two for claim rules of the token kind.
func (v *Verifier) verify(ctx context.Context, token string, c *tokenClaims, check func(*tokenClaims) error) error {
	if token == "" {
		return fmt.Errorf("%w: empty token", ErrTokenInvalid)
	}
	if len(token) > MaxTokenLen {
		return fmt.Errorf("%w: token longer than %d bytes", ErrTokenInvalid, MaxTokenLen)
	}
	// WithoutClaimsValidation: the parser then only decodes and checks the
	// signature; time and audience checks run below, after we know the
	// signature is good, so a forged expired token is "invalid", not
	// "expired".
	p := jwt.NewParser(jwt.WithValidMethods(v.methods), jwt.WithoutClaimsValidation())
	if _, err := p.ParseWithClaims(token, c, v.keyfunc(ctx)); err != nil {
		return tokenError(err)
	}
	if c.Subject == "" {
		return fmt.Errorf("%w: sub claim missing or empty", ErrTokenInvalid)
	}
	if err := check(c); err != nil {
		return err
	}
	if err := v.validator.Validate(c); err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenInvalidAudience),
			errors.Is(err, jwt.ErrTokenInvalidIssuer),
			errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			return tokenError(err)
		case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet):
			return fmt.Errorf("%w: %w", ErrTokenExpired, err)
		}
		return tokenError(err)
	}
	return nil
}

// VerifyConnect verifies a connection token and returns its claims. A token
// carrying a channel claim (a subscription token) is refused. ctx bounds a
// JWKS refetch.
func (v *Verifier) VerifyConnect(ctx context.Context, token string) (*Claims, error) {
	var c tokenClaims
	err := v.verify(ctx, token, &c, func(c *tokenClaims) error {
		if c.Channel != nil {
			return fmt.Errorf("%w: connection token must not carry a channel claim", ErrTokenInvalid)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c.connect(), nil
}

// VerifySubscribe verifies a subscription token (claims sub and channel
// required) and returns its claims. The caller checks that sub and channel
// match the connection and the requested channel, and client if set.
func (v *Verifier) VerifySubscribe(ctx context.Context, token string) (*SubClaims, error) {
	var c tokenClaims
	var ch string
	err := v.verify(ctx, token, &c, func(c *tokenClaims) error {
		if c.Channel == nil {
			return fmt.Errorf("%w: subscription token has no channel claim", ErrTokenInvalid)
		}
		if err := json.Unmarshal(c.Channel, &ch); err != nil || ch == "" {
			return fmt.Errorf("%w: channel claim must be a non-empty string", ErrTokenInvalid)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c.subscribe(ch), nil
}
