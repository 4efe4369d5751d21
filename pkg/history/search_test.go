package history

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSearchText(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	payloads := []string{
		`{"step":"pull images","status":"ok"}`,
		`{"step":"migrate database","status":"FAILED","reason":"lock timeout"}`,
		`{"note":"Größe des Volumes geändert"}`,
		`{"step":"health check","status":"ok"}`,
		`{"note":"GRÖSSE unverändert"}`,
		`{"step":"start containers","status":"Failed"}`,
		`{"note":"größe überschritten: ÄNDERUNG nötig"}`,
		`{"step":"completed","url":"https://acme.example"}`,
	}
	s := e.fill(subjAcmeDeploy, len(payloads), func(i int) []byte { return []byte(payloads[i]) })
	// Neighbours say the same words: they must never show up.
	e.publish(pub{subjGlobex, []byte(`{"status":"failed","note":"größe"}`)}, pub{subjAcmeBill, []byte(`failed Größe`)})

	for _, tc := range []struct {
		text string
		want []uint64 // newest first
	}{
		{"failed", []uint64{s[5], s[1]}},
		{"FAILED", []uint64{s[5], s[1]}},
		{`"status":"ok"`, []uint64{s[3], s[0]}},
		{"größe", []uint64{s[6], s[2]}}, // not "GRÖSSE": no ß/SS folding
		{"GRÖßE", []uint64{s[6], s[2]}},
		{"änderung", []uint64{s[6]}},
		{"Geändert", []uint64{s[2]}},
		{"not there", nil},
		{"", reversed(s)},
	} {
		t.Run(tc.text, func(t *testing.T) {
			res, err := e.r.Search(e.ctx, ch, SearchQuery{Text: tc.text, Limit: 50, ScanCap: 1000})
			if err != nil {
				t.Fatal(err)
			}
			onlySubject(t, res.Msgs, subjAcmeDeploy)
			if got := offsets(res.Msgs); !slices.Equal(got, tc.want) {
				t.Fatalf("Search(%q) = %v, want %v", tc.text, got, tc.want)
			}
			if res.CapHit || res.NextBefore != 0 || res.Scanned != len(s) || res.Epoch != e.r.Epoch(ch) {
				t.Fatalf("Search(%q): capHit=%v nextBefore=%d scanned=%d epoch=%q; want the whole channel scanned once",
					tc.text, res.CapHit, res.NextBefore, res.Scanned, res.Epoch)
			}
		})
	}
}

func TestSearchOfEmptyChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	e.fill(subjGlobex, 5, text("deploy"))
	res, err := e.r.Search(e.ctx, ch, SearchQuery{Text: "deploy", Limit: 10, ScanCap: 100})
	if err != nil || len(res.Msgs) != 0 || res.Scanned != 0 || res.NextBefore != 0 {
		t.Fatalf("Search of an empty channel = %v scanned=%d next=%d, %v", offsets(res.Msgs), res.Scanned, res.NextBefore, err)
	}
}

func TestSearchTimeWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	b1 := e.fill(subjAcmeDeploy, 8, text("first burst"))
	time.Sleep(100 * time.Millisecond)
	b2 := e.fill(subjAcmeDeploy, 8, text("second burst"))
	e.fill(subjGlobex, 3, text("after")) // stored later, other channel
	all := append(slices.Clone(b1), b2...)
	times := map[uint64]time.Time{}
	for _, m := range e.stored(all) {
		times[m.Sequence] = m.Time
	}
	at := func(o uint64) time.Time { return times[o] }
	gap := at(b1[len(b1)-1]).Add(at(b2[0]).Sub(at(b1[len(b1)-1])) / 2)

	for _, tc := range []struct {
		name         string
		since, until time.Time
		want         []uint64
	}{
		{"since the second burst's first message, inclusive", at(b2[0]), time.Time{}, reversed(b2)},
		{"since the gap", gap, time.Time{}, reversed(b2)},
		{"until the gap", time.Time{}, gap, reversed(b1)},
		{"until the first burst's last message, inclusive", time.Time{}, at(b1[len(b1)-1]), reversed(b1)},
		{"until the channel's first message, inclusive", time.Time{}, at(b1[0]), b1[:1]},
		{"window across the bursts, both ends inclusive", at(b1[5]), at(b2[2]), reversed(all[5:11])},
		{"window inside one burst", at(b2[1]), at(b2[4]), reversed(b2[1:5])},
		{"since after everything", at(b2[7]).Add(time.Hour), time.Time{}, nil},
		{"until before everything", time.Time{}, at(b1[0]).Add(-time.Hour), nil},
		{"empty window", at(b2[4]), at(b2[1]), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.r.Search(e.ctx, ch, SearchQuery{Text: "burst", Since: tc.since, Until: tc.until, Limit: 100, ScanCap: 1000})
			if err != nil {
				t.Fatal(err)
			}
			onlySubject(t, res.Msgs, subjAcmeDeploy)
			if got := offsets(res.Msgs); !slices.Equal(got, tc.want) {
				t.Fatalf("Search(since %s, until %s) = %v, want %v", stamp(tc.since), stamp(tc.until), got, tc.want)
			}
			if res.NextBefore != 0 || res.CapHit {
				t.Fatalf("window fully scanned but nextBefore=%d capHit=%v", res.NextBefore, res.CapHit)
			}
		})
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339Nano)
}

