package load

import (
	"strings"
	"testing"
	"time"
)

func TestPushTracksLossDuplicatesAndOrder(t *testing.T) {
	t.Parallel()
	bf := &benchFleet{}
	s := &subscriber{}
	now := time.Now()
	for _, p := range []struct {
		seq, off uint64
	}{{1, 10}, {2, 11}, {2, 11}, {4, 13}, {3, 12}} {
		line := `{"push":{"channel":"tenant:acme:bench-0","pub":{"data":` + string(payload(p.seq, now, 3)) + `,"offset":` + itoa(p.off) + `}}}`
		bf.push(s, []byte(line))
	}
	if s.recv != 5 || s.dups != 1 || s.reorders != 1 || s.offset != 13 {
		t.Fatalf("recv %d dups %d reorders %d offset %d", s.recv, s.dups, s.reorders, s.offset)
	}
	var want bitset
	for i := uint64(1); i <= 5; i++ {
		want.set(i)
	}
	if miss := s.seen.missing(want); miss != 1 {
		t.Fatalf("missing %d, want 1 (seq 5)", miss)
	}
	if _, n := bf.hist.quantiles(0.5); n != 4 {
		t.Fatalf("latency samples %d, want 4 (duplicates excluded)", n)
	}
}

func itoa(n uint64) string {
	var b []byte
	b, _ = leadingAppend(b, n)
	return string(b)
}

func leadingAppend(b []byte, n uint64) ([]byte, error) {
	if n >= 10 {
		b, _ = leadingAppend(b, n/10)
	}
	return append(b, byte('0'+n%10)), nil
}

func TestSumSamplesAddsLabelledSeries(t *testing.T) {
	t.Parallel()
	text := "# HELP pulse_history_reads_total x\n" +
		"pulse_history_reads_total{kind=\"recover\"} 12\n" +
		"pulse_history_reads_total{kind=\"top\"} 3\n" +
		"pulse_history_reads_totalx 100\n"
	got, err := sumSamples(strings.NewReader(text), "pulse_history_reads_total")
	if err != nil || got != 15 {
		t.Fatalf("got %v, %v; want 15", got, err)
	}
}
