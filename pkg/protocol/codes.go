package protocol

import "fmt"

// Error is a protocol error reply: {code, message, temporary}. Values here are
// shared; use WithMessage to add detail without mutating them.
type Error struct {
	Code      uint32 `json:"code"`
	Message   string `json:"message"`
	Temporary bool   `json:"temporary,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// WithMessage returns a copy of e whose message adds detail, keeping the code.
func (e *Error) WithMessage(detail string) *Error {
	c := *e
	c.Message = e.Message + ": " + detail
	return &c
}

// Is makes errors.Is match on the code, so a detailed copy matches its base.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Error codes of the Centrifugo client protocol (reference §1.7).
var (
	ErrInternal              = &Error{Code: 100, Message: "internal server error", Temporary: true}
	ErrUnauthorized          = &Error{Code: 101, Message: "unauthorized"}
	ErrUnknownChannel        = &Error{Code: 102, Message: "unknown channel"}
	ErrPermissionDenied      = &Error{Code: 103, Message: "permission denied"}
	ErrMethodNotFound        = &Error{Code: 104, Message: "method not found"}
	ErrAlreadySubscribed     = &Error{Code: 105, Message: "already subscribed"}
	ErrLimitExceeded         = &Error{Code: 106, Message: "limit exceeded"}
	ErrBadRequest            = &Error{Code: 107, Message: "bad request"}
	ErrNotAvailable          = &Error{Code: 108, Message: "not available"}
	ErrTokenExpired          = &Error{Code: 109, Message: "token expired"}
	ErrExpired               = &Error{Code: 110, Message: "expired"}
	ErrTooManyRequests       = &Error{Code: 111, Message: "too many requests", Temporary: true}
	ErrUnrecoverablePosition = &Error{Code: 112, Message: "unrecoverable position"}
)

// Disconnect is a reason to close a connection, sent as a WebSocket close
// frame (reference §1.6, §1.9).
type Disconnect struct {
	Code   uint16
	Reason string
}

func (d Disconnect) Error() string { return fmt.Sprintf("disconnect %d: %s", d.Code, d.Reason) }

// Reconnect reports whether SDKs reconnect after this disconnect.
func (d Disconnect) Reconnect() bool {
	c := d.Code
	return (c >= 3000 && c < 3500) || (c >= 4000 && c < 4500) || c >= 5000 || c < 3000
}

// Disconnect codes (reference §1.9).
var (
	DisconnectShutdown          = Disconnect{3001, "shutdown"}
	DisconnectInternal          = Disconnect{3004, "internal server error"}
	DisconnectExpired           = Disconnect{3005, "connection expired"}
	DisconnectSubExpired        = Disconnect{3006, "subscription expired"}
	DisconnectSlow              = Disconnect{3008, "slow"}
	DisconnectWriteError        = Disconnect{3009, "write error"}
	DisconnectInsufficientState = Disconnect{3010, "insufficient state"}
	DisconnectForceReconnect    = Disconnect{3011, "force reconnect"}
	DisconnectNoPong            = Disconnect{3012, "no pong"}
	DisconnectTooManyRequests   = Disconnect{3013, "too many requests"}
	DisconnectInvalidToken      = Disconnect{3500, "invalid token"}
	DisconnectBadRequest        = Disconnect{3501, "bad request"}
	DisconnectStale             = Disconnect{3502, "stale"}
	DisconnectForce             = Disconnect{3503, "force disconnect"}
	DisconnectConnectionLimit   = Disconnect{3504, "connection limit"}
	DisconnectChannelLimit      = Disconnect{3505, "channel limit"}
	DisconnectInappropriate     = Disconnect{3506, "inappropriate protocol"}
	DisconnectPermissionDenied  = Disconnect{3507, "permission denied"}
	DisconnectNotAvailable      = Disconnect{3508, "not available"}
)

// Unsubscribe push codes (reference §1.8). Codes ≥ 2500 make SDKs resubscribe.
const (
	UnsubscribeServer            uint32 = 2000
	UnsubscribeInsufficientState uint32 = 2500
	UnsubscribeExpired           uint32 = 2501
)