// searchAll follows NextBefore from the newest match to the end and
// returns every page.
func searchAll(t *testing.T, e *env, q SearchQuery) []SearchResult {
	t.Helper()
	ch := mustChannel(t, "tenant:acme:deployments")
	var pages []SearchResult
	for range 1000 {
		res, err := e.r.Search(e.ctx, ch, q)
		if err != nil {
			t.Fatal(err)
		}
		onlySubject(t, res.Msgs, subjAcmeDeploy)
		pages = append(pages, res)
		if res.NextBefore == 0 {
			return pages
		}
		if q.Before != 0 && res.NextBefore >= q.Before {
			t.Fatalf("cursor did not move down: before %d, next %d", q.Before, res.NextBefore)
		}
		q.Before = res.NextBefore
	}
	t.Fatal("search pages never ended")
	return nil
}

func matched(pages []SearchResult) []uint64 {
	var out []uint64
	for _, p := range pages {
		out = append(out, offsets(p.Msgs)...)
	}
	return out
}

func TestSearchPagesVisitEveryMatchOnceNewestFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.fill(subjAcmeDeploy, 100, func(i int) []byte {
		if i%3 == 0 {
			return fmt.Appendf(nil, `{"n":%d,"level":"ALERT"}`, i)
		}
		return fmt.Appendf(nil, `{"n":%d,"level":"info"}`, i)
	})
	var want []uint64
	for i := len(s) - 1; i >= 0; i-- {
		if i%3 == 0 {
			want = append(want, s[i])
		}
	}

	for _, limit := range []int{1, 7, 17, 34, 50} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			pages := searchAll(t, e, SearchQuery{Text: "alert", Limit: limit, ScanCap: 10000})
			if got := matched(pages); !slices.Equal(got, want) {
				t.Fatalf("pages of %d visited %v, want %v", limit, got, want)
			}
			for i, p := range pages[:len(pages)-1] {
				if len(p.Msgs) != limit {
					t.Fatalf("page %d has %d matches, want a full page of %d", i, len(p.Msgs), limit)
				}
			}
		})
	}
}

func TestSearchScanCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	s := e.fill(subjAcmeDeploy, 45, func(i int) []byte {
		if i%5 == 0 {
			return fmt.Appendf(nil, "needle %d", i)
		}
		return fmt.Appendf(nil, "hay %d", i)
	})
	var want []uint64
	for i := len(s) - 1; i >= 0; i-- {
		if i%5 == 0 {
			want = append(want, s[i])
		}
	}

	t.Run("first page stops at the cap and says where to go on", func(t *testing.T) {
		res, err := e.r.Search(e.ctx, ch, SearchQuery{Text: "needle", Limit: 100, ScanCap: 10})
		if err != nil {
			t.Fatal(err)
		}
		if !res.CapHit || res.Scanned != 10 {
			t.Fatalf("capHit=%v scanned=%d, want the cap of 10 hit", res.CapHit, res.Scanned)
		}
		if got := offsets(res.Msgs); !slices.Equal(got, []uint64{s[40], s[35]}) {
			t.Fatalf("matches in the 10 newest = %v, want %v", got, []uint64{s[40], s[35]})
		}
		if res.NextBefore != s[35] {
			t.Fatalf("NextBefore = %d, want %d (the oldest message examined)", res.NextBefore, s[35])
		}
	})
	t.Run("following the cursor visits every match once", func(t *testing.T) {
		for _, c := range []struct{ limit, scanCap int }{{100, 10}, {100, 7}, {1, 3}, {2, 11}, {3, 1}} {
			pages := searchAll(t, e, SearchQuery{Text: "needle", Limit: c.limit, ScanCap: c.scanCap})
			if got := matched(pages); !slices.Equal(got, want) {
				t.Fatalf("limit %d, cap %d: pages visited %v, want %v", c.limit, c.scanCap, got, want)
			}
			for i, p := range pages {
				if p.Scanned > c.scanCap {
					t.Fatalf("page %d examined %d messages, cap %d", i, p.Scanned, c.scanCap)
				}
			}
		}
	})
	t.Run("exactly the cap left is no cap hit", func(t *testing.T) {
		res, err := e.r.Search(e.ctx, ch, SearchQuery{Text: "needle", Before: s[10], Limit: 100, ScanCap: 10})
		if err != nil {
			t.Fatal(err)
		}
		if res.CapHit || res.NextBefore != 0 || !slices.Equal(offsets(res.Msgs), []uint64{s[5], s[0]}) {
			t.Fatalf("capHit=%v next=%d msgs=%v; want the last 10 scanned to the end", res.CapHit, res.NextBefore, offsets(res.Msgs))
		}
	})
	t.Run("before below the channel", func(t *testing.T) {
		res, err := e.r.Search(e.ctx, ch, SearchQuery{Text: "needle", Before: s[0], Limit: 100, ScanCap: 10})
		if err != nil || len(res.Msgs) != 0 || res.NextBefore != 0 || res.Scanned != 0 {
			t.Fatalf("Search before the oldest = %v next=%d scanned=%d, %v", offsets(res.Msgs), res.NextBefore, res.Scanned, err)
		}
	})
}

func TestSearchNeverReturnsAnotherChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	var msgs []pub
	for i := range 30 {
		msgs = append(msgs,
			pub{subjGlobex, fmt.Appendf(nil, "globex secret %d", i)},
			pub{subjAcmeBill, fmt.Appendf(nil, "billing secret %d", i)},
			pub{"tenants.acme.deployments2", fmt.Appendf(nil, "lookalike secret %d", i)})
		if i%4 == 0 {
			msgs = append(msgs, pub{subjAcmeDeploy, fmt.Appendf(nil, "public %d", i)})
		}
	}
	e.publish(msgs...)
	for _, text := range []string{"secret", "", "1"} {
		pages := searchAll(t, e, SearchQuery{Text: text, Limit: 3, ScanCap: 4})
		for _, p := range pages {
			for _, m := range p.Msgs {
				if strings.Contains(string(m.Data), "secret") {
					t.Fatalf("Search(%q) returned %q from %s", text, m.Data, m.Subject)
				}
			}
		}
	}
	res, err := e.r.Search(e.ctx, ch, SearchQuery{Text: "secret", Limit: 10, ScanCap: 1000})
	if err != nil || len(res.Msgs) != 0 || res.Scanned != 8 {
		t.Fatalf("Search(secret) = %d matches, %d scanned, %v; want none of the 8 messages of the channel", len(res.Msgs), res.Scanned, err)
	}
}

// Search promises bounded work: at most about ScanCap stored messages read
// from the stream per call, whatever the channel's size, in a bounded
// number of requests. Counted on the reader's own connection: every request
// ends with one reply that is not a stored message (end of batch, or no
// messages), and may cost one more for a probe (a count read).
func TestSearchReadsAtMostScanCapMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := mustChannel(t, "tenant:acme:deployments")
	var msgs []pub
	for i := range 3000 {
		msgs = append(msgs, pub{subjAcmeDeploy, fmt.Appendf(nil, "hay %d", i)})
	}
	e.publish(msgs...)
	e.freshEpochs()

	for _, scanCap := range []int{100, 400, 1500} {
		t.Run(fmt.Sprint(scanCap), func(t *testing.T) {
			before := e.rnc.Stats()
			res, err := e.r.Search(e.ctx, ch, SearchQuery{Text: "needle", Limit: 10, ScanCap: scanCap})
			if err != nil {
				t.Fatal(err)
			}
			after := e.rnc.Stats()
			if !res.CapHit || res.Scanned != scanCap {
				t.Fatalf("capHit=%v scanned=%d, want the cap of %d hit", res.CapHit, res.Scanned, scanCap)
			}
			requests := after.OutMsgs - before.OutMsgs
			stored := int64(after.InMsgs-before.InMsgs) - 2*int64(requests)
			t.Logf("cap %d: %d requests, %d messages received", scanCap, requests, after.InMsgs-before.InMsgs)
			if stored > int64(scanCap) {
				t.Fatalf("a search capped at %d messages received %d stored messages beyond one per request (%d requests)",
					scanCap, stored, requests)
			}
			if requests > 64 {
				t.Fatalf("a search capped at %d messages made %d requests", scanCap, requests)
			}
		})
	}
}
