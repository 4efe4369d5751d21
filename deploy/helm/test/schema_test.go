package charttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// natsConfMu serialises parseNATSConf, which sets a process-wide variable.
var natsConfMu sync.Mutex

type jsonSchema map[string]any

func loadSchema(t *testing.T) jsonSchema {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(suite.chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s jsonSchema
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	return s
}

// keys lists the property names at a path of the schema.
func (s jsonSchema) keys(t *testing.T, path ...string) []string {
	t.Helper()
	var cur any = map[string]any(s)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("values.schema.json: no object at %s", strings.Join(path, "."))
		}
		cur = m[p]
	}
	m, ok := cur.(map[string]any)
	if !ok || len(m) == 0 {
		t.Fatalf("values.schema.json: no properties at %s", strings.Join(path, "."))
	}
	return sortedKeys(m)
}

// TestBadValuesAreRefused: helm install/template refuses these with a message naming the problem,
// before anything reaches the cluster.
func TestBadValuesAreRefused(t *testing.T) {
	secret := []string{"--set", "auth.jwtHmacSecret=ci-only-hmac-secret-0123456789abcdef"}
	cases := []struct {
		name string
		args []string
		want []string // all in the error
	}{
		{"replicas as a word", append([]string{"--set-string", "gateway.replicaCount=two"}, secret...),
			[]string{"/gateway/replicaCount", "want integer"}},
		{"no token key at all", nil,
			[]string{"/auth", "/auth/jwtHmacSecret", "/auth/jwksUrl", "/auth/existingSecret"}},
		{"HMAC secret too short", []string{"--set", "auth.jwtHmacSecret=short"},
			[]string{"/auth/jwtHmacSecret", "want 32"}},
		{"short HMAC secret next to a JWKS URL", []string{"--set", "auth.jwtHmacSecret=short", "--set", "auth.jwksUrl=https://id.example.com/jwks"},
			[]string{"auth.jwtHmacSecret must be at least 32 bytes"}},
		{"misspelt gateway flag", append([]string{"--set", "gateway.config.maxConection=10"}, secret...),
			[]string{"/gateway/config", "maxConection"}},
		{"flag the chart sets itself", append([]string{"--set", "gateway.config.natsUrl=nats://x:4222"}, secret...),
			[]string{"/gateway/config", "natsUrl"}},
		{"duration without unit", append([]string{"--set", "gateway.config.pingInterval=25"}, secret...),
			[]string{"/gateway/config/pingInterval"}},
		{"duration as a word", append([]string{"--set", "gateway.config.pongTimeout=soon"}, secret...),
			[]string{"/gateway/config/pongTimeout"}},
		{"unknown log level", append([]string{"--set", "gateway.config.logLevel=verbose"}, secret...),
			[]string{"/gateway/config/logLevel"}},
		{"unknown recovery namespace", append([]string{"--set", "gateway.config.forceRecovery=tenants"}, secret...),
			[]string{"/gateway/config/forceRecovery"}},
		{"message size below the gateway minimum", append([]string{"--set", "gateway.config.maxMessageSize=10"}, secret...),
			[]string{"/gateway/config/maxMessageSize"}},
		{"stream replicas above 5", append([]string{"--set", "streams.replicas=7"}, secret...),
			[]string{"/streams/replicas"}},
		{"stream replicas above the NATS servers", append([]string{"--set", "nats.config.cluster.enabled=false"}, secret...),
			[]string{"streams.replicas (3) is more than the bundled NATS servers (1)"}},
		{"JetStream off", append([]string{"--set", "nats.config.jetstream.enabled=false"}, secret...),
			[]string{"nats.config.jetstream.enabled must be true"}},
		{"no NATS at all", append([]string{"--set", "nats.enabled=false"}, secret...),
			[]string{"/externalNats"}},
		{"both bundled and external NATS", append([]string{"--set", "externalNats.url=nats://nats:4222"}, secret...),
			[]string{"externalNats is set while nats.enabled is true"}},
		{"external NATS URL without scheme", append([]string{"--set", "nats.enabled=false", "--set", "externalNats.url=nats.example.com:4222"}, secret...),
			[]string{"/externalNats/url"}},
		{"grace period shorter than the drain", append([]string{"--set", "gateway.terminationGracePeriodSeconds=20"}, secret...),
			[]string{"must be longer than gateway.preStopSleepSeconds + gateway.shutdownTimeoutSeconds (25)"}},
		{"existingSecret mixed with inline keys", []string{"--set", "auth.existingSecret=keys", "--set", "auth.apiKey=x"},
			[]string{"auth.existingSecret is set"}},
		{"ingress path not absolute", append([]string{"--set", "ingress.enabled=true", "--set", "ingress.paths[0].path=ws", "--set", "ingress.paths[0].pathType=Exact"}, secret...),
			[]string{"/ingress/paths/0/path"}},
		{"unknown top-level key", append([]string{"--set", "replicaCount=3"}, secret...),
			[]string{"replicaCount"}},
		{"simulator rate zero", append([]string{"--set", "simulators.deployer.enabled=true", "--set", "simulators.deployer.config.rate=0"}, secret...),
			[]string{"/simulators/deployer/config/rate"}},
		{"simulator start not RFC 3339", append([]string{"--set", "simulators.billing.enabled=true", "--set", "simulators.billing.config.start=yesterday"}, secret...),
			[]string{"/simulators/billing/config/start"}},
		{"pull policy misspelt", append([]string{"--set", "image.pullPolicy=Sometimes"}, secret...),
			[]string{"/image/pullPolicy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := helmTemplate(tc.args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded; want it refused", tc.args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestLintRefusesMissingSecret: helm lint --strict of the bare chart fails on the one required value.
func TestLintRefusesMissingSecret(t *testing.T) {
	t.Parallel()
	out, err := helmRun("lint", "--strict", suite.chartDir, "--kube-version", kubeVersion)
	if err == nil || !strings.Contains(out, "/auth") {
		t.Fatalf("helm lint of the bare chart: want a schema error on /auth, got %v\n%s", err, out)
	}
}
