package history

import (
	"context"
	"sync"
)

// flightGroup runs one read per key at a time and shares its result with
// every caller that asks for the same key meanwhile: after a rolling update
// thousands of clients recover the same channel from the same offset, and
// one stream read serves them all.
type flightGroup struct {
	mu    sync.Mutex
	calls map[flightKey]*flightCall
}

type flightKey struct {
	subject string
	after   uint64
	max     int
}

type flightCall struct {
	done chan struct{}
	msgs []*Msg
	more bool
	err  error
}

// do returns fn's result for key, running fn only if no identical call is in
// flight. shared reports whether the result came from another caller's read.
// fn runs on its own: every caller, the first included, stops waiting when
// its ctx ends, and the read goes on for the others.
func (g *flightGroup) do(ctx context.Context, key flightKey, fn func() ([]*Msg, bool, error)) (msgs []*Msg, more, shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[flightKey]*flightCall)
	}
	c, shared := g.calls[key]
	if !shared {
		c = &flightCall{done: make(chan struct{})}
		g.calls[key] = c
		go func() {
			c.msgs, c.more, c.err = fn()
			g.mu.Lock()
			delete(g.calls, key)
			g.mu.Unlock()
			close(c.done)
		}()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.msgs, c.more, shared, c.err
	case <-ctx.Done():
		return nil, false, shared, ctx.Err()
	}
}
