package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publisher sends one publication and returns once the server has accepted
// it (HTTP 200 / JetStream ack).
type publisher interface {
	publish(ctx context.Context, channel string, payload []byte) error
	close()
}

// httpPublisher posts to a Centrifugo-shaped /api/publish; Pulse and
// Centrifugo take the same body and header.
type httpPublisher struct {
	url, key string
	client   *http.Client
}

func newHTTPPublisher(apiURL, key string, workers int) (*httpPublisher, error) {
	if err := CheckLoopback(apiURL); err != nil {
		return nil, fmt.Errorf("-api-url: %w", err)
	}
	return &httpPublisher{url: apiURL, key: key, client: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         loopbackDialer().DialContext,
			MaxIdleConnsPerHost: workers,
			DisableCompression:  true,
		},
	}}, nil
}

func (p *httpPublisher) publish(ctx context.Context, channel string, payload []byte) error {
	body, _ := json.Marshal(struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}{channel, payload})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", p.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || bytes.Contains(b, []byte(`"error"`)) {
		return fmt.Errorf("publish %s: %s %s", channel, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

func (p *httpPublisher) close() { p.client.CloseIdleConnections() }

// natsPublisher publishes straight to JetStream, as a Pulse worker does:
// channel tenant:<t>:<r> is subject tenants.<t>.<r>.
type natsPublisher struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newNATSPublisher(natsURL string) (*natsPublisher, error) {
	for _, u := range strings.Split(natsURL, ",") {
		if err := checkLoopbackNATS(u); err != nil {
			return nil, fmt.Errorf("-nats-url: %w", err)
		}
	}
	nc, err := nats.Connect(natsURL, nats.SetCustomDialer(loopbackDialer()), nats.Name("pulse-bench"))
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &natsPublisher{nc: nc, js: js}, nil
}

func checkLoopbackNATS(u string) error {
	u = strings.TrimPrefix(strings.TrimSpace(u), "nats://")
	host := u
	if i := strings.LastIndexByte(u, ':'); i >= 0 {
		host = strings.Trim(u[:i], "[]")
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("host %q: %w", host, ErrNotLoopback)
	}
	return nil
}

func (p *natsPublisher) publish(ctx context.Context, channel string, payload []byte) error {
	parts := strings.SplitN(channel, ":", 3)
	if len(parts) != 3 || parts[0] != "tenant" {
		return fmt.Errorf("nats publish: channel %q is not tenant:<t>:<r>", channel)
	}
	_, err := p.js.Publish(ctx, "tenants."+parts[1]+"."+parts[2], payload)
	return err
}

func (p *natsPublisher) close() { p.nc.Close() }

// payload is what every publication carries: the per-channel sequence
// number and the send time, read back by subscribers for loss, duplicates,
// order and latency.
func payload(seq uint64, sent time.Time, pad int) []byte {
	b := make([]byte, 0, 48+pad)
	b = append(b, `{"s":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, sent.UnixNano(), 10)
	if pad > 0 {
		b = append(b, `,"p":"`...)
		b = append(b, strings.Repeat("x", pad)...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// pubStats is what the publishers did.
type pubStats struct {
	mu      sync.Mutex
	acked   []bitset // per channel: sequence numbers the server accepted
	sent    int64
	failed  int64
	errs    errorTally
	seconds float64
}

// publishLoad publishes at rate msg/s for d, round-robin over the
// channels. A pacer assigns each publication its channel and per-channel
// sequence number on schedule; workers send them concurrently, so a slow
// request does not hold the rate down (order is then checked on the
// server's offsets, not on the payload's sequence). Publishing stops at d
// even if behind schedule; the achieved rate is reported.
func publishLoad(ctx context.Context, p publisher, channels []string, rate float64, d time.Duration, workers, pad int) *pubStats {
	st := &pubStats{acked: make([]bitset, len(channels))}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d+10*time.Second)
	defer cancel()
	type job struct {
		c   int
		seq uint64
	}
	jobs := make(chan job, workers)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(func() {
			var local bitsetUpdates
			for j := range jobs {
				err := p.publish(ctx, channels[j.c], payload(j.seq, time.Now(), pad))
				if err != nil {
					st.errs.add("publish", err)
					local.failed++
				} else {
					local.acks = append(local.acks, [2]uint64{uint64(j.c), j.seq})
				}
				local.sent++
			}
			st.mu.Lock()
			for _, a := range local.acks {
				st.acked[a[0]].set(a[1])
			}
			st.sent += local.sent
			st.failed += local.failed
			st.mu.Unlock()
		})
	}
	seqs := make([]uint64, len(channels))
	interval := time.Duration(float64(time.Second) / rate)
	total := int(rate * d.Seconds())
	end := start.Add(d)
	next := start
	for k := 0; k < total; k++ {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil || time.Now().After(end) {
			break
		}
		next = next.Add(interval)
		c := k % len(channels)
		seqs[c]++
		select {
		case jobs <- job{c, seqs[c]}:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	st.seconds = time.Since(start).Seconds()
	return st
}

type bitsetUpdates struct {
	acks         [][2]uint64
	sent, failed int64
}

// bitset is a growable set of small integers.
type bitset []uint64

// set adds i and reports whether it was already there.
func (b *bitset) set(i uint64) bool {
	w := int(i / 64)
	if w >= len(*b) {
		*b = append(*b, make([]uint64, w-len(*b)+1)...)
	}
	m := uint64(1) << (i % 64)
	had := (*b)[w]&m != 0
	(*b)[w] |= m
	return had
}

func (b bitset) has(i uint64) bool {
	w := int(i / 64)
	return w < len(b) && b[w]&(1<<(i%64)) != 0
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// missing counts members of want not in b.
func (b bitset) missing(want bitset) int {
	n := 0
	for i, w := range want {
		var have uint64
		if i < len(b) {
			have = b[i]
		}
		for x := w &^ have; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}
