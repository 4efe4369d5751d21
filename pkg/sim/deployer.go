package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
)

// Deployment statuses, in the order a deployment walks them.
const (
	DeploymentStarting   = "starting"
	DeploymentInProgress = "in_progress"
	DeploymentCompleted  = "completed"
	DeploymentFailed     = "failed"
)

// DeploymentEvent is published on tenant:<tenant>:deployments.
type DeploymentEvent struct {
	TenantID     string `json:"tenantId"`
	DeploymentID string `json:"deploymentId"`
	InstanceType string `json:"instanceType"`
	Status       string `json:"status"`
	// Progress is 0 to 100.
	Progress    int      `json:"progress"`
	CurrentStep string   `json:"currentStep"`
	Logs        []string `json:"logs"`
	// EstimatedCompletion is unset once the deployment has ended.
	EstimatedCompletion time.Time `json:"estimatedCompletion,omitzero"`
	Timestamp           time.Time `json:"timestamp"`
}

// HealthEvent is the deployer's heartbeat on system:health.
type HealthEvent struct {
	Component string    `json:"component"`
	Status    string    `json:"status"`
	Published int       `json:"published"`
	Timestamp time.Time `json:"timestamp"`
}

// Read-only tables of the deployment model.
var (
	instanceTypes = []string{"odoo", "netbox", "wazuh", "nextcloud", "gitea", "grafana"}
	deploySteps   = []string{"pull images", "create network", "start containers", "migrate database", "health check"}
	failReasons   = []string{"image pull timed out", "port already allocated", "migration lock held", "health check returned 503"}
)

const (
	deployFailRate = 0.05             // share of deployments that fail at some step
	deployStepTime = 20 * time.Second // nominal step duration, for estimatedCompletion
)

type deployment struct {
	id, instanceType string
	step             int // next step to report; len(deploySteps) = report completion
	failAt           int // step that fails, -1 for none
}

// deployer walks one deployment per tenant at a time through
// starting → in_progress (one event per step) → completed or failed.
type deployer struct {
	rng      *rand.Rand
	tenants  []string
	channels []channel.Channel
	active   []*deployment // by tenant index; nil = start a new one
}

func newDeployer(seed int64, tenants []string) (*deployer, error) {
	chs, err := tenantChannels(tenants, "deployments")
	if err != nil {
		return nil, err
	}
	return &deployer{
		rng:      newRand(seed, "deployer"),
		tenants:  tenants,
		channels: chs,
		active:   make([]*deployment, len(tenants)),
	}, nil
}

func (d *deployer) next(now time.Time) (channel.Channel, any) {
	i := d.rng.IntN(len(d.tenants))
	dep := d.active[i]
	n := len(deploySteps)
	ev := DeploymentEvent{TenantID: d.tenants[i], Timestamp: now}

	switch {
	case dep == nil:
		dep = &deployment{
			id:           fmt.Sprintf("dep-%08x", d.rng.Uint32()),
			instanceType: instanceTypes[d.rng.IntN(len(instanceTypes))],
			failAt:       -1,
		}
		if d.rng.Float64() < deployFailRate {
			dep.failAt = d.rng.IntN(n)
		}
		d.active[i] = dep
		ev.Status, ev.CurrentStep = DeploymentStarting, "queued"
		ev.Logs = []string{fmt.Sprintf("Deployment %s of %s queued", dep.id, dep.instanceType)}
		ev.EstimatedCompletion = now.Add(time.Duration(n) * deployStepTime)
	case dep.step == dep.failAt:
		ev.Status, ev.CurrentStep = DeploymentFailed, deploySteps[dep.step]
		ev.Progress = dep.step * 100 / (n + 1)
		ev.Logs = []string{
			fmt.Sprintf("%s failed: %s", deploySteps[dep.step], failReasons[d.rng.IntN(len(failReasons))]),
			"Rolling back: removing containers and network",
		}
		d.active[i] = nil
	case dep.step < n:
		ev.Status, ev.CurrentStep = DeploymentInProgress, deploySteps[dep.step]
		ev.Progress = (dep.step + 1) * 100 / (n + 1)
		ev.Logs = []string{d.stepLog(dep)}
		ev.EstimatedCompletion = now.Add(time.Duration(n-dep.step) * deployStepTime)
		dep.step++
	default:
		ev.Status, ev.CurrentStep, ev.Progress = DeploymentCompleted, "completed", 100
		ev.Logs = []string{fmt.Sprintf("Deployment ready at https://%s.%s.pulse.example", dep.id, d.tenants[i])}
		d.active[i] = nil
	}
	ev.DeploymentID, ev.InstanceType = dep.id, dep.instanceType
	return d.channels[i], ev
}

func (d *deployer) stepLog(dep *deployment) string {
	switch deploySteps[dep.step] {
	case "pull images":
		return fmt.Sprintf("Pulled registry.pulse.example/%s:latest (%d MB)", dep.instanceType, 80+d.rng.IntN(700))
	case "create network":
		return fmt.Sprintf("Created network %s-net (10.%d.%d.0/24)", dep.id, d.rng.IntN(256), d.rng.IntN(256))
	case "start containers":
		return fmt.Sprintf("Started %d containers", 1+d.rng.IntN(4))
	case "migrate database":
		return fmt.Sprintf("Applied %d database migrations", d.rng.IntN(60))
	default:
		return fmt.Sprintf("Health check passed in %d ms", 20+d.rng.IntN(480))
	}
}

// RunDeployer publishes deployment events to tenant:<t>:deployments at
// cfg.Rate, plus a system:health beat every few seconds, until ctx is done or
// cfg.Duration has passed (then it returns nil). It returns an error for an
// invalid cfg or when an event could not be stored within cfg.RetryFor.
func RunDeployer(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	d, err := newDeployer(cfg.Seed, cfg.Tenants)
	if err != nil {
		return err
	}
	health, err := channel.Parse("system:health")
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	beat := func(now time.Time, published int) (channel.Channel, any) {
		return health, HealthEvent{Component: "deployer-sim", Status: "ok", Published: published, Timestamp: now}
	}
	return run(ctx, js, cfg, "deployer", d.next, beat)
}
