package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/pulseplatform/pulse/pkg/auth"
	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/protocol"
)

// commandTimeout bounds the NATS work one command may do.
const commandTimeout = 10 * time.Second

// handle runs one command and queues its reply. A non-nil result closes the
// connection with that code (after queued replies are written).
func (c *client) handle(cmd *protocol.Command) *protocol.Disconnect {
	if cmd.IsPong() {
		return c.pong()
	}
	c.mu.Lock()
	connected := c.connected
	c.mu.Unlock()
	if !connected {
		if cmd.Connect == nil {
			return &protocol.DisconnectBadRequest
		}
		c.g.metrics.Commands.WithLabelValues("connect").Inc()
		return c.connect(cmd.ID, cmd.Connect)
	}
	if cmd.Connect != nil {
		return &protocol.DisconnectBadRequest // a second connect
	}
	if !c.limiter.Allow() {
		c.refuse("rate_limit", "", "")
		c.reply(&protocol.Reply{ID: cmd.ID, Error: protocol.ErrTooManyRequests})
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, commandTimeout)
	defer cancel()
	var (
		reply  *protocol.Reply
		d      *protocol.Disconnect
		method string
	)
	switch {
	case cmd.Subscribe != nil:
		method = "subscribe"
		reply, d = c.subscribe(ctx, cmd.ID, cmd.Subscribe)
	case cmd.Unsubscribe != nil:
		method = "unsubscribe"
		reply = c.unsubscribe(cmd.ID, cmd.Unsubscribe)
	case cmd.Publish != nil:
		method = "publish"
		reply = c.publish(ctx, cmd.ID, cmd.Publish)
	case cmd.Refresh != nil:
		method = "refresh"
		reply, d = c.refresh(ctx, cmd.ID, cmd.Refresh)
	case cmd.SubRefresh != nil:
		method = "sub_refresh"
		reply, d = c.subRefresh(ctx, cmd.ID, cmd.SubRefresh)
	case cmd.History != nil:
		method = "history"
		reply = c.history(ctx, cmd.ID, cmd.History)
	case cmd.Presence != nil:
		method = "presence"
		reply = c.presence(ctx, cmd.ID, cmd.Presence.Channel)
	case cmd.PresenceStats != nil:
		method = "presence_stats"
		reply = c.presenceStats(ctx, cmd.ID, cmd.PresenceStats.Channel)
	case cmd.RPC != nil:
		method = "rpc"
		reply = &protocol.Reply{ID: cmd.ID, Error: protocol.ErrMethodNotFound.WithMessage("Pulse has no RPC methods")}
	case cmd.Send != nil:
		method = "send"
		d = &protocol.DisconnectNotAvailable // no send handler, as Centrifugo OSS
	default:
		// Includes {"id":N,"ping":{}}: not a v2 command (reference §1.5).
		method = "unknown"
		d = &protocol.DisconnectBadRequest
	}
	c.g.metrics.Commands.WithLabelValues(method).Inc()
	if reply != nil {
		c.reply(reply)
	}
	return d
}

func (c *client) reply(r *protocol.Reply) {
	b, err := protocol.EncodeReply(r)
	if err != nil {
		c.log.Error("encode reply", "err", err)
		return
	}
	c.enqueue(b)
}

func (c *client) encode(r *protocol.Reply) []byte {
	b, err := protocol.EncodeReply(r)
	if err != nil {
		c.log.Error("encode reply", "err", err)
		b, _ = protocol.EncodeReply(&protocol.Reply{ID: r.ID, Error: protocol.ErrInternal})
	}
	return b
}

// refuse logs and counts a refusal with who and what.
func (c *client) refuse(reason, ch, detail string) {
	c.g.metrics.Refusals.WithLabelValues(reason).Inc()
	c.mu.Lock()
	var user, tenant string
	if c.claims != nil {
		user, tenant = c.claims.Subject, c.claims.Tenant
	}
	c.mu.Unlock()
	c.log.Info("refused", "reason", reason, "user", user, "tenant", tenant, "channel", ch, "detail", detail)
}

