package load

import (
	"fmt"
	"syscall"
)

// fdReserve is the file descriptors a run needs besides its connections:
// stdio, the metrics scrape, /proc reads, the Go runtime's own.
const fdReserve = 64

// RaiseFileLimit raises RLIMIT_NOFILE so that conns connections fit: the
// soft limit goes to the hard one, and the hard one up too if the process
// may (CAP_SYS_RESOURCE). It returns the resulting soft limit, and an error
// naming the limit when conns cannot fit.
func RaiseFileLimit(conns int) (uint64, error) {
	need := uint64(conns) + fdReserve
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit NOFILE: %w", err)
	}
	if lim.Cur >= need {
		return lim.Cur, nil
	}
	if lim.Max < need {
		raised := syscall.Rlimit{Cur: need, Max: need}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			return need, nil
		}
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit NOFILE to %d: %w", lim.Cur, err)
	}
	if lim.Cur < need {
		return lim.Cur, fmt.Errorf("-n %d needs %d open files, but RLIMIT_NOFILE is at most %d here (raise the hard limit, e.g. ulimit -Hn, or lower -n)", conns, need, lim.Max)
	}
	return lim.Cur, nil
}
