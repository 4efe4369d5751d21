package charttest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// kubeVersion is the oldest Kubernetes the chart supports (Chart.yaml kubeVersion): rendering for it
// proves nothing newer is needed. helm built with go install defaults to v1.20, so it is always passed.
const kubeVersion = "1.30.0"

// env is what every test shares, prepared once by TestMain.
type env struct {
	repoRoot string
	chartDir string
	helm     string
	binDir   string                       // gateway, deployer-sim, billing-sim built as for the image
	flags    map[string]map[string]string // command → flag name → default ("" when none is printed)
}

var suite env

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "chart tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(suite.binDir)
	os.Exit(code)
}

func setup() error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	suite.repoRoot = filepath.Clean(filepath.Join(wd, "..", "..", ".."))
	mod, err := os.ReadFile(filepath.Join(suite.repoRoot, "go.mod"))
	if err != nil || !bytes.Contains(mod, []byte("module github.com/pulseplatform/pulse\n")) {
		return fmt.Errorf("%s is not the Pulse repository root (run from deploy/helm/test)", suite.repoRoot)
	}
	suite.chartDir = filepath.Join(suite.repoRoot, "deploy", "helm", "pulse")
	if suite.helm, err = findHelm(); err != nil {
		return err
	}
	if err := ensureDependencies(suite.chartDir); err != nil {
		return err
	}
	if suite.binDir, err = os.MkdirTemp("", "pulse-chart-bin-"); err != nil {
		return err
	}
	if err := buildBinaries(suite.repoRoot, suite.binDir); err != nil {
		return err
	}
	suite.flags = map[string]map[string]string{}
	for _, cmd := range []string{"gateway", "deployer-sim", "billing-sim"} {
		if suite.flags[cmd], err = commandFlags(filepath.Join(suite.binDir, cmd)); err != nil {
			return err
		}
	}
	return nil
}

func findHelm() (string, error) {
	if h := os.Getenv("HELM"); h != "" {
		return h, nil
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h, nil
	}
	// Where go install puts it when GOPATH/bin is not in PATH.
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		h := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "helm")
		if _, err := os.Stat(h); err == nil {
			return h, nil
		}
	}
	return "", errors.New("helm not found ($HELM, PATH, $(go env GOPATH)/bin); install it with: " +
		"go install helm.sh/helm/v3/cmd/helm@v3.22.0")
}

// ensureDependencies puts each dependency's archive in charts/, as helm dependency build would, from
// the offline copy beside the repository (../shared/charts) or $PULSE_NATS_CHART.
func ensureDependencies(chartDir string) error {
	raw, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	var chart struct {
		Dependencies []struct{ Name, Version string }
	}
	if err := yaml.Unmarshal(raw, &chart); err != nil {
		return fmt.Errorf("Chart.yaml: %w", err)
	}
	for _, d := range chart.Dependencies {
		file := fmt.Sprintf("%s-%s.tgz", d.Name, d.Version)
		dst := filepath.Join(chartDir, "charts", file)
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		src := filepath.Join(suite.repoRoot, "..", "shared", "charts", file)
		if d.Name == "nats" && os.Getenv("PULSE_NATS_CHART") != "" {
			src = os.Getenv("PULSE_NATS_CHART")
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("chart dependency %s: %w (offline copy missing; with network: helm dependency build %s)", file, err, chartDir)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// buildBinaries builds the three commands exactly as the Dockerfile does: static, no cgo, trimmed paths.
func buildBinaries(repoRoot, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out+string(os.PathSeparator),
		"./cmd/gateway", "./cmd/deployer-sim", "./cmd/billing-sim")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("CGO_ENABLED=0 go build -trimpath (as in the Dockerfile): %v\n%s", err, b)
	}
	return nil
}

var usageFlag = regexp.MustCompile(`^  -([a-z0-9][a-z0-9-]*)(?: [a-z0-9]+)?$`)
var usageDefault = regexp.MustCompile(`\(default "?([^")]*)"?\)\s*$`)

// commandFlags reads a command's flags and their defaults from its -h output (the flag package's own
// format: "  -name type" then an indented description ending in "(default …)").
func commandFlags(bin string) (map[string]string, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin, "-h")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s -h: %v\n%s", bin, err, out.String())
	}
	flags := map[string]string{}
	var last string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		if m := usageFlag.FindStringSubmatch(line); m != nil {
			last = m[1]
			flags[last] = ""
			continue
		}
		if m := usageDefault.FindStringSubmatch(line); m != nil && last != "" {
			flags[last] = m[1]
		}
	}
	if len(flags) < 3 {
		return nil, fmt.Errorf("%s -h: found only %d flags in:\n%s", bin, len(flags), out.String())
	}
	return flags, nil
}

// envName is envflag.Name: the variable a flag reads.
func envName(flag string) string {
	return "PULSE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// flagOfEnv is the reverse of envName, for messages and lookups.
func flagOfEnv(v string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(v, "PULSE_"), "_", "-"))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestBinariesAreStatic(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"gateway", "deployer-sim", "billing-sim"} {
		f, err := elf.Open(filepath.Join(suite.binDir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has a dynamic loader (PT_INTERP): not static, would not run on distroless/static", name)
			}
		}
		f.Close()
	}
}

// TestDockerfileBuildsWhatTheChartRuns ties the image to the chart: the binaries the Dockerfile copies
// are the commands the chart's containers run.
func TestDockerfileBuildsWhatTheChartRuns(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(suite.repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/gateway", "./cmd/deployer-sim", "./cmd/billing-sim", "/usr/local/bin/", "USER 65532:65532"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	m := render(t, valueSetByFile(t, "simulators-values.yaml"))
	for _, w := range m.pulseWorkloads() {
		if w.kind == "Pod" {
			continue // the helm test pod runs busybox
		}
		for _, c := range w.spec.Containers {
			if len(c.Command) == 0 || !strings.HasPrefix(c.Command[0], "/usr/local/bin/") {
				t.Errorf("%s container %s: command %v is not one of the image's /usr/local/bin binaries", w.name, c.Name, c.Command)
				continue
			}
			if _, err := os.Stat(filepath.Join(suite.binDir, filepath.Base(c.Command[0]))); err != nil {
				t.Errorf("%s runs %s, which the build does not produce", w.name, c.Command[0])
			}
		}
	}
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
