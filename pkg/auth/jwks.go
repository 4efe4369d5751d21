package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// newJWKSStorage validates cfg.JWKSURL and starts a keyfunc/jwkset client on
// it: one fetch now (a failure is logged, not fatal), a refresh every
// JWKSRefreshInterval until ctx ends, and a refetch on an unknown kid at most
// once per JWKSMinRefetchInterval.
func newJWKSStorage(ctx context.Context, cfg Config, log *slog.Logger) (jwkset.Storage, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJWKSURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not an absolute http(s) URL", ErrBadJWKSURL, u.Redacted())
	}
	refresh := cfg.JWKSRefreshInterval
	if refresh <= 0 {
		refresh = DefaultJWKSRefreshInterval
	}
	minRefetch := cfg.JWKSMinRefetchInterval
	if minRefetch <= 0 {
		minRefetch = DefaultJWKSMinRefetchInterval
	}
	timeout := cfg.JWKSTimeout
	if timeout <= 0 {
		timeout = DefaultJWKSTimeout
	}
	where := u.Redacted()
	k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:          cfg.HTTPClient,
		HTTPTimeout:     timeout,
		RefreshInterval: refresh,
		// Burst 1: the first unknown kid refetches at once, later ones
		// wait for the interval. RateLimitWaitMax also bounds that refetch
		// and, being short, makes a lookup during the cool-down fail fast
		// instead of queueing behind the limiter.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(minRefetch), 1),
		RateLimitWaitMax:  timeout,
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				log.WarnContext(ctx, "JWKS fetch failed; will retry", "jwks_url", where, "error", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS client for %s: %w", where, err)
	}
	return k.Storage(), nil
}

// publicOf returns the public half of a JWK's key: a JWKS that (wrongly)
// publishes private keys must still only be used for verification.
func publicOf(key any) any {
	if p, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		return p.Public()
	}
	return key
}

// usable reports whether a JWK may verify a token signed with alg: it must be
// meant for signatures, name the same alg if it names one, and its key type
// (and curve) must fit alg. Symmetric "oct" keys never fit.
func usable(j jwkset.JWK, alg string) (any, error) {
	m := j.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("JWK %q has use %q, not sig", m.KID, m.USE)
	}
	if m.ALG != "" && m.ALG.String() != alg {
		return nil, fmt.Errorf("JWK %q is for alg %s, token says %s", m.KID, m.ALG, alg)
	}
	key := publicOf(j.Key())
	if !keyFits(key, alg) {
		return nil, fmt.Errorf("JWK %q (kty %s) does not fit alg %s", m.KID, m.KTY, alg)
	}
	return key, nil
}

// jwksKey returns the JWKS key named kid, refetching the set (rate-limited)
// when the kid is unknown.
func (v *Verifier) jwksKey(ctx context.Context, kid, alg string) (any, error) {
	j, err := v.jwks.KeyRead(ctx, kid)
	switch {
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return nil, fmt.Errorf("unknown kid %q", kid)
	case err != nil:
		// Typically the refetch rate limit: the kid is not in the cached
		// set and we may not ask the endpoint again yet.
		return nil, fmt.Errorf("unknown kid %q (JWKS not refetched: %w)", kid, err)
	}
	return usable(j, alg)
}

// jwksKeys returns every JWKS key that fits alg, for tokens without kid.
func (v *Verifier) jwksKeys(ctx context.Context, alg string) ([]any, error) {
	all, err := v.jwks.KeyReadAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading JWKS: %w", err)
	}
	var keys []any
	for _, j := range all {
		if key, err := usable(j, alg); err == nil {
			keys = append(keys, key)
		}
	}
	return keys, nil
}
