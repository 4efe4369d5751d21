package sim

import "time"

// profile describes how one application is deployed: what is pulled,
// created and started, how its database is migrated and how it reports
// healthy, with typical durations. A netbox is not a wazuh: a wazuh indexer
// takes a minute to boot, a grafana a few seconds.
type profile struct {
	name, version string
	// product is how billing names the managed offer.
	product    string
	weight     float64 // popularity among deployments
	images     []image
	volumes    []volume
	containers []container
	migration  migration
	health     healthCheck
	// db names the database container migrations talk to.
	db string
}

type image struct {
	ref    string // registry reference with tag
	sizeMB int
}

type volume struct {
	name   string
	sizeGB int
}

type container struct {
	service string
	boot    time.Duration // median time until it logs ready
	ready   string        // its ready line
}

type migration struct {
	chunksMin, chunksMax int
	chunk                time.Duration // median per chunk
	// style picks the tool whose output the log lines imitate.
	style string
	// broken is the log line of a migration that fails for good.
	broken string
}

type healthCheck struct {
	url                string
	pollsMin, pollsMax int // polls until healthy, the last one succeeding
}

// profiles are read-only tables of the deployment model.
var profiles = []profile{
	{
		name: "odoo", version: "17.0", product: "Managed Odoo", weight: 3, db: "db",
		images:  []image{{"odoo:17.0", 552}, {"postgres:16-alpine", 93}},
		volumes: []volume{{"odoo-filestore", 10}, {"pgdata", 20}},
		containers: []container{
			{"db", 4 * time.Second, "LOG:  database system is ready to accept connections"},
			{"odoo", 9 * time.Second, "INFO ? odoo.service.server: HTTP service (werkzeug) running on 0.0.0.0:8069"},
		},
		migration: migration{chunksMin: 2, chunksMax: 3, chunk: 40 * time.Second, style: "odoo",
			broken: `psycopg2.errors.UniqueViolation: could not create unique index "ir_module_module_name_uniq"`},
		health: healthCheck{url: "http://odoo:8069/web/health", pollsMin: 1, pollsMax: 3},
	},
	{
		name: "netbox", version: "4.1.7", product: "Managed NetBox", weight: 2, db: "postgres",
		images:  []image{{"netboxcommunity/netbox:v4.1-3.0.2", 640}, {"postgres:16-alpine", 93}, {"valkey/valkey:8.0-alpine", 16}},
		volumes: []volume{{"netbox-media", 5}, {"pgdata", 10}, {"redis-data", 1}},
		containers: []container{
			{"postgres", 4 * time.Second, "LOG:  database system is ready to accept connections"},
			{"redis", time.Second, "* Ready to accept connections tcp"},
			{"netbox", 12 * time.Second, "✅ Initialisation is done."},
			{"netbox-worker", 5 * time.Second, "INFO Worker rq:worker:netbox-worker started with PID 1"},
		},
		migration: migration{chunksMin: 2, chunksMax: 4, chunk: 25 * time.Second, style: "django",
			broken: `django.db.utils.ProgrammingError: relation "dcim_device" already exists`},
		health: healthCheck{url: "http://netbox:8080/login/", pollsMin: 1, pollsMax: 2},
	},
	{
		name: "wazuh", version: "4.9.2", product: "Managed Wazuh", weight: 1.5, db: "wazuh.indexer",
		images:  []image{{"wazuh/wazuh-indexer:4.9.2", 1320}, {"wazuh/wazuh-manager:4.9.2", 980}, {"wazuh/wazuh-dashboard:4.9.2", 720}},
		volumes: []volume{{"wazuh-indexer-data", 50}, {"wazuh-etc", 2}, {"wazuh-logs", 20}},
		containers: []container{
			{"wazuh.indexer", 70 * time.Second, "[INFO ][o.o.n.Node] [wazuh.indexer] started"},
			{"wazuh.manager", 25 * time.Second, "wazuh-modulesd:router: INFO: Loaded router module."},
			{"wazuh.dashboard", 35 * time.Second, `{"type":"log","tags":["info","http","server","OpenSearchDashboards"],"message":"http server running at https://0.0.0.0:5601"}`},
		},
		migration: migration{chunksMin: 2, chunksMax: 2, chunk: 30 * time.Second, style: "wazuh",
			broken: "ERR: An exception occured. OpenSearchSecurityException[failed to initialize security index]"},
		health: healthCheck{url: "https://wazuh.dashboard:5601/api/status", pollsMin: 2, pollsMax: 5},
	},
	{
		name: "nextcloud", version: "29.0.8", product: "Managed Nextcloud", weight: 1.5, db: "db",
		images:  []image{{"nextcloud:29-apache", 1105}, {"mariadb:11.4", 122}, {"redis:7-alpine", 15}},
		volumes: []volume{{"nextcloud-html", 5}, {"nextcloud-data", 100}, {"db", 10}},
		containers: []container{
			{"db", 6 * time.Second, "[Note] mariadbd: ready for connections."},
			{"redis", time.Second, "* Ready to accept connections tcp"},
			{"app", 10 * time.Second, "AH00094: Command line: 'apache2 -D FOREGROUND'"},
		},
		migration: migration{chunksMin: 1, chunksMax: 2, chunk: 25 * time.Second, style: "occ",
			broken: `SQLSTATE[HY000]: General error: 1205 Lock wait timeout exceeded; try restarting transaction`},
		health: healthCheck{url: "http://app/status.php", pollsMin: 1, pollsMax: 2},
	},
	{
		name: "gitea", version: "1.22.3", product: "Managed Gitea", weight: 1, db: "db",
		images:  []image{{"gitea/gitea:1.22.3", 172}, {"postgres:16-alpine", 93}},
		volumes: []volume{{"gitea-data", 20}, {"pgdata", 10}},
		containers: []container{
			{"db", 4 * time.Second, "LOG:  database system is ready to accept connections"},
			{"server", 3 * time.Second, "routers/init.go:94:InitWebInstalled() [I] Git version: 2.45.2"},
		},
		migration: migration{chunksMin: 1, chunksMax: 1, chunk: 6 * time.Second, style: "gitea",
			broken: "migrate: do migrate: migration[292]: Add index to action table failed: pq: deadlock detected"},
		health: healthCheck{url: "http://server:3000/api/healthz", pollsMin: 1, pollsMax: 1},
	},
	{
		name: "grafana", version: "11.3.0", product: "Managed Grafana", weight: 1, db: "grafana",
		images:     []image{{"grafana/grafana-oss:11.3.0", 462}},
		volumes:    []volume{{"grafana-storage", 5}},
		containers: []container{{"grafana", 6 * time.Second, `logger=http.server level=info msg="HTTP Server Listen" address=[::]:3000 protocol=http`}},
		migration: migration{chunksMin: 1, chunksMax: 1, chunk: 4 * time.Second, style: "grafana",
			broken: `logger=migrator level=error msg="Exec failed" error="database is locked" sql="CREATE INDEX ..."`},
		health: healthCheck{url: "http://grafana:3000/api/health", pollsMin: 1, pollsMax: 1},
	},
}

