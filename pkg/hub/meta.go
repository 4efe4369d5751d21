package hub

import (
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/pulseplatform/pulse/pkg/protocol"
)

// decodeMeta fills tags and publisher info from message headers. Malformed
// metadata is ignored rather than failing the publication: the payload is
// what subscribers need.
func decodeMeta(h nats.Header, pub *protocol.Publication) {
	if h == nil {
		return
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
}

// EncodeMeta writes tags and publisher info into headers for a publish.
func EncodeMeta(h nats.Header, tags map[string]string, info *protocol.ClientInfo) error {
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
