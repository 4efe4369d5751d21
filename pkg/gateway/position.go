package gateway

import (
	"context"

	"github.com/pulseplatform/pulse/pkg/history"
	"github.com/pulseplatform/pulse/pkg/hub"
	"github.com/pulseplatform/pulse/pkg/presence"
	"github.com/pulseplatform/pulse/pkg/protocol"
	"github.com/pulseplatform/pulse/pkg/publication"
)

// attach joins s to its channel's live fan-out and prepares the subscribe
// result: the channel's epoch and offset for positioned subscriptions, and
// what the client missed when it asks to recover. Live publications stay
// held in s until the caller releases it with the returned floor. On a
// protocol error s is already detached.
func (c *client) attach(ctx context.Context, s *subscription, req *protocol.SubscribeRequest) (*protocol.SubscribeResult, uint64, *protocol.Error) {
	if req == nil {
		req = &protocol.SubscribeRequest{}
	}
	res, floor, perr := c.attachLive(ctx, s, req)
	if perr != nil || !c.g.presenceEnabled(s.ch) {
		return res, floor, perr
	}
	s.joinLeave = req.JoinLeave || c.g.cfg.PresenceJoinLeave
	if err := c.g.presence.Acquire(s.ch); err != nil {
		c.log.Error("presence watch", "channel", s.ch.Name(), "err", err)
		c.g.hub.Unsubscribe(s.ch.Name(), s)
		return nil, 0, protocol.ErrInternal
	}
	s.presence = true
	c.mu.Lock()
	m := &presence.Member{Client: c.id, User: c.claims.Subject, ConnInfo: c.claims.Info, ChanInfo: s.chanInfo}
	c.mu.Unlock()
	if err := c.g.presence.Join(ctx, s.ch, m); err != nil {
		c.log.Error("presence join", "channel", s.ch.Name(), "err", err)
		s.presence = false
		c.g.presence.Release(s.ch)
		c.g.hub.Unsubscribe(s.ch.Name(), s)
		return nil, 0, protocol.ErrInternal
	}
	return res, floor, nil
}

// attachLive joins the live fan-out and recovers; see attach.
func (c *client) attachLive(ctx context.Context, s *subscription, req *protocol.SubscribeRequest) (*protocol.SubscribeResult, uint64, *protocol.Error) {
	recoverable := req.Recoverable || c.g.cfg.ForceRecovery[s.ch.Namespace()]
	s.positioned = recoverable || req.Positioned

	var live uint64 // the channel's delivered position when s joined
	// A client that dropped moments ago recovers from the publications the
	// hub still holds: no stream read, however many recover at once.
	var fromMemory []*protocol.Publication
	inMemory := false
	var epoch string // the stream's current epoch, checked at most a second ago
	if req.Recover && recoverable {
		if e, err := c.g.reader.FreshEpoch(ctx, s.ch); err == nil {
			epoch = e
		}
	}
	if err := c.g.hub.Subscribe(ctx, s.ch, s, func(last uint64, w hub.Window) {
		live = last
		if epoch != "" && req.Epoch == epoch && w.Epoch() == epoch {
			fromMemory, inMemory = w.Since(req.Offset, c.g.cfg.RecoveryLimit)
		}
	}); err != nil {
		c.log.Error("subscribe", "channel", s.ch.Name(), "err", err)
		return nil, 0, protocol.ErrInternal
	}
	res := &protocol.SubscribeResult{}
	if s.positioned {
		res.Positioned = true
		res.Recoverable = recoverable
		res.Epoch = c.g.reader.Epoch(s.ch)
		res.Offset = live
	}
	if !req.Recover || !recoverable {
		return res, live, nil
	}

	res.WasRecovering = true
	pubs := fromMemory
	if inMemory {
		c.g.metrics.RecoveriesFromMemory.Inc()
	} else {
		rec, err := c.g.reader.Recover(ctx, s.ch, req.Epoch, req.Offset, live, c.g.cfg.RecoveryLimit)
		if err != nil {
			// Storage trouble is temporary: the SDK retries the subscription
			// and recovers then, rather than losing its position now.
			c.log.Error("recovery read", "channel", s.ch.Name(), "err", err)
			c.g.hub.Unsubscribe(s.ch.Name(), s)
			return nil, 0, protocol.ErrInternal
		}
		if !rec.Recovered {
			if e := c.g.reader.Epoch(s.ch); e != res.Epoch {
				// The recovery read found the stream recreated: the reply must
				// carry the new epoch, and live positions must be reset.
				res.Epoch = e
				c.g.hub.RequestReconcile("epoch_changed")
			}
			c.log.Info("not recovered", "channel", s.ch.Name(), "user", c.user(), "reason", rec.Reason,
				"client_offset", req.Offset, "top", live)
			if req.Flag&protocol.SubFlagRejectUnrecovered != 0 {
				c.g.metrics.Recoveries.WithLabelValues("rejected").Inc()
				c.g.hub.Unsubscribe(s.ch.Name(), s)
				return nil, 0, protocol.ErrUnrecoverablePosition
			}
			c.g.metrics.Recoveries.WithLabelValues("not_recovered").Inc()
			return res, live, nil
		}
		pubs = publications(rec.Msgs)
	}
	c.g.metrics.Recoveries.WithLabelValues("recovered").Inc()
	res.Recovered = true
	res.Publications = pubs
	// As Centrifugo: the reply carries the client's own offset, and the SDK
	// advances it with the publications. (From memory, the offset is at or
	// below live.)
	res.Offset = req.Offset
	return res, max(live, req.Offset), nil
}

// publications converts stored messages for a reply.
func publications(msgs []*history.Msg) []*protocol.Publication {
	out := make([]*protocol.Publication, len(msgs))
	for i, m := range msgs {
		out[i] = publication.FromNATS(m.Data, m.Header, m.Sequence)
	}
	return out
}
