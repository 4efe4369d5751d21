package charttest

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestGatewayRunsWithRenderedEnv runs the real gateway with the environment a value set gives its pod
// (secrets resolved from the rendered Secret, secret files written where they would be mounted), on an
// embedded NATS server instead of the cluster's. It proves, per value set: the gateway accepts every
// value the chart renders, the rendered probe paths answer 200, the token recipe in NOTES.txt mints a
// token the gateway accepts, the API key works, the simulators accept their rendered environment and
// publish, and SIGTERM drains within the rendered deadline.
func TestGatewayRunsWithRenderedEnv(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(strings.TrimSuffix(vs.name, "-values.yaml"), func(t *testing.T) {
			t.Parallel()
			m := render(t, vs)
			runGatewayChecks(t, vs, m)
		})
	}
}

// existingSecrets stands in for the Secrets an operator creates beside the release (auth.existingSecret).
func existingSecrets(t *testing.T) map[string]map[string][]byte {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]map[string][]byte{"pulse-keys": {
		"hmac":       []byte("operator-managed-hmac-secret-0123456789"),
		"api":        []byte("operator-managed-api-key"),
		"public.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	}}
}

// podEnv resolves a container's environment as the kubelet would, writing secret volumes to a temp dir
// and pointing variables that name files under a mount at the written copies.
func podEnv(t *testing.T, m *manifest, spec *corev1.PodSpec, c *corev1.Container) map[string]string {
	t.Helper()
	existing := existingSecrets(t)
	secretData := func(name, key string) ([]byte, bool) {
		if s := m.secret(name); s != nil {
			v, ok := s.Data[key]
			return v, ok
		}
		v, ok := existing[name][key]
		return v, ok
	}
	mounts := map[string]string{} // mountPath → local dir
	for _, vm := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			dir := t.TempDir()
			for _, it := range v.Secret.Items {
				data, ok := secretData(v.Secret.SecretName, it.Key)
				if !ok {
					t.Fatalf("volume %s: Secret %s has no key %s", v.Name, v.Secret.SecretName, it.Key)
				}
				if err := os.WriteFile(filepath.Join(dir, it.Path), data, 0o400); err != nil {
					t.Fatal(err)
				}
			}
			mounts[vm.MountPath] = dir
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			v := e.Value
			for mp, dir := range mounts {
				if strings.HasPrefix(v, mp+"/") {
					v = filepath.Join(dir, strings.TrimPrefix(v, mp+"/"))
				}
			}
			env[e.Name] = v
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			data, ok := secretData(ref.Name, ref.Key)
			if !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				t.Fatalf("%s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = string(data)
		default:
			t.Fatalf("%s: valueFrom other than secretKeyRef is not resolved by this test", e.Name)
		}
	}
	return env
}

// jwksServer serves an Ed25519 JWKS, standing in for the identity provider of auth.jwksUrl.
func jwksServer(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "kid": "ci", "alg": "EdDSA", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// process is a started binary whose JSON log lines are collected.
type process struct {
	cmd  *exec.Cmd
	logs chan map[string]any
	done chan error
	tail *strings.Builder
}

func start(t *testing.T, ctx context.Context, bin string, env map[string]string) *process {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}
	for _, k := range sortedKeys(env) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: make(chan map[string]any, 1024), done: make(chan error, 1), tail: &strings.Builder{}}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if p.tail.Len() < 64<<10 {
				p.tail.WriteString(line + "\n")
			}
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil {
				select {
				case p.logs <- rec:
				default:
				}
			}
		}
		close(p.logs)
		p.done <- cmd.Wait()
	}()
	return p
}

// waitLog returns the first log record with this msg, within d.
func (p *process) waitLog(t *testing.T, msg string, d time.Duration) map[string]any {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case rec, ok := <-p.logs:
			if !ok {
				t.Fatalf("process exited before logging %q:\n%s", msg, p.tail.String())
			}
			if rec["msg"] == msg {
				return rec
			}
		case <-timer.C:
			t.Fatalf("no %q log within %v:\n%s", msg, d, p.tail.String())
		}
	}
}

