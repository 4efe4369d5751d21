package presence

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
)

// view is one gateway's live copy of a channel's members, fed by a KV
// watcher.
type view struct {
	ch      channel.Channel
	cancel  context.CancelFunc
	synced  chan struct{} // closed after the initial values
	refs    int           // local subscribers (guarded by Manager.mu)
	lastUse time.Time     // last query (guarded by Manager.mu)

	mu      sync.Mutex
	members map[string]*Member // client id → member
	users   map[string]int     // user → clients
	err     error
}

// Acquire holds a view of ch (joins and leaves are reported to onEvent)
// until Release.
func (p *Manager) Acquire(ch channel.Channel) error {
	_, err := p.view(ch, true)
	return err
}

// Release drops a hold taken by Acquire.
func (p *Manager) Release(ch channel.Channel) {
	p.mu.Lock()
	v, ok := p.views[ch.Name()]
	if ok {
		v.refs--
		v.lastUse = time.Now()
	}
	p.mu.Unlock()
}

// view returns the channel's view, starting its watcher when needed.
func (p *Manager) view(ch channel.Channel, hold bool) (*view, error) {
	p.mu.Lock()
	v, ok := p.views[ch.Name()]
	if !ok {
		v = &view{ch: ch, synced: make(chan struct{}), members: map[string]*Member{}, users: map[string]int{}}
		p.views[ch.Name()] = v
		ctx, cancel := context.WithCancel(context.Background())
		v.cancel = cancel
		w, err := p.kv.WatchFiltered(ctx, []string{ch.Subject() + ".*"})
		if err != nil {
			delete(p.views, ch.Name())
			p.mu.Unlock()
			cancel()
			return nil, fmt.Errorf("presence watch %s: %w", ch, err)
		}
		go p.follow(v, w)
	}
	if hold {
		v.refs++
	}
	v.lastUse = time.Now()
	p.mu.Unlock()
	return v, nil
}

// follow applies the watcher's updates to v. Events are reported only
// after the initial values, so a new view does not replay old joins.
func (p *Manager) follow(v *view, w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	prefix := v.ch.Subject() + "."
	synced := false
	for e := range w.Updates() {
		if e == nil {
			synced = true
			close(v.synced)
			continue
		}
		client := strings.TrimPrefix(e.Key(), prefix)
		switch e.Operation() {
		case jetstream.KeyValuePut:
			var m Member
			if err := json.Unmarshal(e.Value(), &m); err != nil || m.Client != client {
				continue
			}
			if v.put(&m) && synced {
				p.metrics.PresenceJoins.Inc()
				p.onEvent(Event{Channel: v.ch, Join: true, Member: &m})
			}
		default: // delete, purge, or expired (limit marker)
			if m := v.remove(client); m != nil && synced {
				p.metrics.PresenceLeaves.Inc()
				p.onEvent(Event{Channel: v.ch, Join: false, Member: m})
			}
		}
	}
	v.mu.Lock()
	if !synced {
		v.err = fmt.Errorf("presence watch %s ended before it synced", v.ch)
		close(v.synced)
	}
	v.mu.Unlock()
}

// put adds or refreshes a member; it reports whether it is new.
func (v *view) put(m *Member) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	old, ok := v.members[m.Client]
	v.members[m.Client] = m
	if ok {
		if old.User != m.User {
			v.dropUser(old.User)
			v.users[m.User]++
		}
		return false
	}
	v.users[m.User]++
	return true
}

func (v *view) remove(client string) *Member {
	v.mu.Lock()
	defer v.mu.Unlock()
	m, ok := v.members[client]
	if !ok {
		return nil
	}
	delete(v.members, client)
	v.dropUser(m.User)
	return m
}

func (v *view) dropUser(u string) {
	if v.users[u]--; v.users[u] <= 0 {
		delete(v.users, u)
	}
}

// isSynced reports whether the initial values are in.
func (v *view) isSynced() bool {
	select {
	case <-v.synced:
		return true
	default:
		return false
	}
}

// ready waits for the view's initial values.
func (v *view) ready(ctx context.Context) error {
	select {
	case <-v.synced:
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.err
	case <-ctx.Done():
		return fmt.Errorf("presence of %s: %w", v.ch, ctx.Err())
	}
}

// Stats counts clients and unique users of ch.
func (p *Manager) Stats(ctx context.Context, ch channel.Channel) (clients, users int, err error) {
	v, err := p.view(ch, false)
	if err != nil {
		return 0, 0, err
	}
	if err := v.ready(ctx); err != nil {
		return 0, 0, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.members), len(v.users), nil
}

// Members lists ch's members ordered by client id, starting after cursor
// (""), at most limit of them (0: all); next is the cursor of the following
// page, "" at the end.
func (p *Manager) Members(ctx context.Context, ch channel.Channel, cursor string, limit int) (members []*Member, total int, next string, err error) {
	v, err := p.view(ch, false)
	if err != nil {
		return nil, 0, "", err
	}
	if err := v.ready(ctx); err != nil {
		return nil, 0, "", err
	}
	v.mu.Lock()
	total = len(v.members)
	ids := make([]string, 0, len(v.members))
	for id := range v.members {
		if id > cursor {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
		next = ids[limit-1]
	}
	members = make([]*Member, len(ids))
	for i, id := range ids {
		members[i] = v.members[id]
	}
	v.mu.Unlock()
	return members, total, next, nil
}

// Sweep stops watchers of channels nobody holds and nobody asked about for
// IdleView.
func (p *Manager) Sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, v := range p.views {
		if v.refs <= 0 && time.Since(v.lastUse) > p.cfg.IdleView {
			v.cancel()
			delete(p.views, name)
		}
	}
}

// Close stops every watcher.
func (p *Manager) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, v := range p.views {
		v.cancel()
		delete(p.views, name)
	}
}
