package charttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// release and namespace used for every render: the names the chart derives ("prod-pulse",
// "prod-nats") are checked against each other.
const (
	release   = "prod"
	namespace = "pulse"
)

// helmRun runs helm and returns stdout, or an error carrying stderr.
func helmRun(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(suite.helm, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// No cluster, no plugins, no repository config of the machine's user.
	cmd.Env = append(os.Environ(), "KUBECONFIG=/nonexistent", "HELM_PLUGINS=/nonexistent")
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// helmTemplate renders the chart with the given extra arguments (-f, --set, …).
func helmTemplate(extra ...string) (string, error) {
	args := append([]string{"template", release, suite.chartDir, "--namespace", namespace, "--kube-version", kubeVersion}, extra...)
	return helmRun(args...)
}

// object is one rendered document, decoded strictly into its API type.
type object struct {
	source     string // the template it came from (helm's "# Source:" line)
	apiVersion string
	kind       string
	name       string
	obj        any
}

// manifest is one helm template output.
type manifest struct {
	objects []object
}

var (
	renderMu    sync.Mutex
	renderCache = map[string]*manifest{}
)

// render renders a value set once (cached) and decodes every object strictly; it fails the test on any
// error, so every test that looks at a value set also proves it decodes.
func render(t *testing.T, vs valueSet) *manifest {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if m, ok := renderCache[vs.name]; ok {
		return m
	}
	out, err := helmTemplate(vs.args()...)
	if err != nil {
		t.Fatalf("value set %s: %v", vs.name, err)
	}
	m, err := decodeAll(out)
	if err != nil {
		t.Fatalf("value set %s: %v", vs.name, err)
	}
	renderCache[vs.name] = m
	return m
}

var sourceLine = regexp.MustCompile(`(?m)^# Source: (\S+)`)

func decodeAll(out string) (*manifest, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	m := &manifest{}
	var errs []error
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		source := "?"
		if s := sourceLine.FindSubmatch(doc); s != nil {
			source = string(s[1])
		}
		o, empty, err := decodeStrict(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source, err))
			continue
		}
		if empty {
			continue
		}
		o.source = source
		m.objects = append(m.objects, o)
	}
	if len(m.objects) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no objects rendered"))
	}
	return m, errors.Join(errs...)
}

// newTyped returns the Go type for apiVersion/kind. A kind the table lacks is an error: whoever adds a
// template adds its type here, so nothing rendered goes unchecked.
func newTyped(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1 Pod":
		return &corev1.Pod{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "networking.k8s.io/v1 Ingress":
		return &networkingv1.Ingress{}, nil
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &serviceMonitor{}, nil
	}
	return nil, fmt.Errorf("no API type known for %s %s: add it to newTyped", apiVersion, kind)
}

// decodeStrict turns one YAML document into its typed object: duplicate keys, unknown fields, wrong
// types ("2" for an integer) and trailing data are errors, as kubectl apply --validate=strict would
// report them. empty is true for a document with nothing but comments.
func decodeStrict(doc []byte) (o object, empty bool, err error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return o, false, err
	}
	if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return o, true, nil
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return o, false, err
	}
	typed, err := newTyped(tm.APIVersion, tm.Kind)
	if err != nil {
		return o, false, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(typed); err != nil {
		return o, false, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if dec.More() {
		return o, false, fmt.Errorf("%s: trailing data", tm.Kind)
	}
	meta := objectMeta(typed)
	if err := checkMeta(tm.Kind, meta); err != nil {
		return o, false, err
	}
	return object{apiVersion: tm.APIVersion, kind: tm.Kind, name: meta.Name, obj: typed}, false, nil
}

func objectMeta(obj any) *metav1.ObjectMeta {
	if a, ok := obj.(interface{ GetObjectMeta() metav1.Object }); ok {
		if om, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return om
		}
	}
	if sm, ok := obj.(*serviceMonitor); ok {
		return &sm.ObjectMeta
	}
	panic(fmt.Sprintf("no ObjectMeta in %T", obj))
}

