package load

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of one run. Per-connection figures divide the change
// between the baseline (before the first dial) and the end of the settle
// period by Conns.
type Report struct {
	Scenario      string  `json:"scenario"`
	Target        int     `json:"target"`         // -n
	Conns         int     `json:"conns"`          // connected and subscribed
	ConnectErrors int     `json:"connect_errors"` // dial, connect or subscribe failed
	Dropped       int     `json:"dropped"`        // lost after subscribing, before the close phase
	OpenAtMeasure int     `json:"open_at_measure"`
	PingsAnswered int64   `json:"pings_answered"`
	RampSeconds   float64 `json:"ramp_s"`
	RampRate      float64 `json:"ramp_conns_per_s"` // achieved
	SettleSeconds float64 `json:"settle_s"`
	CloseSeconds  float64 `json:"close_s"`

	HandshakeP50Ms float64 `json:"handshake_p50_ms"` // dial + connect + subscribe
	HandshakeP99Ms float64 `json:"handshake_p99_ms"`
	HandshakeMaxMs float64 `json:"handshake_max_ms"`

	ServerPID         int     `json:"server_pid"`
	ServerConnections float64 `json:"server_pulse_connections"` // after settle

	RSSBefore        uint64  `json:"rss_before_bytes"` // /proc VmRSS
	RSSAfter         uint64  `json:"rss_after_bytes"`
	RSSPerConnKiB    float64 `json:"rss_per_conn_kib"`
	MetricsRSSBefore float64 `json:"metrics_rss_before_bytes"` // process_resident_memory_bytes
	MetricsRSSAfter  float64 `json:"metrics_rss_after_bytes"`

	HeapInuseBefore float64 `json:"heap_inuse_before_bytes"`
	HeapInuseAfter  float64 `json:"heap_inuse_after_bytes"`
	HeapPerConnKiB  float64 `json:"heap_inuse_per_conn_kib"`

	StackInuseBefore float64 `json:"stack_inuse_before_bytes"`
	StackInuseAfter  float64 `json:"stack_inuse_after_bytes"`
	StackPerConnKiB  float64 `json:"stack_inuse_per_conn_kib"`

	GoroutinesBefore  float64 `json:"goroutines_before"`
	GoroutinesAfter   float64 `json:"goroutines_after"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn"`

	CPUBefore        float64 `json:"cpu_before_s"` // server user+system CPU time
	CPUAfterRamp     float64 `json:"cpu_after_ramp_s"`
	CPUAfter         float64 `json:"cpu_after_s"`
	CPURampPerConnMs float64 `json:"cpu_ramp_per_conn_ms"`
	CPUSettlePercent float64 `json:"cpu_settle_pct_of_core"`

	Errors   map[string]int `json:"errors,omitempty"`   // "phase: kind" → count
	Warnings []string       `json:"warnings,omitempty"` // reasons to distrust the figures
}

// Write prints the report as a table for people, then as one JSON line for
// scripts.
func (r *Report) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d/%d connected, %d connect errors, %d dropped; ramp %.2fs (%.0f conns/s), handshake p50 %.1fms p99 %.1fms max %.1fms\n",
		r.Scenario, r.Conns, r.Target, r.ConnectErrors, r.Dropped, r.RampSeconds, r.RampRate, r.HandshakeP50Ms, r.HandshakeP99Ms, r.HandshakeMaxMs)
	fmt.Fprintf(&b, "server pid %d: pulse_connections %.0f after %.1fs settle; %d open, %d pings answered; closed in %.2fs\n\n",
		r.ServerPID, r.ServerConnections, r.SettleSeconds, r.OpenAtMeasure, r.PingsAnswered, r.CloseSeconds)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	// Names are padded here because the tabwriter right-aligns every column.
	name := func(s string) string { return fmt.Sprintf("%-18s", s) }
	fmt.Fprintf(tw, "%s\tbefore\tafter\tdelta\tper conn\t\n", name("metric"))
	bytesRow := func(label string, before, after, perConnKiB float64) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f KiB\t\n", name(label), fmtBytes(before), fmtBytes(after), fmtBytes(after-before), perConnKiB)
	}
	bytesRow("RSS (/proc)", float64(r.RSSBefore), float64(r.RSSAfter), r.RSSPerConnKiB)
	metricsPerConn := 0.0
	if r.Conns > 0 {
		metricsPerConn = (r.MetricsRSSAfter - r.MetricsRSSBefore) / float64(r.Conns) / 1024
	}
	bytesRow("RSS (/metrics)", r.MetricsRSSBefore, r.MetricsRSSAfter, metricsPerConn)
	bytesRow("heap in use", r.HeapInuseBefore, r.HeapInuseAfter, r.HeapPerConnKiB)
	bytesRow("stacks in use", r.StackInuseBefore, r.StackInuseAfter, r.StackPerConnKiB)
	fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.2f\t\n", name("goroutines"), r.GoroutinesBefore, r.GoroutinesAfter, r.GoroutinesAfter-r.GoroutinesBefore, r.GoroutinesPerConn)
	fmt.Fprintf(tw, "%s\t%.2fs\t%.2fs\t%.2fs\t%.3f ms\t\n", name("CPU during ramp"), r.CPUBefore, r.CPUAfterRamp, r.CPUAfterRamp-r.CPUBefore, r.CPURampPerConnMs)
	fmt.Fprintf(tw, "%s\t%.2fs\t%.2fs\t%.2fs\t(%.1f%% of a core)\t\n", name("CPU during settle"), r.CPUAfterRamp, r.CPUAfter, r.CPUAfter-r.CPUAfterRamp, r.CPUSettlePercent)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		b.WriteString("\nerrors:\n")
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(&b, "  %6d  %s\n", r.Errors[k], k)
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "\nwarning: %s\n", w)
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	b.WriteByte('\n')
	b.Write(line)
	b.WriteByte('\n')
	_, err = io.WriteString(w, b.String())
	return err
}

// fmtBytes prints a byte count with a binary unit; negative deltas keep
// their sign.
func fmtBytes(v float64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	for _, u := range []string{"B", "KiB", "MiB"} {
		if v < 1024 {
			return fmt.Sprintf("%s%.1f %s", sign, v, u)
		}
		v /= 1024
	}
	return fmt.Sprintf("%s%.2f GiB", sign, v)
}
