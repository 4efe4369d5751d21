package load

import (
	"testing"
	"time"
)

func TestHistBucketsAreMonotonicAndTight(t *testing.T) {
	t.Parallel()
	prev := -1
	for us := uint64(0); us < 1<<22; us += 1 + us/50 {
		b := histBucket(us)
		if b < prev {
			t.Fatalf("bucket(%d)=%d < %d", us, b, prev)
		}
		prev = b
		lo := histLower(b)
		if lo > us || float64(us-lo) > float64(us)/float64(1<<subBits)+1 {
			t.Fatalf("value %d in bucket %d with lower bound %d", us, b, lo)
		}
	}
}

func TestHistQuantiles(t *testing.T) {
	t.Parallel()
	var h latencyHist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	q, n := h.quantiles(0.5, 0.99)
	if n != 1000 {
		t.Fatalf("count %d", n)
	}
	if q[0] < 480 || q[0] > 510 || q[1] < 960 || q[1] > 1000 {
		t.Fatalf("p50 %.1f p99 %.1f", q[0], q[1])
	}
	if h.maxMs() != 1000 {
		t.Fatalf("max %.1f", h.maxMs())
	}
}
