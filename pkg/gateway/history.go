package gateway

import (
	"context"
	"errors"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/history"
	"github.com/pulseplatform/pulse/pkg/protocol"
)

// canRead reports whether the client may read ch's history and presence:
// the same rule as subscribe, or a live subscription granted by a
// subscription token.
func (c *client) canRead(ch channel.Channel) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.claims.CanSubscribe(ch) {
		return true
	}
	s, ok := c.subs[ch.Name()]
	return ok && s.viaToken
}

// history answers the history command.
func (c *client) history(ctx context.Context, id uint32, req *protocol.HistoryRequest) *protocol.Reply {
	ch, bad := c.parseChannel(id, req.Channel)
	if bad != nil {
		return bad
	}
	if !c.canRead(ch) {
		c.refuse("permission_denied", ch.Name(), "history")
		return &protocol.Reply{ID: id, Error: protocol.ErrPermissionDenied}
	}
	res, perr := c.g.readHistory(ctx, ch, req)
	if perr != nil {
		return &protocol.Reply{ID: id, Error: perr}
	}
	return &protocol.Reply{ID: id, History: res}
}

// readHistory serves the history command and POST /api/history alike.
// limit follows Centrifugo: 0 only the position, -1 (or anything above the
// cap) as many as the cap allows.
func (g *Gateway) readHistory(ctx context.Context, ch channel.Channel, req *protocol.HistoryRequest) (*protocol.HistoryResult, *protocol.Error) {
	limit := int(req.Limit)
	if limit < 0 || limit > g.cfg.HistoryLimit {
		limit = g.cfg.HistoryLimit
	}
	var since *uint64
	var sinceEpoch string
	if req.Since != nil {
		off := req.Since.Offset
		since, sinceEpoch = &off, req.Since.Epoch
	}
	page, err := g.reader.History(ctx, ch, limit, since, sinceEpoch, req.Reverse)
	switch {
	case errors.Is(err, history.ErrEpochMismatch):
		return nil, protocol.ErrUnrecoverablePosition
	case errors.Is(err, history.ErrReverseSince):
		return nil, protocol.ErrBadRequest.WithMessage(err.Error())
	case err != nil:
		g.log.Error("history", "channel", ch.Name(), "err", err)
		return nil, protocol.ErrInternal
	}
	return &protocol.HistoryResult{Publications: publications(page.Msgs), Epoch: page.Epoch, Offset: page.Top}, nil
}