func runGatewayChecks(t *testing.T, vs valueSet, m *manifest) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	gw, c := m.gateway(t)
	env := podEnv(t, m, &gw.Spec.Template.Spec, c)

	// The cluster's pieces, replaced by local ones; everything else stays as rendered.
	delete(env, "PULSE_NATS_URL")             // → embedded JetStream server
	env["PULSE_NATS_LISTEN"] = "127.0.0.1:-1" // on a free port
	env["PULSE_STREAM_REPLICAS"] = "1"        // one local server
	env["PULSE_ADDR"] = "127.0.0.1:0"
	if _, ok := env["PULSE_JWKS_URL"]; ok {
		env["PULSE_JWKS_URL"] = jwksServer(t)
	}
	if env["PULSE_LOG_FORMAT"] != "json" {
		t.Fatalf("PULSE_LOG_FORMAT=%q: the chart's default is json (and this test reads the logs)", env["PULSE_LOG_FORMAT"])
	}

	p := start(t, ctx, filepath.Join(suite.binDir, "gateway"), env)
	defer func() { _ = p.cmd.Process.Kill() }()
	natsURL, _ := p.waitLog(t, "embedded NATS JetStream started", 30*time.Second)["url"].(string)
	addr, _ := p.waitLog(t, "gateway listening", 30*time.Second)["addr"].(string)
	base := "http://" + addr

	// Ready means connected with the streams created; then every rendered probe path must answer 200.
	probes := map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe}
	waitStatus(t, base+c.ReadinessProbe.HTTPGet.Path, http.StatusOK, 30*time.Second)
	for name, pr := range probes {
		if code := get(t, base+pr.HTTPGet.Path, nil); code != http.StatusOK {
			t.Errorf("%s probe GET %s: %d, want 200", name, pr.HTTPGet.Path, code)
		}
	}

	if secret, ok := env["PULSE_JWT_HMAC_SECRET"]; ok {
		if token := notesToken(t, vs, secret); token != "" {
			h := http.Header{"Authorization": {"Bearer " + token}}
			if code := get(t, base+"/history/search?channel=tenant:acme:deployments", h); code != http.StatusOK {
				t.Errorf("token minted with the NOTES.txt recipe: history search answered %d, want 200", code)
			}
		}
	}
	if key, ok := env["PULSE_API_KEY"]; ok {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/publish",
			strings.NewReader(`{"channel":"tenant:acme:deployments","data":{"status":"chart-test"}}`))
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("POST /api/publish with the rendered API key: %d", resp.StatusCode)
		}
	}

	for _, sim := range vs.simulators {
		runSimulator(t, ctx, m, sim, natsURL)
	}

	// SIGTERM: the drain must end well inside the rendered deadline.
	deadline, err := time.ParseDuration(env["PULSE_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("PULSE_SHUTDOWN_TIMEOUT=%q: %v", env["PULSE_SHUTDOWN_TIMEOUT"], err)
	}
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("gateway exit after SIGTERM: %v\n%s", err, p.tail.String())
		}
		if took := time.Since(began); took >= deadline {
			t.Errorf("drain took %v, deadline %v", took, deadline)
		}
	case <-time.After(deadline + 5*time.Second):
		t.Fatalf("gateway still running %v after SIGTERM", deadline+5*time.Second)
	}
}

func runSimulator(t *testing.T, ctx context.Context, m *manifest, component, natsURL string) {
	t.Helper()
	for _, w := range m.pulseWorkloads() {
		if w.component() != component || w.kind != "Deployment" {
			continue
		}
		c := &w.spec.Containers[0]
		env := podEnv(t, m, w.spec, c)
		env["PULSE_NATS_URL"] = natsURL
		env["PULSE_DURATION"] = "1500ms"
		p := start(t, ctx, filepath.Join(suite.binDir, filepath.Base(c.Command[0])), env)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("%s with its rendered environment: %v\n%s", component, err, p.tail.String())
			}
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("%s did not stop after -duration", component)
		}
		return
	}
	t.Errorf("no %s Deployment rendered", component)
}

func get(t *testing.T, url string, h http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitStatus(t *testing.T, url string, want int, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	last := 0
	for time.Now().Before(end) {
		if last = get(t, url, nil); last == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %d after %v, want %d", url, last, d, want)
}

var notesRecipe = regexp.MustCompile(`(?s)\n  SECRET=[^\n]*\n(.*?TOKEN="[^\n]*)\n`)

// notesToken runs the shell recipe NOTES.txt gives the operator, with the secret kubectl would print.
func notesToken(t *testing.T, vs valueSet, secret string) string {
	t.Helper()
	n := notes(t, vs)
	mm := notesRecipe.FindStringSubmatch(n)
	if mm == nil {
		t.Fatalf("NOTES.txt has no token recipe (SECRET=… TOKEN=…):\n%s", n)
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("openssl not installed: the NOTES.txt token recipe is not run")
		return ""
	}
	script := fmt.Sprintf("set -eu\nSECRET=%s\n%s\nprintf %%s \"$TOKEN\"\n", shellQuote(secret), mm[1])
	out, err := exec.Command("bash", "-c", script).Output()
	if err != nil {
		t.Fatalf("NOTES.txt token recipe: %v\n%s", err, script)
	}
	return string(out)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
