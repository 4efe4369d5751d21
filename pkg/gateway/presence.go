package gateway

import (
	"context"
	"net/http"

	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/presence"
	"github.com/pulseplatform/pulse/pkg/protocol"
)

// presenceEnabled reports whether ch tracks presence (-presence-channels).
func (g *Gateway) presenceEnabled(ch channel.Channel) bool {
	for _, p := range g.cfg.PresenceChannels {
		if channel.Match(p, ch.Name()) {
			return true
		}
	}
	return false
}

// onPresence turns a join or leave seen in the bucket into one push frame
// for every local subscriber of the channel.
func (g *Gateway) onPresence(ev presence.Event) {
	info := clientInfo(ev.Member)
	push := &protocol.Push{Channel: ev.Channel.Name()}
	if ev.Join {
		push.Join = &protocol.JoinLeave{Info: info}
	} else {
		push.Leave = &protocol.JoinLeave{Info: info}
	}
	frame, err := protocol.EncodeReply(&protocol.Reply{Push: push})
	if err != nil {
		g.log.Error("encode presence push", "err", err)
		return
	}
	g.hub.Push(ev.Channel.Name(), frame)
}

func clientInfo(m *presence.Member) *protocol.ClientInfo {
	return &protocol.ClientInfo{User: m.User, Client: m.Client, ConnInfo: protocol.Raw(m.ConnInfo), ChanInfo: protocol.Raw(m.ChanInfo)}
}

// presenceChannel checks a presence query: a valid channel the client may
// read, with presence enabled.
func (c *client) presenceChannel(id uint32, name string) (channel.Channel, *protocol.Reply) {
	ch, bad := c.parseChannel(id, name)
	if bad != nil {
		return ch, bad
	}
	if !c.canRead(ch) {
		c.refuse("permission_denied", ch.Name(), "presence")
		return ch, &protocol.Reply{ID: id, Error: protocol.ErrPermissionDenied}
	}
	if !c.g.presenceEnabled(ch) {
		return ch, &protocol.Reply{ID: id, Error: protocol.ErrNotAvailable.WithMessage("presence is not enabled for " + ch.Name())}
	}
	return ch, nil
}

func (c *client) presence(ctx context.Context, id uint32, name string) *protocol.Reply {
	ch, bad := c.presenceChannel(id, name)
	if bad != nil {
		return bad
	}
	members, total, _, err := c.g.presence.Members(ctx, ch, "", c.g.cfg.PresenceReplyLimit)
	if err != nil {
		c.log.Error("presence", "channel", ch.Name(), "err", err)
		return &protocol.Reply{ID: id, Error: protocol.ErrInternal}
	}
	if total > c.g.cfg.PresenceReplyLimit {
		return &protocol.Reply{ID: id, Error: protocol.ErrLimitExceeded.WithMessage(
			"too many members for one reply (-presence-reply-limit); use presence_stats, or /api/presence with a cursor")}
	}
	res := &protocol.PresenceResult{Presence: make(map[string]*protocol.ClientInfo, len(members))}
	for _, m := range members {
		res.Presence[m.Client] = clientInfo(m)
	}
	return &protocol.Reply{ID: id, Presence: res}
}

func (c *client) presenceStats(ctx context.Context, id uint32, name string) *protocol.Reply {
	ch, bad := c.presenceChannel(id, name)
	if bad != nil {
		return bad
	}
	clients, users, err := c.g.presence.Stats(ctx, ch)
	if err != nil {
		c.log.Error("presence_stats", "channel", ch.Name(), "err", err)
		return &protocol.Reply{ID: id, Error: protocol.ErrInternal}
	}
	return &protocol.Reply{ID: id, PresenceStats: &protocol.PresenceStatsResult{NumClients: uint32(clients), NumUsers: uint32(users)}}
}

type apiPresenceRequest struct {
	Channel string `json:"channel"`
	Cursor  string `json:"cursor,omitempty"` // client id to continue after
	Limit   int    `json:"limit,omitempty"`
}

// apiPresence lists members, paginated by client id.
func (g *Gateway) apiPresence(w http.ResponseWriter, r *http.Request) {
	var req apiPresenceRequest
	if e := g.decodeAPI(r, &req); e != nil {
		g.apiFail(w, "presence", *e)
		return
	}
	ch, perr := g.apiPresenceChannel(req.Channel)
	if perr != nil {
		g.apiFail(w, "presence", *perr)
		return
	}
	limit := req.Limit
	if limit <= 0 || limit > g.cfg.PresenceReplyLimit {
		limit = g.cfg.PresenceReplyLimit
	}
	members, total, next, err := g.presence.Members(r.Context(), ch, req.Cursor, limit)
	if err != nil {
		g.apiFail(w, "presence", apiError{http.StatusServiceUnavailable, protocol.ErrInternal})
		return
	}
	out := make(map[string]*protocol.ClientInfo, len(members))
	for _, m := range members {
		out[m.Client] = clientInfo(m)
	}
	g.writeAPI(w, "presence", http.StatusOK, map[string]any{"result": map[string]any{
		"presence": out, "total": total, "next_cursor": next}})
}

func (g *Gateway) apiPresenceStats(w http.ResponseWriter, r *http.Request) {
	var req apiPresenceRequest
	if e := g.decodeAPI(r, &req); e != nil {
		g.apiFail(w, "presence_stats", *e)
		return
	}
	ch, perr := g.apiPresenceChannel(req.Channel)
	if perr != nil {
		g.apiFail(w, "presence_stats", *perr)
		return
	}
	clients, users, err := g.presence.Stats(r.Context(), ch)
	if err != nil {
		g.apiFail(w, "presence_stats", apiError{http.StatusServiceUnavailable, protocol.ErrInternal})
		return
	}
	g.writeAPI(w, "presence_stats", http.StatusOK, map[string]any{"result": protocol.PresenceStatsResult{
		NumClients: uint32(clients), NumUsers: uint32(users)}})
}

func (g *Gateway) apiPresenceChannel(name string) (channel.Channel, *apiError) {
	ch, perr := parseAPIChannel(name)
	if perr != nil {
		return ch, perr
	}
	if !g.presenceEnabled(ch) {
		return ch, &apiError{http.StatusBadRequest, protocol.ErrNotAvailable.WithMessage("presence is not enabled for " + ch.Name())}
	}
	return ch, nil
}
