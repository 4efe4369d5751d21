package load

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// latencyHist is a log-linear histogram of microseconds that many reader
// goroutines fill at once without locks: 2^subBits buckets per power of two,
// so a percentile is within 1/2^subBits (about 3%) of the true value. A
// fan-out run records millions of samples; keeping them all would cost more
// memory than the connections.
type latencyHist struct {
	counts [64 << subBits]atomic.Int64
	max    atomic.Int64 // µs
}

const subBits = 5

func histBucket(us uint64) int {
	if us < 1<<subBits {
		return int(us)
	}
	exp := bits.Len64(us) - subBits - 1
	return (exp+1)<<subBits + int(us>>uint(exp)) - 1<<subBits
}

// histLower is the smallest value in bucket b.
func histLower(b int) uint64 {
	if b < 1<<subBits {
		return uint64(b)
	}
	exp := b>>subBits - 1
	return uint64(b-(exp+1)<<subBits+1<<subBits) << uint(exp)
}

func (h *latencyHist) record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	h.counts[histBucket(uint64(us))].Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// quantiles returns the p-quantiles in milliseconds, and the count.
func (h *latencyHist) quantiles(ps ...float64) ([]float64, int64) {
	var total int64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	out := make([]float64, len(ps))
	if total == 0 {
		return out, 0
	}
	for j, p := range ps {
		rank := int64(p*float64(total-1)) + 1
		var seen int64
		for i := range h.counts {
			seen += h.counts[i].Load()
			if seen >= rank {
				out[j] = float64(histLower(i)) / 1000
				break
			}
		}
	}
	return out, total
}

func (h *latencyHist) maxMs() float64 { return float64(h.max.Load()) / 1000 }
