// Package charttest proves the Helm chart in deploy/helm/pulse without a cluster: helm lint --strict and
// helm template for every value set in deploy/helm/pulse/ci, every rendered object decoded strictly into
// the Kubernetes API types (unknown fields are errors), and the chart's promises to the gateway checked
// against the real binaries: probe paths answer, every PULSE_* variable is a real flag, the drain deadline
// fits in the grace period, selectors match the pods they mean, and bad values are refused.
//
// It is a separate Go module so that k8s.io/api and friends never enter the main module. It needs helm
// (v3) in PATH or in $HELM, and the NATS chart archive, which it copies from ../shared/charts (beside the
// repository) into deploy/helm/pulse/charts when missing; $PULSE_NATS_CHART overrides that path.
package charttest