// checkMeta applies the API server's rules for names and labels.
func checkMeta(kind string, m *metav1.ObjectMeta) error {
	var errs []string
	nameErrs := validation.IsDNS1123Subdomain(m.Name)
	if kind == "Service" {
		nameErrs = validation.IsDNS1035Label(m.Name)
	}
	for _, e := range nameErrs {
		errs = append(errs, fmt.Sprintf("name %q: %s", m.Name, e))
	}
	for k, v := range m.Labels {
		for _, e := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Sprintf("label key %q: %s", k, e))
		}
		for _, e := range validation.IsValidLabelValue(v) {
			errs = append(errs, fmt.Sprintf("label %s=%q: %s", k, v, e))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s %s: %s", kind, m.Name, strings.Join(errs, "; "))
	}
	return nil
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor (monitoring.coreos.com/v1)
// that the chart renders. No typed API is imported for it (that would pull in the operator); the field
// names follow its CRD, and DisallowUnknownFields makes a misspelt one an error here.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port              string           `json:"port"`
			Path              string           `json:"path"`
			Interval          string           `json:"interval"`
			ScrapeTimeout     string           `json:"scrapeTimeout"`
			Relabelings       []map[string]any `json:"relabelings,omitempty"`
			MetricRelabelings []map[string]any `json:"metricRelabelings,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// workload is a pod template with where it came from.
type workload struct {
	kind, name string
	labels     map[string]string
	spec       *corev1.PodSpec
}

func (w workload) component() string { return w.labels["app.kubernetes.io/component"] }

func (m *manifest) workloads() []workload {
	var ws []workload
	for _, o := range m.objects {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			ws = append(ws, workload{o.kind, o.name, v.Spec.Template.Labels, &v.Spec.Template.Spec})
		case *appsv1.StatefulSet:
			ws = append(ws, workload{o.kind, o.name, v.Spec.Template.Labels, &v.Spec.Template.Spec})
		case *corev1.Pod:
			ws = append(ws, workload{o.kind, o.name, v.Labels, &v.Spec})
		}
	}
	return ws
}

// pulseWorkloads are the pods this chart (not the NATS subchart) runs.
func (m *manifest) pulseWorkloads() []workload {
	var ws []workload
	for _, w := range m.workloads() {
		if w.labels["app.kubernetes.io/part-of"] == "pulse" {
			ws = append(ws, w)
		}
	}
	return ws
}

func all[T any](m *manifest) []T {
	var out []T
	for _, o := range m.objects {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// gateway returns the gateway Deployment and its container.
func (m *manifest) gateway(t *testing.T) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	for _, d := range all[*appsv1.Deployment](m) {
		if d.Labels["app.kubernetes.io/component"] == "gateway" {
			for i := range d.Spec.Template.Spec.Containers {
				if d.Spec.Template.Spec.Containers[i].Name == "gateway" {
					return d, &d.Spec.Template.Spec.Containers[i]
				}
			}
		}
	}
	t.Fatal("no gateway Deployment rendered")
	return nil, nil
}

func (m *manifest) secret(name string) *corev1.Secret {
	for _, s := range all[*corev1.Secret](m) {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (m *manifest) service(name string) *corev1.Service {
	for _, s := range all[*corev1.Service](m) {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func envValue(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

func hasEnv(c *corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// notes renders NOTES.txt for a value set. helm template leaves NOTES out and helm install --dry-run
// needs a cluster, so a copy of the chart gets a template that holds the notes as a ConfigMap value.
func notes(t *testing.T, vs valueSet) string {
	t.Helper()
	dir := t.TempDir()
	if err := copyTree(dir, suite.chartDir); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(suite.chartDir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	wrapper := "{{- define \"test.notes\" }}" + string(body) + "{{- end }}\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include \"test.notes\" . | quote }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "zz-notes-preview.yaml"), []byte(wrapper), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"template", release, dir, "--namespace", namespace, "--kube-version", kubeVersion,
		"--show-only", "templates/zz-notes-preview.yaml"}, vs.args()...)
	out, err := helmRun(args...)
	if err != nil {
		t.Fatalf("NOTES.txt with %s: %v", vs.name, err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(out), &cm); err != nil {
		t.Fatalf("NOTES.txt with %s: %v", vs.name, err)
	}
	return cm.Data["notes"]
}

func copyTree(dst, src string) error {
	return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(target, path)
	})
}
