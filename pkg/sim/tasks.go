package sim

import (
	"fmt"
	"strings"
	"time"
)

// This file renders what each deployment task takes and prints: durations
// drawn around the profile's typical values, and log lines in the format of
// the tools a real deployer drives (docker, compose, rbd, the application's
// own migration command).

// typicalDuration is the median a task takes; estimatedCompletion is the
// sum of these for the tasks left.
func typicalDuration(p *profile, t task) time.Duration {
	switch t.phase {
	case phasePullImages:
		return time.Duration((1 - pullCacheHit) * float64(t.image.sizeMB) / pullBandwidthMB * float64(time.Second))
	case phaseCreateNetwork:
		return networkTime
	case phaseProvisionVolumes:
		return volumeTime
	case phaseStartContainers:
		return t.container.boot + time.Second
	case phaseRunMigrations:
		return p.migration.chunk
	default:
		if t.n == t.of {
			return time.Second
		}
		return pollInterval
	}
}

func (dp *deployer) taskDuration(d *deployment, t task) time.Duration {
	g := dp.work
	switch t.phase {
	case phasePullImages:
		if g.chance(pullCacheHit) {
			return g.duration(800*time.Millisecond, 0.3)
		}
		mbps := g.lognormal(pullBandwidthMB, 0.5)
		secs := float64(t.image.sizeMB)/mbps + float64(t.image.sizeMB)/250 // download + extract
		return time.Duration(secs * float64(time.Second)).Round(time.Millisecond)
	case phaseCreateNetwork:
		return g.duration(networkTime, 0.4)
	case phaseProvisionVolumes:
		return g.duration(volumeTime, 0.4)
	case phaseStartContainers:
		return g.duration(time.Second, 0.3) + g.duration(t.container.boot, 0.35)
	case phaseRunMigrations:
		return g.duration(d.prof.migration.chunk, 0.4)
	default:
		if t.n == t.of {
			return g.duration(150*time.Millisecond, 0.5)
		}
		return pollInterval
	}
}

// taskRisks are the transient and permanent failure probabilities of one
// attempt of t.
func (dp *deployer) taskRisks(t task, d *deployment) (transient, permanent float64) {
	r := dp.risks
	switch t.phase {
	case phasePullImages:
		return r.pullTransient, r.pullPermanent
	case phaseCreateNetwork:
		return r.networkTransient, 0
	case phaseProvisionVolumes:
		return r.volumeTransient, r.volumePermanent
	case phaseStartContainers:
		return r.containerTransient, r.containerPermanent
	case phaseRunMigrations:
		return r.migrateTransient, r.migratePermanent
	default:
		if t.n == t.of {
			return 0, r.healthPermanent
		}
		return 0, 0
	}
}

// pullName splits an image reference the way docker prints it:
// "odoo:17.0" pulls tag 17.0 from library/odoo.
func pullName(ref string) (repo, tag string) {
	repo, tag, _ = strings.Cut(ref, ":")
	if !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	return repo, tag
}

