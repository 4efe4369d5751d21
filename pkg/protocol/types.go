// Package protocol holds the Centrifugo client protocol v2 JSON wire types,
// framing, and the error and disconnect codes (reference: shared
// centrifugo-protocol.md).
//
// It is pure: no network, no NATS. It must never emit a frame that breaks the
// newline framing, so every raw payload goes through Raw.
package protocol

import "encoding/json"

// Command is one client command. Exactly one request field is set; like
// Centrifugo, the first non-nil one wins.
type Command struct {
	ID            uint32              `json:"id,omitempty"`
	Connect       *ConnectRequest     `json:"connect,omitempty"`
	Subscribe     *SubscribeRequest   `json:"subscribe,omitempty"`
	Unsubscribe   *UnsubscribeRequest `json:"unsubscribe,omitempty"`
	Publish       *PublishRequest     `json:"publish,omitempty"`
	Presence      *ChannelRequest     `json:"presence,omitempty"`
	PresenceStats *ChannelRequest     `json:"presence_stats,omitempty"`
	History       *HistoryRequest     `json:"history,omitempty"`
	Ping          *struct{}           `json:"ping,omitempty"`
	Send          *SendRequest        `json:"send,omitempty"`
	RPC           *RPCRequest         `json:"rpc,omitempty"`
	Refresh       *RefreshRequest     `json:"refresh,omitempty"`
	SubRefresh    *SubRefreshRequest  `json:"sub_refresh,omitempty"`
}

// IsPong reports whether the command is a v2 pong: id 0 and no send.
func (c *Command) IsPong() bool { return c.ID == 0 && c.Send == nil }

// ConnectRequest is the first command of a connection.
type ConnectRequest struct {
	Token   string                       `json:"token,omitempty"`
	Data    json.RawMessage              `json:"data,omitempty"`
	Subs    map[string]*SubscribeRequest `json:"subs,omitempty"`
	Name    string                       `json:"name,omitempty"`
	Version string                       `json:"version,omitempty"`
	Headers map[string]string            `json:"headers,omitempty"`
	Flag    int64                        `json:"flag,omitempty"`
}

// ConnectResult answers a ConnectRequest.
type ConnectResult struct {
	Client  string                      `json:"client"`
	Version string                      `json:"version,omitempty"`
	Expires bool                        `json:"expires,omitempty"`
	TTL     uint32                      `json:"ttl,omitempty"`
	Data    Raw                         `json:"data,omitempty"`
	Subs    map[string]*SubscribeResult `json:"subs,omitempty"`
	Ping    uint32                      `json:"ping,omitempty"`
	Pong    bool                        `json:"pong,omitempty"`
	Session string                      `json:"session,omitempty"`
	Node    string                      `json:"node,omitempty"`
}