// Typical durations of the steps that do not depend on the application.
const (
	dispatchDelay   = 3 * time.Second // queued → a worker picks it up
	networkTime     = 600 * time.Millisecond
	volumeTime      = 4 * time.Second // create and map one volume
	pollInterval    = 5 * time.Second // between health polls
	healthTimeout   = 300 * time.Second
	rollbackTime    = 12 * time.Second
	stepGap         = 400 * time.Millisecond // bookkeeping between tasks
	pullBandwidthMB = 60                     // MB/s median
	pullCacheHit    = 0.35                   // image already on the node
	maxAttempts     = 3                      // per task, transient failures
)

// Failure probabilities per task attempt: transient ones are retried,
// permanent ones fail the deployment. Together they fail about 4 % of
// deployments, more for the applications with more moving parts.
const (
	pullTransient, pullPermanent           = 0.02, 0.002
	networkTransient                       = 0.005
	volumeTransient, volumePermanent       = 0.01, 0.003
	containerTransient, containerPermanent = 0.01, 0.005
	migrateTransient, migratePermanent     = 0.01, 0.006
	healthPermanent                        = 0.01
)

// Worker nodes and their zones, for the started event.
var nodes = []string{
	"node-01.eu-west-1a", "node-02.eu-west-1a", "node-03.eu-west-1b", "node-04.eu-west-1b",
	"node-05.eu-west-1c", "node-06.eu-west-1c", "node-07.eu-central-1a", "node-08.eu-central-1b",
}

// expectedTasks is the mean number of progress events of a deployment of p.
func (p profile) expectedTasks() float64 {
	return float64(len(p.images)+1+len(p.volumes)+len(p.containers)) +
		float64(p.migration.chunksMin+p.migration.chunksMax)/2 +
		float64(p.health.pollsMin+p.health.pollsMax)/2
}

// expectedDuration is the typical wall time of a deployment of p, used for
// estimatedCompletion and to size worker slots.
func (p profile) expectedDuration() time.Duration {
	d := dispatchDelay + networkTime
	for _, im := range p.images {
		d += time.Duration((1 - pullCacheHit) * float64(im.sizeMB) / pullBandwidthMB * float64(time.Second))
	}
	d += time.Duration(len(p.volumes)) * volumeTime
	for _, c := range p.containers {
		d += c.boot
	}
	d += time.Duration(p.migration.chunksMin+p.migration.chunksMax) * p.migration.chunk / 2
	d += time.Duration(p.health.pollsMin+p.health.pollsMax-2) * pollInterval / 2
	return d + time.Duration(p.expectedTasks())*stepGap
}