func (dp *deployer) taskLines(d *deployment, t task, took time.Duration) []string {
	g := dp.logs
	switch t.phase {
	case phasePullImages:
		repo, tag := pullName(t.image.ref)
		lines := []string{fmt.Sprintf("%s: Pulling from %s", tag, repo)}
		if took < 2*time.Second {
			return append(lines, "Digest: sha256:"+g.hex(64), "Status: Image is up to date for "+t.image.ref)
		}
		for range g.between(2, 4) {
			lines = append(lines, g.hex(12)+": Pull complete")
		}
		return append(lines, "Digest: sha256:"+g.hex(64),
			"Status: Downloaded newer image for "+t.image.ref,
			fmt.Sprintf("Pulled %s (%d MB) in %s", t.image.ref, t.image.sizeMB, fmtDur(took)))
	case phaseCreateNetwork:
		gw := strings.TrimSuffix(d.subnet, "0/24") + "1"
		return []string{
			fmt.Sprintf(" Network %s_default  Creating", d.project),
			fmt.Sprintf(" Network %s_default  Created (bridge, subnet %s, gateway %s)", d.project, d.subnet, gw),
		}
	case phaseProvisionVolumes:
		return []string{
			fmt.Sprintf(" Volume %s_%s  Creating", d.project, t.volume.name),
			fmt.Sprintf("rbd: mapped tenants-ssd/csi-vol-%s-%s (%d GiB) at /dev/rbd%d", g.hex(8), g.hex(4), t.volume.sizeGB, g.intn(64)),
			fmt.Sprintf(" Volume %s_%s  Created", d.project, t.volume.name),
		}
	case phaseStartContainers:
		name := fmt.Sprintf("%s-%s-1", d.project, t.container.service)
		return []string{
			fmt.Sprintf(" Container %s  Created", name),
			fmt.Sprintf(" Container %s  Started", name),
			fmt.Sprintf("%s-1  | %s", t.container.service, t.container.ready),
		}
	case phaseRunMigrations:
		return dp.migrationLines(d, t, took)
	default:
		if t.n < t.of {
			return []string{fmt.Sprintf("GET %s → 503 Service Unavailable (poll %d, retrying in %s)", d.prof.health.url, t.n, pollInterval)}
		}
		return []string{
			fmt.Sprintf("GET %s → 200 OK in %d ms", d.prof.health.url, took.Milliseconds()),
			fmt.Sprintf("Health check passed after %d poll(s)", t.n),
		}
	}
}

// Django apps and migrations NetBox 4.1 applies, for realistic lines.
var djangoMigrations = []string{
	"dcim.0185_gfk_indexes", "dcim.0186_location_facility", "dcim.0187_alter_device_vc_position",
	"dcim.0188_racktype", "dcim.0190_nested_modules", "dcim.0191_module_bay_rebuild",
	"extras.0116_custom_field_range_validation", "extras.0117_customfield_uniqueness",
	"extras.0118_customfield_uniqueness", "extras.0119_notifications", "extras.0121_customfield_related_object_filter",
	"ipam.0070_vlangroup_vlan_id_ranges", "ipam.0071_prefix_scope", "tenancy.0015_contactassignment_rename_content_type",
	"users.0009_update_group_perms", "virtualization.0040_convert_disk_size", "vpn.0005_rename_indexes",
	"wireless.0010_charfield_null_choices", "core.0012_job_object_type_optional", "circuits.0047_circuittermination__termination",
}

