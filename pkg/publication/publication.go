// Package publication converts between NATS messages (live copies and
// stream reads) and protocol publications, so the live path, recovery and
// history give a client byte-for-byte the same publication.
package publication

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pulseplatform/pulse/pkg/protocol"
)

// Headers that carry publication metadata through NATS. Workers may set
// HeaderTags; HeaderInfo is set by the gateway for client-side publishes.
const (
	HeaderTags = "Pulse-Tags" // JSON object of string → string
	HeaderInfo = "Pulse-Info" // JSON protocol.ClientInfo of the publishing client
)

// FromNATS builds the publication for a stored message at offset seq.
// Malformed metadata is ignored rather than failing the publication: the
// payload is what subscribers need.
func FromNATS(data []byte, h nats.Header, seq uint64) *protocol.Publication {
	pub := &protocol.Publication{Data: protocol.ToRaw(data), Offset: seq}
	if h == nil {
		return pub
	}
	if v := h.Get(HeaderTags); v != "" {
		var tags map[string]string
		if json.Unmarshal([]byte(v), &tags) == nil && len(tags) > 0 {
			pub.Tags = tags
		}
	}
	if v := h.Get(HeaderInfo); v != "" {
		var info protocol.ClientInfo
		if json.Unmarshal([]byte(v), &info) == nil && info.Client != "" {
			pub.Info = &info
		}
	}
	return pub
}

// SetHeaders writes tags and publisher info into headers for a publish.
func SetHeaders(h nats.Header, tags map[string]string, info *protocol.ClientInfo) error {
	if len(tags) > 0 {
		b, err := json.Marshal(tags)
		if err != nil {
			return err
		}
		h.Set(HeaderTags, string(b))
	}
	if info != nil {
		b, err := json.Marshal(info)
		if err != nil {
			return err
		}
		h.Set(HeaderInfo, string(b))
	}
	return nil
}

// Millis is a message time in the protocol's unit (ms since the epoch).
func Millis(t time.Time) int64 { return t.UnixMilli() }
