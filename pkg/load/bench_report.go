package load

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// BenchReport is the outcome of one pulse-bench scenario run.
type BenchReport struct {
	Scenario      string `json:"scenario"`
	Server        string `json:"server"`
	ServerPID     int    `json:"server_pid"`
	Publish       string `json:"publish"`
	Target        int    `json:"target"`
	Channels      int    `json:"channels"`
	Conns         int    `json:"conns"`
	ConnectErrors int    `json:"connect_errors"`
	Dropped       int    `json:"dropped"`
	PingsAnswered int64  `json:"pings_answered"`

	RampSeconds   float64 `json:"ramp_s"`
	RSSBefore     uint64  `json:"rss_before_bytes"`
	RSSAfter      uint64  `json:"rss_after_bytes"`
	RSSPerConnKiB float64 `json:"rss_per_conn_kib,omitempty"`

	CPURampSeconds float64 `json:"cpu_ramp_s,omitempty"`
	CPUSeconds     float64 `json:"cpu_s"` // server CPU over the measured phase

	Published              int64   `json:"published,omitempty"`
	PublishFailed          int64   `json:"publish_failed,omitempty"`
	PublishSeconds         float64 `json:"publish_s,omitempty"`
	PublishRate            float64 `json:"publish_rate,omitempty"` // accepted msg/s achieved
	Expected               int64   `json:"expected,omitempty"`     // deliveries owed
	Delivered              int64   `json:"delivered,omitempty"`    // publications received, duplicates included
	Lost                   int64   `json:"lost"`
	SubsWithLoss           int     `json:"subs_with_loss"`
	Duplicates             int64   `json:"duplicates"`
	Reordered              int64   `json:"reordered"`
	LatencyP50Ms           float64 `json:"latency_p50_ms,omitempty"`
	LatencyP99Ms           float64 `json:"latency_p99_ms,omitempty"`
	LatencyMaxMs           float64 `json:"latency_max_ms,omitempty"`
	DeliveriesPerCPUSecond float64 `json:"deliveries_per_cpu_s,omitempty"`

	StormReconnected      int     `json:"storm_reconnected,omitempty"`
	StormFailed           int     `json:"storm_failed,omitempty"`
	StormRecovered        int     `json:"storm_recovered,omitempty"`
	StormSeconds          float64 `json:"storm_s,omitempty"` // drop → last recovered subscribe reply
	HistoryReads          float64 `json:"history_reads,omitempty"`
	HistoryReadsPerClient float64 `json:"history_reads_per_client,omitempty"` // -1: not measured

	Errors map[string]int `json:"errors,omitempty"`
}

// Write prints the report as a few lines for people, then one JSON line.
func (r *BenchReport) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s (pid %d): %d/%d subscribed on %d channels in %.1fs, %d connect errors, %d dropped\n",
		r.Scenario, r.Server, r.ServerPID, r.Conns, r.Target, r.Channels, r.RampSeconds, r.ConnectErrors, r.Dropped)
	if r.Scenario == "idle" {
		fmt.Fprintf(&b, "  RSS %s → %s: %.1f KiB per subscribed connection; CPU ramp %.2fs, settle %.2fs\n",
			fmtBytes(float64(r.RSSBefore)), fmtBytes(float64(r.RSSAfter)), r.RSSPerConnKiB, r.CPURampSeconds, r.CPUSeconds)
	} else {
		fmt.Fprintf(&b, "  published %d (%d failed) in %.1fs via %s = %.0f msg/s; delivered %d of %d owed\n",
			r.Published, r.PublishFailed, r.PublishSeconds, r.Publish, r.PublishRate, r.Delivered, r.Expected)
		fmt.Fprintf(&b, "  lost %d (%d subscribers), duplicates %d, reordered %d; latency p50 %.2fms p99 %.2fms max %.2fms\n",
			r.Lost, r.SubsWithLoss, r.Duplicates, r.Reordered, r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
		fmt.Fprintf(&b, "  server CPU %.2fs: %.0f deliveries per CPU-second\n", r.CPUSeconds, r.DeliveriesPerCPUSecond)
	}
	if r.Scenario == "storm" {
		reads := "n/a"
		if r.HistoryReadsPerClient >= 0 {
			reads = fmt.Sprintf("%.0f stream reads, %.4f per client", r.HistoryReads, r.HistoryReadsPerClient)
		}
		fmt.Fprintf(&b, "  storm: %d reconnected, %d failed, %d recovered in %.2fs; %s\n",
			r.StormReconnected, r.StormFailed, r.StormRecovered, r.StormSeconds, reads)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(&b, "  error %6d  %s\n", r.Errors[k], k)
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b.Write(line)
	b.WriteByte('\n')
	_, err = io.WriteString(w, b.String())
	return err
}

// sumSamples adds the values of every sample of metric name in Prometheus
// text format, labelled or not.
func sumSamples(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var sum float64
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest == "" || (rest[0] != '{' && rest[0] != ' ')) {
			continue
		}
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		sum += v
	}
	return sum, sc.Err()
}
