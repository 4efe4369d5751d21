package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ProcStats is what /proc says about a process.
type ProcStats struct {
	RSS uint64        // resident set size, bytes (VmRSS)
	CPU time.Duration // user + system CPU time
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times. It is part of
// the Linux user-space ABI: 100 on every architecture Go supports.
const clockTicks = 100

// ReadProc reads the RSS and CPU time of pid from /proc.
func ReadProc(pid int) (ProcStats, error) {
	return readProc("/proc", pid)
}

func readProc(root string, pid int) (ProcStats, error) {
	dir := filepath.Join(root, strconv.Itoa(pid))
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return ProcStats{}, fmt.Errorf("server process %d: %w", pid, err)
	}
	var st ProcStats
	if st.RSS, err = parseRSS(status); err != nil {
		return ProcStats{}, fmt.Errorf("%s/status: %w", dir, err)
	}
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return ProcStats{}, fmt.Errorf("server process %d: %w", pid, err)
	}
	if st.CPU, err = parseCPU(stat); err != nil {
		return ProcStats{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	return st, nil
}

// parseRSS finds "VmRSS:   1234 kB" in /proc/<pid>/status.
func parseRSS(status []byte) (uint64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("no VmRSS line (a zombie or kernel thread?)")
}

// parseCPU adds utime and stime, fields 14 and 15 of /proc/<pid>/stat. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(stat[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields, want at least 15", len(f)+2)
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// ErrNoListener is returned when no process listens on the server port.
var ErrNoListener = errors.New("no process found listening there (pass -server-pid)")

// FindListenerPID returns the process that has a TCP socket listening on
// port, by matching the socket's inode in /proc/net/tcp{,6} against the
// open files in /proc/<pid>/fd (needs the same user as the server, or root).
func FindListenerPID(port int) (int, error) {
	inodes := make(map[string]bool)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6
		}
		if err != nil {
			return 0, fmt.Errorf("find server on port %d: %w", port, err)
		}
		for _, ino := range listenInodes(b, port) {
			inodes["socket:["+ino+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("port %d: %w", port, ErrNoListener)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("find server on port %d: %w", port, err)
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && inodes[link] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("port %d (socket found, owner not visible to this user): %w", port, ErrNoListener)
}

// tcpListen is the st value of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// listenInodes returns the inodes of the sockets in a /proc/net/tcp table
// that listen on port.
func listenInodes(table []byte, port int) []string {
	want := fmt.Sprintf(":%04X", port)
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != tcpListen || !strings.HasSuffix(f[1], want) {
			continue
		}
		out = append(out, f[9])
	}
	return out
}

// ServerMetrics are the gauges read from the gateway's /metrics.
type ServerMetrics struct {
	Connections float64 // pulse_connections
	HeapInuse   float64 // go_memstats_heap_inuse_bytes
	StackInuse  float64 // go_memstats_stack_inuse_bytes: goroutine stacks, outside the heap
	RSS         float64 // process_resident_memory_bytes
	Goroutines  float64 // go_goroutines
}

// ScrapeMetrics fetches url and reads the gauges of ServerMetrics. A gauge
// the gateway does not export is an error: the report would be misleading.
func ScrapeMetrics(ctx context.Context, client *http.Client, url string) (ServerMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ServerMetrics{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return ServerMetrics{}, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ServerMetrics{}, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	var m ServerMetrics
	want := map[string]*float64{
		"pulse_connections":             &m.Connections,
		"go_memstats_heap_inuse_bytes":  &m.HeapInuse,
		"go_memstats_stack_inuse_bytes": &m.StackInuse,
		"process_resident_memory_bytes": &m.RSS,
		"go_goroutines":                 &m.Goroutines,
	}
	if err := parseGauges(io.LimitReader(resp.Body, 16<<20), want); err != nil {
		return ServerMetrics{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	return m, nil
}

// parseGauges reads unlabelled samples of the Prometheus text format into
// want, and fails naming any it did not find.
func parseGauges(r io.Reader, want map[string]*float64) error {
	found := make(map[string]bool, len(want))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		dst := want[name]
		if !ok || dst == nil {
			continue // labelled series or not ours
		}
		value, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // drop a timestamp
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("metric %s: %w", name, err)
		}
		*dst, found[name] = v, true
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var missing []string
	for name := range want {
		if !found[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("metrics missing: %s", strings.Join(missing, ", "))
	}
	return nil
}