func (c *client) connect(id uint32, req *protocol.ConnectRequest) *protocol.Disconnect {
	if req.Token == "" {
		c.refuse("no_token", "", "connect without token")
		return &protocol.DisconnectBadRequest
	}
	claims, err := c.g.verifier.VerifyConnect(c.ctx, req.Token)
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		c.refuse("token_expired", "", err.Error())
		c.release(c.encode(&protocol.Reply{ID: id, Error: protocol.ErrTokenExpired}))
		return nil
	case err != nil:
		c.refuse("invalid_token", "", err.Error())
		return &protocol.DisconnectInvalidToken
	}

	// Server-side subscriptions from the channels claim: only valid channels
	// the token's owner may read; never a way around tenant isolation.
	var serverSubs []channel.Channel
	for _, name := range claims.Channels {
		ch, err := channel.Parse(name)
		if err != nil {
			c.refuse("bad_channel", name, err.Error())
			continue
		}
		if !claims.CanSubscribe(ch) {
			c.refuse("permission_denied", name, "server-side subscription")
			continue
		}
		serverSubs = append(serverSubs, ch)
	}
	if len(serverSubs) > c.g.cfg.Limits.MaxChannelsPerClient {
		c.refuse("channel_limit", "", "channels claim")
		return &protocol.DisconnectChannelLimit
	}

	c.mu.Lock()
	c.claims = claims
	c.connected = true
	c.mu.Unlock()
	c.g.metrics.Connections.Inc()
	c.g.addUser(claims.Subject)

	res := &protocol.ConnectResult{
		Client:  c.id,
		Version: c.g.cfg.Version,
		Ping:    uint32(c.g.cfg.PingInterval / time.Second),
		Pong:    true,
		Node:    c.g.nodeID,
	}
	if !claims.ExpiresAt.IsZero() {
		res.Expires, res.TTL = true, ttlSeconds(claims.ExpiresAt)
		c.armConnExpiry(claims.ExpiresAt)
	}
	ctx, cancel := context.WithTimeout(c.ctx, commandTimeout)
	defer cancel()
	// The writer is held until the connect reply is released, and each
	// server-side subscription holds its live publications until after it.
	var attached []*subscription
	for _, ch := range serverSubs {
		s := newSubscription(c, ch)
		s.serverSide = true
		c.mu.Lock()
		c.subs[ch.Name()] = s
		c.mu.Unlock()
		sres, floor, perr := c.attach(ctx, s, req.Subs[ch.Name()])
		if perr != nil {
			c.mu.Lock()
			delete(c.subs, ch.Name())
			c.mu.Unlock()
			for _, a := range attached {
				a.release(nil, a.floor)
			}
			return &protocol.DisconnectInternal
		}
		s.floor = floor
		attached = append(attached, s)
		c.g.metrics.Subscriptions.Inc()
		if res.Subs == nil {
			res.Subs = make(map[string]*protocol.SubscribeResult)
		}
		res.Subs[ch.Name()] = sres
	}
	c.release(c.encode(&protocol.Reply{ID: id, Connect: res}))
	for _, s := range attached {
		s.release(nil, s.floor)
	}
	c.startPings()
	c.log.Debug("connected", "user", claims.Subject, "tenant", claims.Tenant)
	return nil
}

func (c *client) armConnExpiry(exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expTimer != nil {
		c.expTimer.Stop()
	}
	c.expTimer = time.AfterFunc(time.Until(exp)+c.g.cfg.ExpiryGrace, func() {
		c.mu.Lock()
		expired := c.claims != nil && !c.claims.ExpiresAt.IsZero() && time.Now().After(c.claims.ExpiresAt)
		c.mu.Unlock()
		if expired {
			c.refuse("connection_expired", "", "no refresh within grace")
			c.disconnect(protocol.DisconnectExpired, true)
		}
	})
}

// parseChannel validates a channel from a command; the error reply says why.
func (c *client) parseChannel(id uint32, name string) (channel.Channel, *protocol.Reply) {
	ch, err := channel.Parse(name)
	if err == nil {
		return ch, nil
	}
	c.refuse("bad_channel", name, err.Error())
	return channel.Channel{}, &protocol.Reply{ID: id, Error: channelError(err)}
}

// channelError is the protocol error for a channel name channel.Parse
// refused: 102 for an unknown namespace, 107 for anything else, with why.
func channelError(err error) *protocol.Error {
	base := protocol.ErrBadRequest
	if errors.Is(err, channel.ErrUnknownNamespace) {
		base = protocol.ErrUnknownChannel
	}
	return base.WithMessage(err.Error())
}

