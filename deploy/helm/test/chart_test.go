package charttest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// valueSet is one file of deploy/helm/pulse/ci and what rendering it must produce.
type valueSet struct {
	name           string // file name in ci/
	file           string // when it differs from name (a variation of a ci/ file)
	natsBundled    bool   // the NATS subchart is installed
	natsServers    int    // its StatefulSet replicas
	streamReplicas int
	hpa            bool
	pdb            bool
	ingress        bool
	serviceMonitor bool
	simulators     []string // components
	existingSecret string   // auth.existingSecret, not rendered by the chart
	extra          []string // more helm arguments
}

func (vs valueSet) args() []string {
	file := vs.file
	if file == "" {
		file = vs.name
	}
	return append([]string{"-f", filepath.Join(suite.chartDir, "ci", file)}, vs.extra...)
}

var valueSets = []valueSet{
	{name: "default-values.yaml", natsBundled: true, natsServers: 3, streamReplicas: 3, hpa: true, pdb: true},
	{name: "external-nats-values.yaml", streamReplicas: 3, hpa: true, pdb: true, existingSecret: "pulse-keys"},
	{name: "simulators-values.yaml", natsBundled: true, natsServers: 3, streamReplicas: 3, hpa: true, pdb: true,
		simulators: []string{"deployer-sim", "billing-sim"}},
	{name: "ingress-monitoring-values.yaml", natsBundled: true, natsServers: 3, streamReplicas: 3, hpa: true, pdb: true,
		ingress: true, serviceMonitor: true},
	{name: "dev-values.yaml", natsBundled: true, natsServers: 1, streamReplicas: 1,
		simulators: []string{"deployer-sim", "billing-sim"}},
}

func valueSetByFile(t *testing.T, name string) valueSet {
	t.Helper()
	for _, vs := range valueSets {
		if vs.name == name {
			return vs
		}
	}
	t.Fatalf("no value set %s", name)
	return valueSet{}
}

// forEachValueSet runs f as a parallel subtest per value set.
func forEachValueSet(t *testing.T, f func(t *testing.T, vs valueSet, m *manifest)) {
	for _, vs := range valueSets {
		t.Run(strings.TrimSuffix(vs.name, "-values.yaml"), func(t *testing.T) {
			t.Parallel()
			f(t, vs, render(t, vs))
		})
	}
}

func TestValueSetsMatchCIFolder(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(suite.chartDir, "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk, known []string
	for _, f := range files {
		onDisk = append(onDisk, filepath.Base(f))
	}
	for _, vs := range valueSets {
		known = append(known, vs.name)
	}
	slices.Sort(onDisk)
	slices.Sort(known)
	if !slices.Equal(onDisk, known) {
		t.Fatalf("ci/ holds %v but the tests know %v: give every value set its expectations in valueSets", onDisk, known)
	}
}

func TestLintStrict(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(strings.TrimSuffix(vs.name, "-values.yaml"), func(t *testing.T) {
			t.Parallel()
			args := append([]string{"lint", "--strict", suite.chartDir, "--kube-version", kubeVersion}, vs.args()...)
			out, err := helmRun(args...)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Fatalf("helm lint --strict:\n%s", out)
			}
		})
	}
}

