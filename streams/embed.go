// Package streams holds Pulse's JetStream stream definitions (DESIGN §2) and
// applies them at start-up.
//
// The *.json files are the source of truth, in the JSON form the nats CLI
// accepts (nats stream add --config streams/tenants.json); they are embedded
// into the binary so the gateway and the CLI agree on one definition. Ensure
// overwrites a stream's configuration with the file's, so changes made by
// hand on a server are reverted at the next start-up.
package streams

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

//go:embed *.json
var files embed.FS

// Configs parses the embedded stream configs, ordered by file name. When
// replicas > 0 it overrides num_replicas (1 on one machine, 3 on a cluster).
func Configs(replicas int) ([]jetstream.StreamConfig, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded stream configs: %w", err)
	}
	cfgs := make([]jetstream.StreamConfig, 0, len(entries))
	for _, e := range entries {
		data, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Name(), err)
		}
		var cfg jetstream.StreamConfig
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields() // a misspelt field would silently fall back to a default
		if err := dec.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("parse %s: %w", e.Name(), err)
		}
		if cfg.Name == "" {
			return nil, fmt.Errorf("parse %s: stream name is empty", e.Name())
		}
		if replicas > 0 {
			cfg.Replicas = replicas
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs, nil
}

// Ensure creates each stream, or updates it to the embedded config if it
// exists, and returns them in Configs order. It is idempotent, so every
// gateway replica may call it at start-up.
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int) ([]jetstream.Stream, error) {
	cfgs, err := Configs(replicas)
	if err != nil {
		return nil, err
	}
	out := make([]jetstream.Stream, 0, len(cfgs))
	for _, cfg := range cfgs {
		s, err := js.CreateOrUpdateStream(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Epoch identifies one life of a stream: the base-36 nanoseconds of its
// creation time, stable across restarts and replicas, and different once the
// stream is deleted and created again, so positions (offsets) from before
// can be recognised as unrecoverable (DESIGN §3). It is "" for a nil info.
func Epoch(info *jetstream.StreamInfo) string {
	if info == nil {
		return ""
	}
	return strconv.FormatInt(info.Created.UnixNano(), 36)
}