func (dp *deployer) migrationLines(d *deployment, t task, took time.Duration) []string {
	g := dp.logs
	ts := dp.now().Format("2006-01-02 15:04:05,000")
	first, last := t.n == 1, t.n == t.of
	switch d.prof.migration.style {
	case "odoo":
		db := d.tenant.id
		if first {
			return []string{
				fmt.Sprintf("%s 1 INFO %s odoo.modules.loading: init db", ts, db),
				fmt.Sprintf("%s 1 INFO %s odoo.modules.loading: loading 1 modules...", ts, db),
				fmt.Sprintf("%s 1 INFO %s odoo.modules.loading: 1 modules loaded in %.2fs, 0 queries (+0 extra)", ts, db, took.Seconds()),
			}
		}
		n := g.between(12, 60)
		lines := []string{
			fmt.Sprintf("%s 1 INFO %s odoo.modules.loading: loading %d modules...", ts, db, n),
			fmt.Sprintf("%s 1 INFO %s odoo.modules.loading: %d modules loaded in %.2fs, %d queries (+%d other)", ts, db, n, took.Seconds(), n*g.between(300, 700), g.between(10, 400)),
		}
		if last {
			lines = append(lines, fmt.Sprintf("%s 1 INFO %s odoo.modules.registry: Registry loaded in %.3fs", ts, db, took.Seconds()+g.float()*3))
		}
		return lines
	case "django":
		var lines []string
		if first {
			lines = append(lines, "Operations to perform:",
				"  Apply all migrations: account, auth, circuits, contenttypes, core, dcim, django_rq, extras, ipam, sessions, social_django, taggit, tenancy, users, virtualization, vpn, wireless",
				"Running migrations:")
		}
		for range g.between(3, 5) {
			lines = append(lines, fmt.Sprintf("  Applying %s... OK", pick(g, djangoMigrations)))
		}
		if last {
			lines = append(lines, fmt.Sprintf("Applied %d migrations in %s", g.between(180, 260), fmtDur(took)))
		}
		return lines
	case "wazuh":
		if first {
			return []string{
				"Security Admin v7",
				"Will connect to wazuh.indexer:9200 ... done",
				`Connected as "CN=admin,OU=Wazuh,O=Wazuh,L=California,C=US"`,
				"OpenSearch Version: 2.13.0",
			}
		}
		return []string{
			"Populate config from /usr/share/wazuh-indexer/opensearch-security/",
			"Will update '/config' with /usr/share/wazuh-indexer/opensearch-security/config.yml",
			"   SUCC: Configuration for 'config' created or updated",
			"   SUCC: Configuration for 'roles' created or updated",
			"Done with success",
		}
	case "occ":
		if first {
			return []string{
				fmt.Sprintf("Initializing nextcloud %s.1 ...", d.prof.version),
				"New nextcloud instance",
				"Installing with MySQL database",
				"Nextcloud was successfully installed",
			}
		}
		return []string{
			"occ db:add-missing-indices",
			"Done.",
			fmt.Sprintf("occ maintenance:repair: %d repair steps, 0 warnings", g.between(40, 90)),
		}
	case "gitea":
		v := g.between(285, 299)
		return []string{
			"routers/common/db.go:36:InitDBEngine() [I] ORM engine initialization attempt #1/10...",
			fmt.Sprintf("models/migrations/migrations.go:476:Migrate() [I] Migration[%d]: Add Index to action_task.stopped,log_expired", v),
			fmt.Sprintf("models/migrations/migrations.go:476:Migrate() [I] Migration[%d]: Add index for release sha1", v+1),
		}
	default: // grafana
		rfc := dp.now().Format(time.RFC3339)
		return []string{
			fmt.Sprintf(`logger=migrator t=%s level=info msg="Starting DB migrations"`, rfc),
			fmt.Sprintf(`logger=migrator t=%s level=info msg="migrations completed" performed=%d skipped=0 duration=%s`, rfc, g.between(560, 640), took.Round(time.Millisecond)),
		}
	}
}

// transientError is the log line of a failed attempt that a retry may fix.
func (dp *deployer) transientError(d *deployment, t task) string {
	g := dp.logs
	switch t.phase {
	case phasePullImages:
		return pick(g, []string{
			`Error response from daemon: Get "https://registry-1.docker.io/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)`,
			"toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
			fmt.Sprintf("error pulling image configuration: download failed after attempts=6: dial tcp 104.16.%d.%d:443: i/o timeout", g.intn(256), g.intn(256)),
		})
	case phaseCreateNetwork:
		return "Error response from daemon: Pool overlaps with other one on this address space"
	case phaseProvisionVolumes:
		return "rbd: sysfs write failed; rbd: map failed: (110) Connection timed out"
	case phaseStartContainers:
		return fmt.Sprintf("Error response from daemon: driver failed programming external connectivity on endpoint %s-%s-1: Bind for 0.0.0.0:%d failed: port is already allocated",
			d.project, t.container.service, g.between(30000, 32767))
	default:
		return fmt.Sprintf("connection to %s refused: the database is not accepting connections yet", d.prof.db)
	}
}

// permanentError is the reason a deployment fails for good at t.
func (dp *deployer) permanentError(d *deployment, t task) string {
	g := dp.logs
	switch t.phase {
	case phasePullImages:
		return fmt.Sprintf("failed to register layer for %s: write /var/lib/docker/overlay2/%s/diff: no space left on device", t.image.ref, g.hex(64))
	case phaseProvisionVolumes:
		left := g.between(1, max(1, t.volume.sizeGB-1))
		return fmt.Sprintf("volume quota exceeded: %s requested %d GiB, %d GiB left in pool tenants-ssd", t.volume.name, t.volume.sizeGB, left)
	case phaseStartContainers:
		return fmt.Sprintf("container %s-%s-1 exited with code 137 (OOMKilled) while starting", d.project, t.container.service)
	case phaseRunMigrations:
		return d.prof.migration.broken
	default:
		return fmt.Sprintf("health check timed out after %s: GET %s returned 502 Bad Gateway", healthTimeout, d.prof.health.url)
	}
}