func TestRenderedObjects(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, vs valueSet, m *manifest) {
		count := func(kind string, component string) int {
			n := 0
			for _, o := range m.objects {
				if o.kind == kind && (component == "" || objectMeta(o.obj).Labels["app.kubernetes.io/component"] == component) {
					n++
				}
			}
			return n
		}
		want := map[string]int{
			"Deployment/gateway":              1,
			"Service/gateway":                 1,
			"ServiceAccount/gateway":          1,
			"NetworkPolicy/gateway":           1,
			"HorizontalPodAutoscaler/gateway": b2i(vs.hpa),
			"PodDisruptionBudget/gateway":     b2i(vs.pdb),
			"Ingress/gateway":                 b2i(vs.ingress),
			"ServiceMonitor/gateway":          b2i(vs.serviceMonitor),
			"Secret/gateway":                  b2i(vs.existingSecret == ""),
			"StatefulSet/nats":                b2i(vs.natsBundled),
			"NetworkPolicy/simulators":        b2i(len(vs.simulators) > 0),
		}
		for _, sim := range []string{"deployer-sim", "billing-sim"} {
			want["Deployment/"+sim] = b2i(slices.Contains(vs.simulators, sim))
		}
		for _, key := range sortedKeys(want) {
			kind, component, _ := strings.Cut(key, "/")
			if got := count(kind, component); got != want[key] {
				t.Errorf("%s with component %s: %d rendered, want %d", kind, component, got, want[key])
			}
		}
		t.Logf("%d objects decoded strictly", len(m.objects))
	})
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestProbes: the probes use the gateway's contract paths on the port it listens on. The live test
// (TestGatewayRunsWithRenderedEnv) then calls the rendered paths on a real gateway.
func TestProbes(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, vs valueSet, m *manifest) {
		_, c := m.gateway(t)
		addr, ok := envValue(c, "PULSE_ADDR")
		if !ok {
			t.Fatal("PULSE_ADDR not set: the gateway would listen on 127.0.0.1 only, unreachable from the kubelet and the Service")
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "" {
			t.Fatalf("PULSE_ADDR=%q: want :<port> (all interfaces)", addr)
		}
		containerPorts := map[string]int32{}
		for _, p := range c.Ports {
			containerPorts[p.Name] = p.ContainerPort
		}
		if strconv.Itoa(int(containerPorts["http"])) != port {
			t.Errorf("container port http=%d, gateway listens on %s", containerPorts["http"], port)
		}
		for name, want := range map[string]struct {
			probe *corev1.Probe
			path  string
		}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}, "startup": {c.StartupProbe, "/healthz"}} {
			if want.probe == nil || want.probe.HTTPGet == nil {
				t.Errorf("%s probe missing or not httpGet", name)
				continue
			}
			g := want.probe.HTTPGet
			if g.Path != want.path {
				t.Errorf("%s probe path %q, want %q", name, g.Path, want.path)
			}
			if _, ok := containerPorts[g.Port.String()]; !ok && g.Port.String() != port {
				t.Errorf("%s probe port %s is not a port of the container", name, g.Port.String())
			}
		}
	})
}

// TestEnvVarsAreGatewayFlags: every PULSE_* variable a Pulse container gets names a flag of the binary
// it runs (read from that binary's -h), so no setting is silently ignored.
func TestEnvVarsAreFlags(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, vs valueSet, m *manifest) {
		for _, w := range m.pulseWorkloads() {
			if w.kind == "Pod" {
				continue // the helm test pod runs busybox
			}
			for _, c := range w.spec.Containers {
				cmd := filepath.Base(c.Command[0])
				flags, ok := suite.flags[cmd]
				if !ok {
					t.Errorf("%s runs %s, which has no known flag set", w.name, cmd)
					continue
				}
				seen := map[string]bool{}
				for _, e := range c.Env {
					if seen[e.Name] {
						t.Errorf("%s/%s: %s set twice", w.name, c.Name, e.Name)
					}
					seen[e.Name] = true
					if len(validation.IsEnvVarName(e.Name)) > 0 {
						t.Errorf("%s/%s: invalid variable name %q", w.name, c.Name, e.Name)
					}
					if !strings.HasPrefix(e.Name, "PULSE_") {
						continue
					}
					if _, ok := flags[flagOfEnv(e.Name)]; !ok || envName(flagOfEnv(e.Name)) != e.Name {
						t.Errorf("%s/%s sets %s, but %s has no flag -%s", w.name, c.Name, e.Name, cmd, flagOfEnv(e.Name))
					}
				}
				if !seen["PULSE_NATS_URL"] {
					t.Errorf("%s/%s: PULSE_NATS_URL not set (an empty URL would start an embedded server in the pod)", w.name, c.Name)
				}
			}
		}
	})
}

// TestDrainFitsGracePeriod: preStop sleep + the gateway's drain deadline < terminationGracePeriodSeconds,
// so the kubelet's SIGKILL never lands while clients are still being moved.
func TestDrainFitsGracePeriod(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, vs valueSet, m *manifest) {
		d, c := m.gateway(t)
		drain := suite.flags["gateway"]["shutdown-timeout"]
		if v, ok := envValue(c, "PULSE_SHUTDOWN_TIMEOUT"); ok {
			drain = v
		}
		deadline, err := time.ParseDuration(drain)
		if err != nil {
			t.Fatalf("shutdown timeout %q: %v", drain, err)
		}
		var preStop time.Duration
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			if c.Lifecycle.PreStop.Sleep == nil {
				t.Fatal("preStop is not a sleep action (the distroless image has no shell)")
			}
			preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
		if preStop == 0 {
			t.Error("no preStop pause: endpoints would still route new connections to a draining pod")
		}
		grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
		if grace == nil {
			t.Fatal("terminationGracePeriodSeconds not set")
		}
		if total := preStop + deadline; total >= time.Duration(*grace)*time.Second {
			t.Errorf("preStop %v + drain %v = %v, not shorter than terminationGracePeriodSeconds %ds", preStop, deadline, total, *grace)
		}
	})
}

