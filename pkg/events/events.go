// Package events is the one envelope every Pulse worker publishes in: a
// CloudEvents 1.0 event in JSON structured mode (specversion, id, source,
// type, time, subject, datacontenttype, data), the Go types of the data each
// event type carries, and the JSON Schema of every event type
// (schemas/*.json, embedded, see Schemas and Validator).
//
// The JSON field names of the data types are a contract with the portals
// (DESIGN §2, §7, and the original design's DeploymentEvent/BillingEvent):
// add fields, never rename or drop one. The package is pure: no NATS, no
// network, no clock (callers pass every time).
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SpecVersion is the CloudEvents version of the envelope.
const SpecVersion = "1.0"

// ContentTypeJSON is the datacontenttype of every Pulse event.
const ContentTypeJSON = "application/json"

// Event is a CloudEvents 1.0 event in JSON structured mode. Its id doubles as
// the Nats-Msg-Id a worker publishes it with, so a retried publish is
// recognised by the stream as the same event.
type Event struct {
	SpecVersion string `json:"specversion"`
	// ID is unique per source; workers derive it so a retry reuses it.
	ID string `json:"id"`
	// Source names the producer, e.g. "/pulse/deployer-sim".
	Source string `json:"source"`
	// Type is one of the Type* constants, e.g. "io.pulse.deployment.progress".
	Type string `json:"type"`
	// Time is when the event happened (for simulators: simulated time).
	Time time.Time `json:"time"`
	// Subject is what the event is about within the source: a deployment,
	// invoice, subscription, alert or tenant id.
	Subject         string          `json:"subject"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// Named errors of New and Parse.
var (
	ErrUnknownType = errors.New("unknown event type")
	ErrBadEnvelope = errors.New("not a Pulse CloudEvents envelope")
)

// New wraps data into an envelope. It refuses a type that is not in the
// catalogue and empty id, source or subject.
func New(id, source, typ, subject string, t time.Time, data any) (Event, error) {
	if _, ok := catalogue[typ]; !ok {
		return Event{}, fmt.Errorf("%w: %q", ErrUnknownType, typ)
	}
	if id == "" || source == "" || subject == "" {
		return Event{}, fmt.Errorf("%s: %w: id, source and subject are required", typ, ErrBadEnvelope)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s data: %w", typ, err)
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          source,
		Type:            typ,
		Time:            t.UTC(),
		Subject:         subject,
		DataContentType: ContentTypeJSON,
		Data:            raw,
	}, nil
}

// Parse decodes an envelope and checks the attributes every Pulse consumer
// relies on. It does not validate data; use a Validator for that.
func Parse(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrBadEnvelope, err)
	}
	switch {
	case e.SpecVersion != SpecVersion:
		return Event{}, fmt.Errorf("%w: specversion %q, want %q", ErrBadEnvelope, e.SpecVersion, SpecVersion)
	case e.ID == "" || e.Source == "" || e.Type == "":
		return Event{}, fmt.Errorf("%w: id, source and type are required", ErrBadEnvelope)
	case len(bytes.TrimSpace(e.Data)) == 0:
		return Event{}, fmt.Errorf("%w: no data", ErrBadEnvelope)
	}
	return e, nil
}

// DecodeData decodes the event's data into v. Unknown fields are ignored:
// producers may add fields (never rename or drop one), and consumers must
// keep working when they do.
func (e Event) DecodeData(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decode %s data: %w", e.Type, err)
	}
	return nil
}
