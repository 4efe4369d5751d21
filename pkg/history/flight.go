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
	subject     string
	after, upTo uint64
	max         int
}

type flightCall struct {
	done chan struct{}
	msgs []*Msg
	more bool
	err  error
}

// do returns fn's result for key, running fn only if no identical call is in
// flight. shared reports whether the result came from another caller's read.
func (g *flightGroup) do(ctx context.Context, key flightKey, fn func() ([]*Msg, bool, error)) (msgs []*Msg, more, shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[flightKey]*flightCall)
	}
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.msgs, c.more, true, c.err
		case <-ctx.Done():
			return nil, false, true, ctx.Err()
		}
	}
	c := &flightCall{done: make(chan struct{})}
	g.calls[key] = c
	g.mu.Unlock()

	c.msgs, c.more, c.err = fn()
	g.mu.Lock()
	delete(g.calls, key)
	g.mu.Unlock()
	close(c.done)
	return c.msgs, c.more, false, c.err
}