func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	if s.Empty() {
		t.Fatalf("empty selector %v would select every pod", sel)
	}
	return s.Matches(labels.Set(podLabels))
}

// selected lists the workloads a selector picks, by component.
func selected(t *testing.T, m *manifest, sel *metav1.LabelSelector) []string {
	t.Helper()
	var names []string
	for _, w := range m.workloads() {
		if w.kind != "Pod" && selects(t, sel, w.labels) {
			names = append(names, w.component())
		}
	}
	slices.Sort(names)
	return names
}

func TestSelectorsMatchLabels(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, vs valueSet, m *manifest) {
		gw, gc := m.gateway(t)
		only := []string{"gateway"}
		for _, d := range all[*appsv1.Deployment](m) {
			if !selects(t, d.Spec.Selector, d.Spec.Template.Labels) {
				t.Errorf("Deployment %s: selector does not match its own pod labels", d.Name)
			}
		}
		for _, s := range all[*appsv1.StatefulSet](m) {
			if !selects(t, s.Spec.Selector, s.Spec.Template.Labels) {
				t.Errorf("StatefulSet %s: selector does not match its own pod labels", s.Name)
			}
		}
		svc := m.service(gw.Name)
		if svc == nil {
			t.Fatalf("no Service %s", gw.Name)
		}
		if got := selected(t, m, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}); !slices.Equal(got, only) {
			t.Errorf("Service %s selects %v, want only the gateway", svc.Name, got)
		}
		svcPorts := map[string]bool{}
		for _, p := range svc.Spec.Ports {
			svcPorts[p.Name] = true
			if p.TargetPort.Type != intstr.String || !slices.ContainsFunc(gc.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.StrVal }) {
				t.Errorf("Service port %s targets %s, not a named port of the gateway container", p.Name, p.TargetPort.String())
			}
		}
		for _, pdb := range all[*policyv1.PodDisruptionBudget](m) {
			if pdb.Labels["app.kubernetes.io/part-of"] != "pulse" {
				continue
			}
			if got := selected(t, m, pdb.Spec.Selector); !slices.Equal(got, only) {
				t.Errorf("PodDisruptionBudget selects %v, want only the gateway", got)
			}
		}
		for _, hpa := range all[*autoscalingv2.HorizontalPodAutoscaler](m) {
			ref := hpa.Spec.ScaleTargetRef
			if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != gw.Name {
				t.Errorf("HPA targets %s %s %s, want apps/v1 Deployment %s", ref.APIVersion, ref.Kind, ref.Name, gw.Name)
			}
			if gw.Spec.Replicas != nil {
				t.Error("Deployment sets replicas while the HPA owns them: every helm upgrade would reset the scale")
			}
			if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
				t.Error("HPA minReplicas missing or above maxReplicas")
			}
		}
		if !vs.hpa && (gw.Spec.Replicas == nil) {
			t.Error("no HPA and no replicas")
		}
		if replicas := gw.Spec.Replicas; !vs.pdb && replicas != nil && *replicas > 1 {
			t.Error("several replicas but no PodDisruptionBudget")
		}
		for _, ing := range all[*networkingv1.Ingress](m) {
			for _, r := range ing.Spec.Rules {
				for _, p := range r.HTTP.Paths {
					b := p.Backend.Service
					if b == nil || b.Name != svc.Name || !svcPorts[b.Port.Name] {
						t.Errorf("Ingress path %s does not reach Service %s by a port name it has", p.Path, svc.Name)
					}
				}
			}
		}
		for _, sm := range all[*serviceMonitor](m) {
			if !selects(t, &sm.Spec.Selector, svc.Labels) {
				t.Errorf("ServiceMonitor selector %v does not match Service labels %v", sm.Spec.Selector, svc.Labels)
			}
			for _, ep := range sm.Spec.Endpoints {
				if !svcPorts[ep.Port] || ep.Path != "/metrics" {
					t.Errorf("ServiceMonitor endpoint %s%s: want a Service port name and /metrics", ep.Port, ep.Path)
				}
				if _, err := time.ParseDuration(ep.Interval); err != nil {
					t.Errorf("ServiceMonitor interval %q: %v", ep.Interval, err)
				}
			}
			if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
				t.Errorf("ServiceMonitor looks in %v, want the release namespace", sm.Spec.NamespaceSelector.MatchNames)
			}
		}
		for _, np := range all[*networkingv1.NetworkPolicy](m) {
			want := only
			if np.Labels["app.kubernetes.io/component"] == "simulators" {
				want = slices.Sorted(slices.Values(vs.simulators))
			}
			if got := selected(t, m, &np.Spec.PodSelector); !slices.Equal(got, want) {
				t.Errorf("NetworkPolicy %s selects %v, want %v", np.Name, got, want)
			}
		}
	})
}

