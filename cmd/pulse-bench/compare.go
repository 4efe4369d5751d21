package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/pulseplatform/pulse/pkg/load"
)

// readReports takes the JSON lines of a file of pulse-bench outputs, keyed
// by scenario and size ("fanout/1000@500").
func readReports(path string) (map[string]load.BenchReport, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	out := map[string]load.BenchReport{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, `{"scenario"`) {
			continue
		}
		var r load.BenchReport
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		k := key(r)
		if _, ok := out[k]; !ok {
			order = append(order, k)
		}
		out[k] = r
	}
	return out, order, sc.Err()
}

func key(r load.BenchReport) string {
	k := fmt.Sprintf("%s %d subs/%d ch", r.Scenario, r.Target, r.Channels)
	if r.Scenario != "idle" && r.PublishSeconds > 0 {
		k += fmt.Sprintf(" @%.0f/s", float64(r.Published)/r.PublishSeconds)
	}
	return k
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// compare prints one row per scenario and metric: Pulse, Centrifugo, and
// Pulse/Centrifugo.
func compare(pulsePath, cfPath string, w io.Writer) error {
	p, order, err := readReports(pulsePath)
	if err != nil {
		return err
	}
	c, _, err := readReports(cfPath)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tmetric\tpulse\tcentrifugo\tpulse/centrifugo\t")
	row := func(k, m string, a, b float64, format string) {
		fmt.Fprintf(tw, "%s\t%s\t"+format+"\t"+format+"\t%s\t\n", k, m, a, b, ratio(a, b))
	}
	for _, k := range order {
		a := p[k]
		b, ok := c[findKey(c, a)]
		if !ok {
			fmt.Fprintf(tw, "%s\t(no centrifugo run)\t\t\t\t\n", k)
			continue
		}
		row(k, "subscribed", float64(a.Conns), float64(b.Conns), "%.0f")
		switch a.Scenario {
		case "idle":
			row(k, "RSS KiB/conn", a.RSSPerConnKiB, b.RSSPerConnKiB, "%.1f")
		default:
			row(k, "deliveries/CPU-s", a.DeliveriesPerCPUSecond, b.DeliveriesPerCPUSecond, "%.0f")
			row(k, "p50 ms", a.LatencyP50Ms, b.LatencyP50Ms, "%.2f")
			row(k, "p99 ms", a.LatencyP99Ms, b.LatencyP99Ms, "%.2f")
			row(k, "max ms", a.LatencyMaxMs, b.LatencyMaxMs, "%.1f")
			row(k, "lost", float64(a.Lost), float64(b.Lost), "%.0f")
			row(k, "dup+reordered", float64(a.Duplicates+a.Reordered), float64(b.Duplicates+b.Reordered), "%.0f")
			row(k, "server CPU s", a.CPUSeconds, b.CPUSeconds, "%.2f")
		}
		if a.Scenario == "storm" {
			row(k, "recovered", float64(a.StormRecovered), float64(b.StormRecovered), "%.0f")
			row(k, "time to recover s", a.StormSeconds, b.StormSeconds, "%.2f")
			row(k, "stream reads/client", a.HistoryReadsPerClient, b.HistoryReadsPerClient, "%.4f")
		}
	}
	return tw.Flush()
}

// findKey matches a Pulse report to the Centrifugo one of the same scenario
// and size (achieved rates differ a little).
func findKey(c map[string]load.BenchReport, a load.BenchReport) string {
	for k, b := range c {
		if b.Scenario == a.Scenario && b.Target == a.Target && b.Channels == a.Channels &&
			(a.Scenario == "idle" || nearRate(a, b)) {
			return k
		}
	}
	return ""
}

func nearRate(a, b load.BenchReport) bool {
	if a.PublishSeconds == 0 || b.PublishSeconds == 0 {
		return true
	}
	ra, rb := float64(a.Published)/a.PublishSeconds, float64(b.Published)/b.PublishSeconds
	return ra > rb*0.7 && ra < rb*1.4
}