func (c *client) subscribe(ctx context.Context, id uint32, req *protocol.SubscribeRequest) (*protocol.Reply, *protocol.Disconnect) {
	ch, bad := c.parseChannel(id, req.Channel)
	if bad != nil {
		return bad, nil
	}
	c.mu.Lock()
	existing, already := c.subs[ch.Name()]
	c.mu.Unlock()
	if already && existing.dead.Load() {
		// Told to resubscribe (2500) and doing so before the old
		// subscription was dropped in the background.
		c.dropSubscription(existing)
		already = false
	}
	c.mu.Lock()
	n := len(c.subs)
	claims := c.claims
	c.mu.Unlock()
	if already {
		return &protocol.Reply{ID: id, Error: protocol.ErrAlreadySubscribed}, nil
	}
	if n >= c.g.cfg.Limits.MaxChannelsPerClient {
		c.refuse("channel_limit", ch.Name(), "")
		return &protocol.Reply{ID: id, Error: protocol.ErrLimitExceeded.WithMessage("too many channels on this connection")}, nil
	}
	s := newSubscription(c, ch)
	if req.Token != "" {
		sc, err := c.g.verifier.VerifySubscribe(ctx, req.Token)
		switch {
		case errors.Is(err, auth.ErrTokenExpired):
			c.refuse("token_expired", ch.Name(), "subscription token")
			return &protocol.Reply{ID: id, Error: protocol.ErrTokenExpired}, nil
		case err != nil:
			c.refuse("invalid_token", ch.Name(), err.Error())
			return nil, &protocol.DisconnectInvalidToken
		case sc.Channel != ch.Name() || sc.Subject != claims.Subject || (sc.Client != "" && sc.Client != c.id):
			c.refuse("invalid_token", ch.Name(), "subscription token for another channel, user or client")
			return nil, &protocol.DisconnectInvalidToken
		}
		s.expiresAt = sc.ExpiresAt
		s.viaToken = true
		s.chanInfo = sc.Info
	} else if !claims.CanSubscribe(ch) {
		c.refuse("permission_denied", ch.Name(), "subscribe")
		return &protocol.Reply{ID: id, Error: protocol.ErrPermissionDenied}, nil
	}

	c.mu.Lock()
	c.subs[ch.Name()] = s
	c.mu.Unlock()
	res, floor, perr := c.attach(ctx, s, req)
	if perr != nil {
		c.mu.Lock()
		delete(c.subs, ch.Name())
		c.mu.Unlock()
		return &protocol.Reply{ID: id, Error: perr}, nil
	}
	if !s.expiresAt.IsZero() {
		res.Expires, res.TTL = true, ttlSeconds(s.expiresAt)
	}
	c.g.metrics.Subscriptions.Inc()
	// The reply goes out before any live publication of the channel, and
	// those the reply already carried are skipped.
	s.release(c.encode(&protocol.Reply{ID: id, Subscribe: res}), floor)
	if !s.expiresAt.IsZero() {
		c.armSubExpiry(s)
	}
	return nil, nil
}

func (c *client) armSubExpiry(s *subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.expTimer != nil {
		s.expTimer.Stop()
	}
	name := s.ch.Name()
	s.expTimer = time.AfterFunc(time.Until(s.expiresAt)+c.g.cfg.ExpiryGrace, func() {
		c.mu.Lock()
		cur, ok := c.subs[name]
		expired := ok && cur == s && time.Now().After(s.expiresAt)
		if expired {
			delete(c.subs, name)
		}
		c.mu.Unlock()
		if !expired {
			return
		}
		c.refuse("subscription_expired", name, "no sub_refresh within grace")
		c.detach(s)
		c.reply(&protocol.Reply{Push: &protocol.Push{Channel: name,
			Unsubscribe: &protocol.UnsubscribePush{Code: protocol.UnsubscribeExpired, Reason: "subscription expired"}}})
	})
}

func (c *client) unsubscribe(id uint32, req *protocol.UnsubscribeRequest) *protocol.Reply {
	c.mu.Lock()
	s, ok := c.subs[req.Channel]
	c.mu.Unlock()
	if ok {
		c.dropSubscription(s)
	}
	return &protocol.Reply{ID: id, Unsubscribe: &protocol.Empty{}}
}