func TestPodSecurity(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, vs valueSet, m *manifest) {
		for _, w := range m.pulseWorkloads() {
			ps := w.spec.SecurityContext
			if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 {
				t.Errorf("%s: pod must run as a non-root numeric user", w.name)
			}
			if ps == nil || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: pod seccomp profile must be RuntimeDefault", w.name)
			}
			if w.spec.AutomountServiceAccountToken == nil || *w.spec.AutomountServiceAccountToken {
				t.Errorf("%s: the service account token is mounted, and Pulse never calls the Kubernetes API", w.name)
			}
			for _, c := range w.spec.Containers {
				sc := c.SecurityContext
				switch {
				case sc == nil:
					t.Errorf("%s/%s: no securityContext", w.name, c.Name)
				case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
					t.Errorf("%s/%s: root filesystem not read-only", w.name, c.Name)
				case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
					t.Errorf("%s/%s: privilege escalation allowed", w.name, c.Name)
				case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
					t.Errorf("%s/%s: capabilities must be drop [ALL], add none", w.name, c.Name)
				case sc.Privileged != nil && *sc.Privileged:
					t.Errorf("%s/%s: privileged", w.name, c.Name)
				}
				if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
					t.Errorf("%s/%s: memory request and limit expected", w.name, c.Name)
				}
			}
		}
	})
}

// TestSecretReferences: every secretKeyRef and secret volume of a Pulse pod points at a Secret the chart
// renders, with that key, or at the operator's existingSecret.
func TestSecretReferences(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, vs valueSet, m *manifest) {
		check := func(where, name, key string) {
			if name == vs.existingSecret && vs.existingSecret != "" {
				return
			}
			s := m.secret(name)
			if s == nil {
				t.Errorf("%s: Secret %s is neither rendered nor the existingSecret", where, name)
				return
			}
			if _, ok := s.Data[key]; !ok {
				t.Errorf("%s: Secret %s has no key %s", where, name, key)
			}
		}
		for _, w := range m.pulseWorkloads() {
			for _, c := range w.spec.Containers {
				for _, e := range c.Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						check(w.name+" env "+e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
					}
				}
			}
			for _, v := range w.spec.Volumes {
				if v.Secret != nil {
					for _, it := range v.Secret.Items {
						check(w.name+" volume "+v.Name, v.Secret.SecretName, it.Key)
					}
				}
			}
			if sa := w.spec.ServiceAccountName; sa != "" && w.kind != "Pod" {
				if !slices.ContainsFunc(all[*corev1.ServiceAccount](m), func(s *corev1.ServiceAccount) bool { return s.Name == sa }) {
					t.Errorf("%s uses ServiceAccount %s, which is not rendered", w.name, sa)
				}
			}
		}
	})
}

