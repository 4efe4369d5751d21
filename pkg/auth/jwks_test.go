package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// jwksServer serves a JWKS that tests can swap, and counts requests.
type jwksServer struct {
	t        *testing.T
	srv      *httptest.Server
	hits     atomic.Int64
	failNext atomic.Int64 // answer this many requests with 503
	mu       sync.Mutex
	body     []byte
}

type testJWK struct {
	kid, alg string // alg "" leaves the JWK's alg out
	key      any    // public key, or []byte for an oct key
}

func newJWKSServer(t *testing.T, keys ...testJWK) *jwksServer {
	t.Helper()
	s := &jwksServer{t: t}
	s.set(keys...)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		if s.failNext.Load() > 0 {
			s.failNext.Add(-1)
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// set replaces the served key set (key rotation).
func (s *jwksServer) set(keys ...testJWK) {
	s.t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		_, private := k.key.([]byte)
		j, err := jwkset.NewJWKFromKey(k.key, jwkset.JWKOptions{
			Marshal:  jwkset.JWKMarshalOptions{Private: private},
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig},
		})
		if err != nil {
			s.t.Fatalf("JWK %s: %v", k.kid, err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	body, err := json.Marshal(set)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func (s *jwksServer) verifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	cfg.JWKSURL = s.srv.URL + "/.well-known/jwks.json"
	cfg.HTTPClient = s.srv.Client()
	return newVerifier(t, cfg)
}

// TestJWKSKeyRotation: a token with kid A verifies; the server rotates to kid
// B; a token with kid B verifies (unknown kid triggers a refetch); a token
// with the removed kid A is refused. For each key type a JWKS can carry.
func TestJWKSKeyRotation(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	tests := []struct {
		alg        string
		privA      crypto.Signer
		privB      crypto.Signer
		jwkAlgName string
	}{
		{"RS256", ks.rsa[0], ks.rsa[1], "RS256"},
		{"ES256", ks.ec[0], ks.ec[1], "ES256"},
		{"EdDSA", ks.ed[0], ks.ed[1], "EdDSA"},
		{"RS256 JWK without alg", ks.rsa[0], ks.rsa[1], ""},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			t.Parallel()
			alg, _, _ := strings.Cut(tt.alg, " ")
			srv := newJWKSServer(t, testJWK{"A", tt.jwkAlgName, tt.privA.Public()})
			v := srv.verifier(t, Config{RequireExp: true})
			ctx := context.Background()
			spec := TokenSpec{Subject: "42", TTL: time.Minute}

			tokA := mint(t, tt.privA, alg, "A", spec)
			if _, err := v.VerifyConnect(ctx, tokA); err != nil {
				t.Fatalf("token A before rotation: %v", err)
			}
			srv.set(testJWK{"B", tt.jwkAlgName, tt.privB.Public()})
			if _, err := v.VerifyConnect(ctx, mint(t, tt.privB, alg, "B", spec)); err != nil {
				t.Fatalf("token B after rotation: %v", err)
			}
			_, err := v.VerifyConnect(ctx, tokA)
			wantErr(t, err, ErrTokenInvalid)
			// Key B signing a token that claims kid A is refused too.
			_, err = v.VerifyConnect(ctx, mint(t, tt.privB, alg, "A", spec))
			wantErr(t, err, ErrTokenInvalid)
			// Expired with a valid JWKS signature is "expired".
			_, err = v.VerifyConnect(ctx, mint(t, tt.privB, alg, "B", TokenSpec{Subject: "42", TTL: -time.Minute}))
			wantErr(t, err, ErrTokenExpired)
		})
	}
}

func TestJWKSUnknownKidRefetchIsRateLimited(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	srv := newJWKSServer(t, testJWK{"A", "EdDSA", ks.ed[0].Public()})
	v := srv.verifier(t, Config{JWKSMinRefetchInterval: time.Hour})
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("hits after start = %d, want 1", got)
	}
	ctx := context.Background()
	for i := range 5 {
		_, err := v.VerifyConnect(ctx, mint(t, ks.ed[1], "EdDSA", "nope", TokenSpec{Subject: "42"}))
		wantErr(t, err, ErrTokenInvalid)
		if i == 0 && srv.hits.Load() != 2 {
			t.Fatalf("first unknown kid did not refetch (hits %d)", srv.hits.Load())
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits after 5 unknown kids = %d, want 2 (one refetch)", got)
	}
}

func TestJWKSUnreachableAtStartRecoversLazily(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	srv := newJWKSServer(t, testJWK{"A", "ES256", ks.ec[0].Public()})
	srv.failNext.Store(1)
	v := srv.verifier(t, Config{})
	if _, err := v.VerifyConnect(context.Background(), mint(t, ks.ec[0], "ES256", "A", TokenSpec{Subject: "42"})); err != nil {
		t.Fatalf("after failed first fetch: %v", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2", got)
	}
}

// octSecret is published as a symmetric JWK; it must never verify anything.
var octSecret = []byte("published-in-jwks-so-not-a-secret")

func TestJWKSKeyMustFitTokenAlg(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	srv := newJWKSServer(t,
		testJWK{"rsa", "RS256", &ks.rsa[0].PublicKey},
		testJWK{"ec", "ES256", &ks.ec[0].PublicKey},
		testJWK{"ec-noalg", "", &ks.ec[0].PublicKey},
		testJWK{"ed", "EdDSA", ks.ed[0].Public()},
		testJWK{"sym", "HS256", octSecret},
	)
	ctx := context.Background()
	spec := TokenSpec{Subject: "42", TTL: time.Minute}
	tests := []struct {
		name string
		cfg  Config
		tok  func(t *testing.T) string
		want error
	}{
		{"RS256 with RSA kid", Config{}, func(t *testing.T) string { return mint(t, ks.rsa[0], "RS256", "rsa", spec) }, nil},
		{"RS512 but JWK says RS256", Config{}, func(t *testing.T) string { return mint(t, ks.rsa[0], "RS512", "rsa", spec) }, ErrTokenInvalid},
		{"RS256 with EC kid", Config{}, func(t *testing.T) string { return mint(t, ks.rsa[0], "RS256", "ec", spec) }, ErrTokenInvalid},
		{"ES384 with P-256 kid without alg", Config{}, func(t *testing.T) string { return mint(t, ks.ec[2], "ES384", "ec-noalg", spec) }, ErrTokenInvalid},
		{"ES256 with kid without alg", Config{}, func(t *testing.T) string { return mint(t, ks.ec[0], "ES256", "ec-noalg", spec) }, nil},
		{"EdDSA with RSA kid", Config{}, func(t *testing.T) string { return mint(t, ks.ed[0], "EdDSA", "rsa", spec) }, ErrTokenInvalid},
		{"no kid tries fitting keys", Config{}, func(t *testing.T) string { return mint(t, ks.ed[0], "EdDSA", "", spec) }, nil},
		{"no kid, no fitting key", Config{}, func(t *testing.T) string { return mint(t, ks.ed[1], "EdDSA", "", spec) }, ErrTokenInvalid},
		{"oct JWK never used for HS256", Config{}, func(t *testing.T) string {
			return mintHMACKid(t, octSecret, "HS256", "sym", spec)
		}, ErrTokenInvalid},
		{"oct JWK never used for HS256, HMAC configured", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return mintHMACKid(t, octSecret, "HS256", "sym", spec)
		}, ErrTokenInvalid},
		{"HS256 with RSA kid signed with the RSA PEM", Config{HMACSecret: []byte("configured secret, not the PEM!!")}, func(t *testing.T) string {
			return mintHMACKid(t, pkixPEM(t, &ks.rsa[0].PublicKey), "HS256", "rsa", spec)
		}, ErrTokenInvalid},
		{"HS256 with a kid uses the configured secret", Config{HMACSecret: testSecret}, func(t *testing.T) string {
			return mintHMACKid(t, testSecret, "HS256", "rsa", spec)
		}, nil},
		{"kid unknown while PEM configured is refused", Config{PublicKeyPEM: pkixPEM(t, ks.ed[1].Public())}, func(t *testing.T) string {
			return mint(t, ks.ed[1], "EdDSA", "elsewhere", spec)
		}, ErrTokenInvalid},
		{"PEM key used for token without kid", Config{PublicKeyPEM: pkixPEM(t, ks.ed[1].Public())}, func(t *testing.T) string {
			return mint(t, ks.ed[1], "EdDSA", "", spec)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := srv.verifier(t, tt.cfg)
			_, err := v.VerifyConnect(ctx, tt.tok(t))
			wantErr(t, err, tt.want)
		})
	}
}

func TestJWKSPeriodicRefreshStopsOnClose(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	srv := newJWKSServer(t, testJWK{"A", "EdDSA", ks.ed[0].Public()})
	v, err := NewVerifier(context.Background(), Config{
		JWKSURL: srv.srv.URL, HTTPClient: srv.srv.Client(),
		JWKSRefreshInterval: 20 * time.Millisecond, JWKSMinRefetchInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Rotate without asking for the new kid: only the periodic refresh can
	// drop A.
	srv.set(testJWK{"B", "EdDSA", ks.ed[1].Public()})
	tokA := mint(t, ks.ed[0], "EdDSA", "", TokenSpec{Subject: "42"})
	deadline := time.Now().Add(5 * time.Second)
	for srv.hits.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no periodic refresh: hits = %d", srv.hits.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Token without kid: no unknown-kid refetch involved.
	_, err = v.VerifyConnect(context.Background(), tokA)
	wantErr(t, err, ErrTokenInvalid)
	v.Close()
	time.Sleep(50 * time.Millisecond) // let an in-flight refresh finish
	before := srv.hits.Load()
	time.Sleep(100 * time.Millisecond)
	if after := srv.hits.Load(); after != before {
		t.Fatalf("refresh continued after Close: %d -> %d", before, after)
	}
}

func TestJWKSRefreshStopsWithContext(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, testJWK{"A", "EdDSA", testKeys().ed[0].Public()})
	ctx, cancel := context.WithCancel(context.Background())
	v, err := NewVerifier(ctx, Config{JWKSURL: srv.srv.URL, HTTPClient: srv.srv.Client(), JWKSRefreshInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	cancel()
	time.Sleep(50 * time.Millisecond)
	before := srv.hits.Load()
	time.Sleep(100 * time.Millisecond)
	if after := srv.hits.Load(); after != before {
		t.Fatalf("refresh continued after ctx cancel: %d -> %d", before, after)
	}
}

// mintHMACKid signs an HMAC token with a kid header, which MintHMAC does not
// offer.
func mintHMACKid(t *testing.T, secret []byte, alg, kid string, spec TokenSpec) string {
	t.Helper()
	tok, err := sign(jwt.GetSigningMethod(alg), secret, kid, spec)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
