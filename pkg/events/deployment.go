package events

import "time"

// Deployment statuses (Deployment.Status). The first four are the original
// design's; rolled_back follows failed once the deployment's resources are
// removed.
const (
	DeploymentStarting   = "starting"
	DeploymentInProgress = "in_progress"
	DeploymentCompleted  = "completed"
	DeploymentFailed     = "failed"
	DeploymentRolledBack = "rolled_back"
)

// Deployment is the data of every io.pulse.deployment.* event, published on
// tenant:<tenant>:deployments. A portal keeps the latest event per
// DeploymentID and shows Status, Progress, CurrentStep and Logs.
type Deployment struct {
	TenantID     string `json:"tenantId"`
	DeploymentID string `json:"deploymentId"`
	// InstanceType is the application deployed: odoo, netbox, wazuh, …
	InstanceType string `json:"instanceType"`
	// Version is the application version, e.g. "17.0".
	Version string `json:"version"`
	Status  string `json:"status"`
	// Progress is 0 to 100 and never goes down within a deployment.
	Progress int `json:"progress"`
	// CurrentStep is human-readable, e.g. "Pulling images (1/3)".
	CurrentStep string `json:"currentStep"`
	// Logs are the log lines produced since the previous event of this
	// deployment (not a cumulative log).
	Logs []string `json:"logs"`
	// Node is the worker node running the deployment, once started.
	Node string `json:"node,omitempty"`
	// EstimatedCompletion is set while the deployment is running.
	EstimatedCompletion time.Time `json:"estimatedCompletion,omitzero"`
	// URL is where the instance answers; set on completed.
	URL string `json:"url,omitempty"`
	// Reason says why the deployment failed; set on failed and rolled_back.
	Reason    string    `json:"reason,omitempty"`
	Timestamp time.Time `json:"timestamp"`
}