// TestNATS: the gateway points at the bundled NATS Service (or the external URL), streams fit the
// cluster, and the rendered nats.conf — parsed by nats-server itself — has JetStream with fsync always.
func TestNATS(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, vs valueSet, m *manifest) {
		_, c := m.gateway(t)
		replicas, _ := envValue(c, "PULSE_STREAM_REPLICAS")
		if replicas != strconv.Itoa(vs.streamReplicas) {
			t.Errorf("PULSE_STREAM_REPLICAS=%q, want %d", replicas, vs.streamReplicas)
		}
		natsURL, literal := envValue(c, "PULSE_NATS_URL")
		sts := all[*appsv1.StatefulSet](m)
		if !vs.natsBundled {
			if len(sts) != 0 {
				t.Error("external NATS, yet a StatefulSet is rendered")
			}
			if !literal || natsURL == "" {
				t.Errorf("PULSE_NATS_URL=%q, want the externalNats.url", natsURL)
			}
			return
		}
		if len(sts) != 1 || sts[0].Spec.Replicas == nil || int(*sts[0].Spec.Replicas) != vs.natsServers {
			t.Fatalf("want one NATS StatefulSet with %d replicas", vs.natsServers)
		}
		nats := sts[0]
		if vs.streamReplicas > vs.natsServers {
			t.Errorf("streams with %d replicas on %d NATS servers", vs.streamReplicas, vs.natsServers)
		}
		u, err := url.Parse(natsURL)
		if err != nil || u.Scheme != "nats" {
			t.Fatalf("PULSE_NATS_URL=%q: %v", natsURL, err)
		}
		svc := m.service(u.Hostname())
		if svc == nil {
			t.Fatalf("PULSE_NATS_URL host %s is not a rendered Service", u.Hostname())
		}
		if !selects(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, nats.Spec.Template.Labels) {
			t.Errorf("Service %s does not select the NATS pods", svc.Name)
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == u.Port() }) {
			t.Errorf("Service %s has no port %s", svc.Name, u.Port())
		}
		for _, np := range all[*networkingv1.NetworkPolicy](m) {
			if !natsEgressAllowed(t, np, nats.Spec.Template.Labels, u.Port()) {
				t.Errorf("NetworkPolicy %s lets no traffic to the NATS pods on port %s", np.Name, u.Port())
			}
		}
		var conf string
		for _, cm := range all[*corev1.ConfigMap](m) {
			if v, ok := cm.Data["nats.conf"]; ok {
				conf = v
			}
		}
		if conf == "" {
			t.Fatal("no nats.conf ConfigMap rendered")
		}
		opts := parseNATSConf(t, conf)
		if !opts.JetStream {
			t.Error("nats.conf: JetStream off")
		}
		if !opts.SyncAlways {
			t.Error("nats.conf: jetstream sync_interval is not always: acknowledged writes can be lost on a power failure (DESIGN §9)")
		}
		if opts.StoreDir == "" || opts.JetStreamMaxStore <= 0 {
			t.Errorf("nats.conf: JetStream file storage expected, got store_dir %q max_file_store %d", opts.StoreDir, opts.JetStreamMaxStore)
		}
		if vs.natsServers > 1 && len(opts.Routes) != vs.natsServers {
			t.Errorf("nats.conf: %d cluster routes for %d servers", len(opts.Routes), vs.natsServers)
		}
	})
}

// parseNATSConf parses a rendered nats.conf with the server's own parser ($SERVER_NAME comes from the
// pod's environment in the StatefulSet).
func parseNATSConf(t *testing.T, conf string) *server.Options {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	natsConfMu.Lock()
	defer natsConfMu.Unlock()
	os.Setenv("SERVER_NAME", "test-0")
	defer os.Unsetenv("SERVER_NAME")
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats.conf does not parse: %v\n%s", err, conf)
	}
	return opts
}

// natsEgressAllowed reports whether the policy (if it covers egress) lets its pods reach NATS pods with
// these labels on port.
func natsEgressAllowed(t *testing.T, np *networkingv1.NetworkPolicy, natsLabels map[string]string, port string) bool {
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		return true
	}
	for _, rule := range np.Spec.Egress {
		portOK := len(rule.Ports) == 0 || slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool {
			return p.Port != nil && p.Port.String() == port
		})
		peerOK := len(rule.To) == 0 || slices.ContainsFunc(rule.To, func(p networkingv1.NetworkPolicyPeer) bool {
			return p.PodSelector != nil && p.NamespaceSelector == nil && p.IPBlock == nil && selects(t, p.PodSelector, natsLabels)
		})
		if portOK && peerOK {
			return true
		}
	}
	return false
}

func TestNetworkPolicyLetsClientsIn(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, vs valueSet, m *manifest) {
		gw, c := m.gateway(t)
		for _, np := range all[*networkingv1.NetworkPolicy](m) {
			if !selects(t, &np.Spec.PodSelector, gw.Spec.Template.Labels) {
				if len(np.Spec.Ingress) != 0 {
					t.Errorf("NetworkPolicy %s lets traffic into pods that serve nothing", np.Name)
				}
				continue
			}
			ok := false
			for _, rule := range np.Spec.Ingress {
				for _, p := range rule.Ports {
					if slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return p.Port != nil && p.Port.String() == cp.Name }) {
						ok = true
					}
				}
			}
			if !ok {
				t.Errorf("NetworkPolicy %s does not admit traffic on the gateway's named port", np.Name)
			}
		}
	})
}

