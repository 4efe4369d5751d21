package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// directRequest is a batched direct get ($JS.API.DIRECT.GET.<stream>): the
// server streams the matching messages back, then an end-of-batch marker.
type directRequest struct {
	Seq          uint64     `json:"seq,omitempty"`
	NextBySubj   string     `json:"next_by_subj,omitempty"`
	Batch        int        `json:"batch,omitempty"`
	MaxBytes     int        `json:"max_bytes,omitempty"`
	StartTime    *time.Time `json:"start_time,omitempty"`
	MultiLastFor []string   `json:"multi_last,omitempty"`
	UpToTime     *time.Time `json:"up_to_time,omitempty"`
}

// errNoMessages is the server's answer when nothing matches.
var errNoMessages = errors.New("no messages")

// direct sends req to the stream and calls fn for each message until fn
// returns false or the server marks the end. It fails unless the reply is
// complete: a deadline or a lost connection is an error, never a short read.
//
// It listens on an inbox of its own rather than the connection's shared
// request inbox: replies to a wildcard-muxed inbox would reach the
// connection twice (github.com/synadia-io/orbit.go/jetstreamext does that).
func (r *Reader) direct(ctx context.Context, stream string, req directRequest, fn func(*Msg) bool) error {
	nc := r.js.Conn()
	if _, ok := ctx.Deadline(); !ok {
		// A lost request or reply must not block forever; as nats.go's
		// requests, fall back to the connection's timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, nc.Opts.Timeout)
		defer cancel()
	}
	inbox := nc.NewInbox()
	// The server sends at most Batch messages (one per multi_last subject)
	// and an end marker: a channel that size, not SubscribeSync's 64k slots
	// (512 KB allocated per read).
	mch := make(chan *nats.Msg, max(req.Batch, len(req.MultiLastFor), 1)+2)
	sub, err := nc.ChanSubscribe(inbox, mch)
	if err != nil {
		return fmt.Errorf("direct get %s: %w", stream, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
		return fmt.Errorf("direct get %s: %w", stream, err)
	}
	for n := 0; ; n++ {
		var m *nats.Msg
		select {
		case m = <-mch:
		case <-ctx.Done():
			return fmt.Errorf("direct get %s: %w", stream, ctx.Err())
		}
		if len(m.Data) == 0 && m.Header != nil {
			switch status := m.Header.Get("Status"); status {
			case "":
			case "204": // end of batch
				return nil
			case "404":
				if n == 0 {
					return errNoMessages
				}
				return nil
			case "503":
				return fmt.Errorf("direct get %s: %w", stream, nats.ErrNoResponders)
			default:
				return fmt.Errorf("direct get %s: status %s %s", stream, status, m.Header.Get("Description"))
			}
		}
		msg, err := toMsg(m)
		if err != nil {
			return fmt.Errorf("direct get %s: %w", stream, err)
		}
		if !fn(msg) {
			return nil
		}
	}
}

// toMsg reads a direct get reply.
func toMsg(m *nats.Msg) (*Msg, error) {
	h := m.Header
	seq, err := strconv.ParseUint(h.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("reply without a sequence: %w", err)
	}
	ts, err := time.Parse(time.RFC3339Nano, h.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("reply without a timestamp: %w", err)
	}
	subj := h.Get(jetstream.SubjectHeader)
	if subj == "" {
		return nil, errors.New("reply without a subject")
	}
	return &Msg{Subject: subj, Sequence: seq, Header: h, Data: m.Data, Time: ts}, nil
}
