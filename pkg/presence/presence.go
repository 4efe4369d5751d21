// Package presence tracks who is online in a channel, across every gateway
// replica, in a JetStream KV bucket.
//
// Each subscription to a presence-enabled channel is one key,
// "<channel subject>.<client id>", written by the gateway that holds the
// connection and rewritten before the bucket's TTL ends. A gateway that dies
// stops rewriting; its keys expire within the TTL and the bucket's limit
// markers tell every watcher, which turns them into leave events. Each
// gateway watches the keys of the channels its clients use and keeps the
// members and counts in memory, so presence and presence_stats do not read
// the bucket on every call.
//
// It must never put a key for a channel that did not come from package
// channel, so one channel's members never leak into another's.
package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/metrics"
)

// Member is one client in a channel.
type Member struct {
	Client   string          `json:"client"`
	User     string          `json:"user"`
	ConnInfo json.RawMessage `json:"conn_info,omitempty"`
	ChanInfo json.RawMessage `json:"chan_info,omitempty"`
	Node     string          `json:"node,omitempty"` // gateway holding the connection
}

// Config sets up the manager.
type Config struct {
	Bucket   string        // KV bucket name
	TTL      time.Duration // a key not rewritten within TTL expires (gateway death)
	Replicas int
	Node     string
	Logger   *slog.Logger
	Metrics  *metrics.Metrics
	// IdleView keeps a channel's watcher this long after its last use by a
	// query, so repeated queries are served from memory.
	IdleView time.Duration
}

// Event is a join or a leave seen in the bucket.
type Event struct {
	Channel channel.Channel
	Join    bool
	Member  *Member
}

// Manager owns this gateway's keys and its views of channels.
type Manager struct {
	cfg     Config
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	log     *slog.Logger
	metrics *metrics.Metrics
	onEvent func(Event)

	mu    sync.Mutex
	local map[string]*localKey // key → what this gateway keeps alive
	views map[string]*view     // channel name → watcher
}

type localKey struct {
	value []byte
}

// New creates or updates the bucket. onEvent receives joins and leaves of
// channels with a view held by Acquire; it must not block.
func New(ctx context.Context, js jetstream.JetStream, cfg Config, onEvent func(Event)) (*Manager, error) {
	if cfg.TTL < time.Second {
		return nil, errors.New("presence TTL must be at least 1s")
	}
	if cfg.IdleView == 0 {
		cfg.IdleView = 30 * time.Second
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         cfg.Bucket,
		Description:    "Pulse presence: <channel subject>.<client id> → member, rewritten by the gateway holding the connection",
		History:        1,
		TTL:            cfg.TTL,
		LimitMarkerTTL: max(cfg.TTL, time.Minute),
		Storage:        jetstream.FileStorage,
		Replicas:       max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("presence bucket %s: %w", cfg.Bucket, err)
	}
	return &Manager{cfg: cfg, js: js, kv: kv, log: cfg.Logger, metrics: cfg.Metrics, onEvent: onEvent,
		local: map[string]*localKey{}, views: map[string]*view{}}, nil
}

func key(ch channel.Channel, client string) string { return ch.Subject() + "." + client }

// Join records m in ch until Leave, rewriting it before the TTL ends.
func (p *Manager) Join(ctx context.Context, ch channel.Channel, m *Member) error {
	m.Node = p.cfg.Node
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	k := key(ch, m.Client)
	p.mu.Lock()
	p.local[k] = &localKey{value: b}
	n := len(p.local)
	p.mu.Unlock()
	p.metrics.PresenceEntries.Set(float64(n))
	if _, err := p.kv.Put(ctx, k, b); err != nil {
		return fmt.Errorf("presence join %s: %w", ch, err)
	}
	p.metrics.PresenceWrites.Inc()
	// This gateway's own view shows the member at once, not only when the
	// watcher brings the write back: a client asking for presence right
	// after subscribing finds itself. The watcher's copy is then no news.
	if v := p.heldView(ch); v != nil && v.put(m) && v.isSynced() {
		p.metrics.PresenceJoins.Inc()
		p.onEvent(Event{Channel: ch, Join: true, Member: m})
	}
	return nil
}

// heldView is ch's view if this gateway has one.
func (p *Manager) heldView(ch channel.Channel) *view {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.views[ch.Name()]
}

// Leave removes client from ch.
func (p *Manager) Leave(ctx context.Context, ch channel.Channel, client string) error {
	k := key(ch, client)
	p.mu.Lock()
	_, ok := p.local[k]
	delete(p.local, k)
	n := len(p.local)
	p.mu.Unlock()
	p.metrics.PresenceEntries.Set(float64(n))
	if !ok {
		return nil
	}
	if err := p.kv.Delete(ctx, k); err != nil {
		return fmt.Errorf("presence leave %s: %w", ch, err)
	}
	p.metrics.PresenceWrites.Inc()
	if v := p.heldView(ch); v != nil && v.isSynced() {
		if m := v.remove(client); m != nil {
			p.metrics.PresenceLeaves.Inc()
			p.onEvent(Event{Channel: ch, Join: false, Member: m})
		}
	}
	return nil
}

// Run rewrites this gateway's keys every TTL/3 until ctx ends.
func (p *Manager) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.TTL / 3)
	defer t.Stop()
	defer p.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.refresh(ctx)
			p.Sweep()
		}
	}
}

// refresh rewrites every local key, pipelined.
func (p *Manager) refresh(ctx context.Context) {
	p.mu.Lock()
	keys := make(map[string][]byte, len(p.local))
	for k, v := range p.local {
		keys[k] = v.value
	}
	p.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	prefix := "$KV." + p.cfg.Bucket + "."
	// Pipelined in chunks: the client caps acknowledgements outstanding
	// (4,000 by default), and a gateway may hold tens of thousands of keys.
	const chunk = 1000
	sent := 0
	for k, v := range keys {
		if _, err := p.js.PublishAsync(prefix+k, v); err != nil {
			p.log.Warn("presence refresh", "err", err)
			return
		}
		if sent++; sent%chunk == 0 && !p.waitAcks(ctx, sent) {
			return
		}
	}
	if p.waitAcks(ctx, sent) {
		p.metrics.PresenceWrites.Add(float64(len(keys)))
	}
}

// waitAcks waits for the refresh's outstanding acknowledgements.
func (p *Manager) waitAcks(ctx context.Context, sent int) bool {
	select {
	case <-p.js.PublishAsyncComplete():
		return true
	case <-ctx.Done():
		return false
	case <-time.After(p.cfg.TTL / 3):
		p.log.Warn("presence refresh not acknowledged in time", "keys", sent)
		return false
	}
}