// TestFlagsReachable: every gateway and simulator flag is a value of the chart, set by the chart, or
// deliberately left out, and every flag value the schema offers maps to a real flag. A new flag fails
// here until the chart offers it.
func TestFlagsReachable(t *testing.T) {
	schema := loadSchema(t)
	chartSet := map[string]map[string]string{
		"gateway": {
			"addr":                "gateway.port",
			"nats-url":            "nats.enabled / externalNats",
			"stream-replicas":     "streams.replicas",
			"shutdown-timeout":    "gateway.shutdownTimeoutSeconds",
			"jwt-hmac-secret":     "auth.jwtHmacSecret / existingSecret",
			"jwt-public-key-file": "auth.jwtPublicKey / existingSecret",
			"jwks-url":            "auth.jwksUrl",
			"api-key":             "auth.apiKey / existingSecret",
		},
		"deployer-sim": {"nats-url": "nats.enabled / externalNats"},
		"billing-sim":  {"nats-url": "nats.enabled / externalNats"},
	}
	leftOut := map[string]map[string]string{
		"gateway": {
			"dev":         "development mode: embedded NATS, printed secrets",
			"nats-listen": "embedded NATS only; the chart always sets -nats-url",
			"nats-sync":   "embedded NATS only; the bundled chart sets sync_interval itself",
			"data-dir":    "embedded NATS only",
		},
		"deployer-sim": {"duration": "a Deployment restarts a simulator that stops"},
		"billing-sim":  {"duration": "a Deployment restarts a simulator that stops"},
	}
	configKeys := map[string][]string{
		"gateway":      schema.keys(t, "properties", "gateway", "properties", "config", "properties"),
		"deployer-sim": schema.keys(t, "definitions", "simulator", "properties", "config", "properties"),
		"billing-sim":  schema.keys(t, "definitions", "simulator", "properties", "config", "properties"),
	}
	for cmd, flags := range suite.flags {
		offered := map[string]bool{}
		for _, k := range configKeys[cmd] {
			f := kebab(k)
			offered[f] = true
			if _, ok := flags[f]; !ok {
				t.Errorf("values.schema.json offers %s config.%s, but %s has no flag -%s", cmd, k, cmd, f)
			}
		}
		for _, f := range sortedKeys(flags) {
			_, set := chartSet[cmd][f]
			_, out := leftOut[cmd][f]
			if !offered[f] && !set && !out {
				t.Errorf("%s flag -%s is not reachable from the chart: add it to the config values (values.yaml, values.schema.json)", cmd, f)
			}
		}
		for f := range chartSet[cmd] {
			if _, ok := flags[f]; !ok {
				t.Errorf("the chart sets %s for %s, which has no flag -%s", envName(f), cmd, f)
			}
		}
	}
	// Render every offered gateway key (the ingress set holds all but nodeName) and check each arrives.
	vs := valueSetByFile(t, "ingress-monitoring-values.yaml")
	vs.name, vs.file = "all-gateway-config", vs.name
	vs.extra = []string{"--set", "gateway.config.nodeName=pulse-test"}
	out, err := helmTemplate(vs.args()...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeAll(out)
	if err != nil {
		t.Fatal(err)
	}
	_, c := m.gateway(t)
	for _, k := range configKeys["gateway"] {
		if !hasEnv(c, envName(kebab(k))) {
			t.Errorf("gateway.config.%s set, but %s is not rendered", k, envName(kebab(k)))
		}
	}
	for f := range chartSet["gateway"] {
		found := false
		for _, s := range valueSets {
			_, gc := render(t, s).gateway(t)
			found = found || hasEnv(gc, envName(f))
		}
		if !found {
			t.Errorf("no value set renders %s", envName(f))
		}
	}
}

// kebab turns a values key into its flag name: maxChannelsPerConnection → max-channels-per-connection.
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestNotes(t *testing.T) {
	forEachValueSet(t, func(t *testing.T, vs valueSet, m *manifest) {
		n := notes(t, vs)
		gw, _ := m.gateway(t)
		for _, want := range []string{
			fmt.Sprintf("port-forward service/%s ", gw.Name),
			fmt.Sprintf("rollout status deployment/%s", gw.Name),
			"/connection/websocket",
		} {
			if !strings.Contains(n, want) {
				t.Errorf("NOTES lack %q:\n%s", want, n)
			}
		}
		if strings.Contains(n, "<no value>") {
			t.Errorf("NOTES print <no value>:\n%s", n)
		}
		if vs.ingress && !strings.Contains(n, "wss://pulse.example.com/connection/websocket") {
			t.Errorf("NOTES lack the Ingress URL:\n%s", n)
		}
	})
}
