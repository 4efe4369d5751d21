package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxCommandsPerFrame bounds the work one frame can ask for.
const MaxCommandsPerFrame = 100

// ErrBadFrame is returned for frames that are not newline-delimited JSON commands.
var ErrBadFrame = errors.New("malformed frame")

// DecodeCommands splits a JSON frame into commands (one JSON object per line,
// at most one trailing newline, reference §1.4).
func DecodeCommands(frame []byte) ([]*Command, error) {
	frame = bytes.TrimSuffix(frame, []byte("\n"))
	if len(frame) == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrBadFrame)
	}
	var cmds []*Command
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
			if len(frame) == 0 {
				return nil, fmt.Errorf("%w: empty line", ErrBadFrame)
			}
		} else {
			frame = nil
		}
		if len(cmds) == MaxCommandsPerFrame {
			return nil, fmt.Errorf("%w: more than %d commands", ErrBadFrame, MaxCommandsPerFrame)
		}
		cmd := new(Command)
		if err := json.Unmarshal(line, cmd); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
		}
		cmds = append(cmds, cmd)
	}
	return cmds, nil
}

// EncodeReply marshals one reply line (no trailing newline).
func EncodeReply(r *Reply) ([]byte, error) {
	return json.Marshal(r)
}

// PingFrame is the v2 server ping: an empty reply.
var PingFrame = []byte("{}")

// EncodePublication marshals the publication push for a channel once, so
// fan-out can share the bytes among all subscribers.
func EncodePublication(channel string, pub *Publication) ([]byte, error) {
	return json.Marshal(&Reply{Push: &Push{Channel: channel, Pub: pub}})
}
