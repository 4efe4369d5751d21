package protocol

import (
	"bytes"
	"encoding/json"
)

// Raw is a payload embedded verbatim as JSON. It guarantees two things the
// framing depends on: the bytes are valid JSON, and they hold no newline.
type Raw []byte

// MarshalJSON implements json.Marshaler.
func (r Raw) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *Raw) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

// ToRaw turns bytes from the outside (a worker's NATS message, an API body)
// into a Raw safe to embed: valid JSON is kept (compacted when it holds
// newlines); anything else is carried as a JSON string, so a non-JSON payload
// reaches clients intact instead of breaking their decoder.
func ToRaw(b []byte) Raw {
	if len(b) == 0 {
		return Raw("null")
	}
	if json.Valid(b) {
		if bytes.IndexByte(b, '\n') < 0 && bytes.IndexByte(b, '\r') < 0 {
			return Raw(b)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err == nil {
			return Raw(buf.Bytes())
		}
	}
	s, _ := json.Marshal(string(b)) // never fails for a string
	return Raw(s)
}