// SubscribeRequest asks for a channel subscription.
type SubscribeRequest struct {
	Channel     string          `json:"channel"`
	Token       string          `json:"token,omitempty"`
	Recover     bool            `json:"recover,omitempty"`
	Epoch       string          `json:"epoch,omitempty"`
	Offset      uint64          `json:"offset,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	Positioned  bool            `json:"positioned,omitempty"`
	Recoverable bool            `json:"recoverable,omitempty"`
	JoinLeave   bool            `json:"join_leave,omitempty"`
	Delta       string          `json:"delta,omitempty"`
	Flag        int64           `json:"flag,omitempty"`
}

// Subscribe flag bits sent by SDKs.
const (
	SubFlagChannelCompaction int64 = 1
	SubFlagRejectUnrecovered int64 = 2
)

// SubscribeResult answers a SubscribeRequest (and describes server-side subs).
type SubscribeResult struct {
	Expires       bool           `json:"expires,omitempty"`
	TTL           uint32         `json:"ttl,omitempty"`
	Recoverable   bool           `json:"recoverable,omitempty"`
	Epoch         string         `json:"epoch,omitempty"`
	Publications  []*Publication `json:"publications,omitempty"`
	Recovered     bool           `json:"recovered,omitempty"`
	Offset        uint64         `json:"offset,omitempty"`
	Positioned    bool           `json:"positioned,omitempty"`
	Data          Raw            `json:"data,omitempty"`
	WasRecovering bool           `json:"was_recovering,omitempty"`
}

// UnsubscribeRequest ends a subscription.
type UnsubscribeRequest struct {
	Channel string `json:"channel"`
}

// PublishRequest is a client-side publish.
type PublishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// ChannelRequest is the body of presence and presence_stats.
type ChannelRequest struct {
	Channel string `json:"channel"`
}

// StreamPosition is a position in a channel's history.
type StreamPosition struct {
	Offset uint64 `json:"offset,omitempty"`
	Epoch  string `json:"epoch,omitempty"`
}

// HistoryRequest reads a channel's history.
type HistoryRequest struct {
	Channel string          `json:"channel"`
	Limit   int32           `json:"limit,omitempty"`
	Since   *StreamPosition `json:"since,omitempty"`
	Reverse bool            `json:"reverse,omitempty"`
}

// HistoryResult answers a HistoryRequest; its three fields are always present.
type HistoryResult struct {
	Publications []*Publication `json:"publications"`
	Epoch        string         `json:"epoch"`
	Offset       uint64         `json:"offset"`
}

// SendRequest is an asynchronous message to the server (no reply).
type SendRequest struct {
	Data json.RawMessage `json:"data"`
}

// RPCRequest is a client RPC.
type RPCRequest struct {
	Data   json.RawMessage `json:"data"`
	Method string          `json:"method,omitempty"`
}

// RefreshRequest carries a new connection token.
type RefreshRequest struct {
	Token string `json:"token"`
}

// RefreshResult answers a RefreshRequest.
type RefreshResult struct {
	Client  string `json:"client"`
	Version string `json:"version,omitempty"`
	Expires bool   `json:"expires,omitempty"`
	TTL     uint32 `json:"ttl,omitempty"`
}

// SubRefreshRequest carries a new subscription token.
type SubRefreshRequest struct {
	Channel string `json:"channel"`
	Token   string `json:"token"`
}

// SubRefreshResult answers a SubRefreshRequest.
type SubRefreshResult struct {
	Expires bool   `json:"expires,omitempty"`
	TTL     uint32 `json:"ttl,omitempty"`
}

// ClientInfo describes a connection in publications and presence.
type ClientInfo struct {
	User     string `json:"user"`
	Client   string `json:"client"`
	ConnInfo Raw    `json:"conn_info,omitempty"`
	ChanInfo Raw    `json:"chan_info,omitempty"`
}

// Publication is one event in a channel.
type Publication struct {
	Data   Raw               `json:"data"`
	Info   *ClientInfo       `json:"info,omitempty"`
	Offset uint64            `json:"offset,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
	Time   int64             `json:"time,omitempty"`
}

// PresenceResult answers presence.
type PresenceResult struct {
	Presence map[string]*ClientInfo `json:"presence"`
}

// PresenceStatsResult answers presence_stats.
type PresenceStatsResult struct {
	NumClients uint32 `json:"num_clients"`
	NumUsers   uint32 `json:"num_users"`
}

// Empty is the result of commands that return nothing ({}).
type Empty struct{}

// Reply is one server frame line: a command reply, a push, or (all empty) a ping.
type Reply struct {
	ID            uint32               `json:"id,omitempty"`
	Error         *Error               `json:"error,omitempty"`
	Push          *Push                `json:"push,omitempty"`
	Connect       *ConnectResult       `json:"connect,omitempty"`
	Subscribe     *SubscribeResult     `json:"subscribe,omitempty"`
	Unsubscribe   *Empty               `json:"unsubscribe,omitempty"`
	Publish       *Empty               `json:"publish,omitempty"`
	Presence      *PresenceResult      `json:"presence,omitempty"`
	PresenceStats *PresenceStatsResult `json:"presence_stats,omitempty"`
	History       *HistoryResult       `json:"history,omitempty"`
	RPC           *struct{}            `json:"rpc,omitempty"`
	Refresh       *RefreshResult       `json:"refresh,omitempty"`
	SubRefresh    *SubRefreshResult    `json:"sub_refresh,omitempty"`
}

// Push is an asynchronous server message about a channel.
type Push struct {
	Channel     string           `json:"channel,omitempty"`
	Pub         *Publication     `json:"pub,omitempty"`
	Join        *JoinLeave       `json:"join,omitempty"`
	Leave       *JoinLeave       `json:"leave,omitempty"`
	Unsubscribe *UnsubscribePush `json:"unsubscribe,omitempty"`
	Subscribe   *SubscribeResult `json:"subscribe,omitempty"`
	Message     *MessagePush     `json:"message,omitempty"`
	Refresh     *RefreshPush     `json:"refresh,omitempty"`
}

// JoinLeave is a presence change push.
type JoinLeave struct {
	Info *ClientInfo `json:"info"`
}

// UnsubscribePush tells a client its subscription ended.
type UnsubscribePush struct {
	Code   uint32 `json:"code"`
	Reason string `json:"reason,omitempty"`
}

// MessagePush is an asynchronous message to one client.
type MessagePush struct {
	Data Raw `json:"data"`
}

// RefreshPush tells the client its connection expiry changed.
type RefreshPush struct {
	Expires bool   `json:"expires,omitempty"`
	TTL     uint32 `json:"ttl,omitempty"`
}