func (c *client) publish(ctx context.Context, id uint32, req *protocol.PublishRequest) *protocol.Reply {
	ch, bad := c.parseChannel(id, req.Channel)
	if bad != nil {
		return bad
	}
	c.mu.Lock()
	claims := c.claims
	c.mu.Unlock()
	if !claims.CanPublish(ch) {
		c.refuse("permission_denied", ch.Name(), "publish")
		return &protocol.Reply{ID: id, Error: protocol.ErrPermissionDenied}
	}
	if len(req.Data) == 0 {
		return &protocol.Reply{ID: id, Error: protocol.ErrBadRequest.WithMessage("publish needs data")}
	}
	info := &protocol.ClientInfo{User: claims.Subject, Client: c.id, ConnInfo: protocol.Raw(claims.Info)}
	if _, err := c.g.publish(ctx, ch, req.Data, publishOptions{info: info}); err != nil {
		c.log.Error("publish", "channel", ch.Name(), "err", err)
		return &protocol.Reply{ID: id, Error: protocol.ErrInternal}
	}
	return &protocol.Reply{ID: id, Publish: &protocol.Empty{}}
}

func (c *client) refresh(ctx context.Context, id uint32, req *protocol.RefreshRequest) (*protocol.Reply, *protocol.Disconnect) {
	claims, err := c.g.verifier.VerifyConnect(ctx, req.Token)
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		c.refuse("token_expired", "", "refresh")
		return nil, &protocol.DisconnectExpired
	case err != nil:
		c.refuse("invalid_token", "", "refresh: "+err.Error())
		return nil, &protocol.DisconnectInvalidToken
	}
	c.mu.Lock()
	same := claims.Subject == c.claims.Subject
	if same {
		c.claims = claims
	}
	c.mu.Unlock()
	if !same {
		c.refuse("invalid_token", "", "refresh token for another user")
		return nil, &protocol.DisconnectInvalidToken
	}
	res := &protocol.RefreshResult{Client: c.id, Version: c.g.cfg.Version}
	if !claims.ExpiresAt.IsZero() {
		res.Expires, res.TTL = true, ttlSeconds(claims.ExpiresAt)
		c.armConnExpiry(claims.ExpiresAt)
	} else {
		c.mu.Lock()
		if c.expTimer != nil {
			c.expTimer.Stop()
		}
		c.mu.Unlock()
	}
	return &protocol.Reply{ID: id, Refresh: res}, nil
}

func (c *client) subRefresh(ctx context.Context, id uint32, req *protocol.SubRefreshRequest) (*protocol.Reply, *protocol.Disconnect) {
	c.mu.Lock()
	s, ok := c.subs[req.Channel]
	user := c.claims.Subject
	c.mu.Unlock()
	if !ok {
		return &protocol.Reply{ID: id, Error: protocol.ErrBadRequest.WithMessage("not subscribed to " + req.Channel)}, nil
	}
	sc, err := c.g.verifier.VerifySubscribe(ctx, req.Token)
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		c.refuse("token_expired", req.Channel, "sub_refresh")
		return &protocol.Reply{ID: id, Error: protocol.ErrTokenExpired}, nil
	case err != nil:
		c.refuse("invalid_token", req.Channel, "sub_refresh: "+err.Error())
		return nil, &protocol.DisconnectInvalidToken
	case sc.Channel != req.Channel || sc.Subject != user || (sc.Client != "" && sc.Client != c.id):
		c.refuse("invalid_token", req.Channel, "sub_refresh token for another channel, user or client")
		return nil, &protocol.DisconnectInvalidToken
	}
	c.mu.Lock()
	s.expiresAt = sc.ExpiresAt
	c.mu.Unlock()
	res := &protocol.SubRefreshResult{}
	if !sc.ExpiresAt.IsZero() {
		res.Expires, res.TTL = true, ttlSeconds(sc.ExpiresAt)
		c.armSubExpiry(s)
	} else if s.expTimer != nil {
		s.expTimer.Stop()
	}
	return &protocol.Reply{ID: id, SubRefresh: res}, nil
}
