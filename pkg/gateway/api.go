package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/protocol"
)

// The server API mirrors Centrifugo's HTTP API (POST /api/<method>, JSON
// body, {"result": …} or {"error": {code, message}}), with one difference:
// failures also set an HTTP status, so plain HTTP tooling sees them.

type apiError struct {
	status int
	err    *protocol.Error
}

func (g *Gateway) writeAPI(w http.ResponseWriter, method string, status int, body any) {
	g.metrics.APIRequests.WithLabelValues(method, itoa(status)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (g *Gateway) apiFail(w http.ResponseWriter, method string, e apiError) {
	g.writeAPI(w, method, e.status, map[string]any{"error": e.err})
}

func (g *Gateway) requireAPIKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := strings.TrimPrefix(r.URL.Path, "/api/")
		if g.cfg.APIKey == "" {
			g.apiFail(w, method, apiError{http.StatusForbidden, protocol.ErrNotAvailable.WithMessage("server API disabled: start the gateway with -api-key")})
			return
		}
		key := r.Header.Get("X-API-Key")
		if key == "" {
			if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "apikey "); ok {
				key = v
			}
		}
		if subtle.ConstantTimeCompare([]byte(key), []byte(g.cfg.APIKey)) != 1 {
			g.metrics.Refusals.WithLabelValues("api_key").Inc()
			g.log.Info("refused", "reason", "api_key", "remote", r.RemoteAddr, "method", method)
			g.apiFail(w, method, apiError{http.StatusUnauthorized, protocol.ErrUnauthorized.WithMessage("missing or wrong X-API-Key")})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// decodeAPI reads a JSON body no larger than the message size limit (plus
// room for the envelope).
func (g *Gateway) decodeAPI(r *http.Request, v any) *apiError {
	body := http.MaxBytesReader(nil, r.Body, g.cfg.Limits.MaxMessageSize+4096)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{http.StatusRequestEntityTooLarge, protocol.ErrLimitExceeded.WithMessage(fmt.Sprintf("body over %d bytes", tooBig.Limit))}
		}
		return &apiError{http.StatusBadRequest, protocol.ErrBadRequest.WithMessage("invalid JSON body: " + err.Error())}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apiError{http.StatusBadRequest, protocol.ErrBadRequest.WithMessage("invalid JSON body: trailing data")}
	}
	return nil
}

type apiPublishRequest struct {
	Channel        string            `json:"channel"`
	Data           json.RawMessage   `json:"data"`
	Tags           map[string]string `json:"tags,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
}

type apiBroadcastRequest struct {
	Channels       []string          `json:"channels"`
	Data           json.RawMessage   `json:"data"`
	Tags           map[string]string `json:"tags,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
}

// publishOne validates and publishes to one channel.
func (g *Gateway) publishOne(r *http.Request, name string, data json.RawMessage, tags map[string]string, key string) (publishResult, *apiError) {
	ch, perr := parseAPIChannel(name)
	if perr != nil {
		return publishResult{}, perr
	}
	if len(data) == 0 {
		return publishResult{}, &apiError{http.StatusBadRequest, protocol.ErrBadRequest.WithMessage("data is required")}
	}
	if int64(len(data)) > g.cfg.Limits.MaxMessageSize {
		return publishResult{}, &apiError{http.StatusRequestEntityTooLarge, protocol.ErrLimitExceeded.WithMessage("data over -max-message-size")}
	}
	msgID := key
	if msgID != "" {
		// The same key on two channels must not dedupe one of them away.
		msgID = ch.Subject() + ":" + key
	}
	ctx, cancel := r.Context(), func() {}
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, commandTimeout)
	}
	defer cancel()
	res, err := g.publish(ctx, ch, data, publishOptions{tags: tags, msgID: msgID})
	if err != nil {
		g.log.Error("api publish", "channel", name, "err", err)
		status := http.StatusInternalServerError
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, ctx.Err()) {
			status = http.StatusServiceUnavailable
		}
		return publishResult{}, &apiError{status, protocol.ErrInternal.WithMessage("store failed, retry with the same idempotency_key")}
	}
	return res, nil
}

func (g *Gateway) apiPublish(w http.ResponseWriter, r *http.Request) {
	var req apiPublishRequest
	if e := g.decodeAPI(r, &req); e != nil {
		g.apiFail(w, "publish", *e)
		return
	}
	res, e := g.publishOne(r, req.Channel, req.Data, req.Tags, req.IdempotencyKey)
	if e != nil {
		g.apiFail(w, "publish", *e)
		return
	}
	g.writeAPI(w, "publish", http.StatusOK, map[string]any{"result": res})
}

func (g *Gateway) apiBroadcast(w http.ResponseWriter, r *http.Request) {
	var req apiBroadcastRequest
	if e := g.decodeAPI(r, &req); e != nil {
		g.apiFail(w, "broadcast", *e)
		return
	}
	if len(req.Channels) == 0 {
		g.apiFail(w, "broadcast", apiError{http.StatusBadRequest, protocol.ErrBadRequest.WithMessage("channels is required")})
		return
	}
	if len(req.Channels) > 1000 {
		g.apiFail(w, "broadcast", apiError{http.StatusBadRequest, protocol.ErrLimitExceeded.WithMessage("at most 1000 channels per broadcast")})
		return
	}
	responses := make([]map[string]any, len(req.Channels))
	for i, name := range req.Channels {
		res, e := g.publishOne(r, name, req.Data, req.Tags, req.IdempotencyKey)
		if e != nil {
			responses[i] = map[string]any{"error": e.err}
			continue
		}
		responses[i] = map[string]any{"result": res}
	}
	g.writeAPI(w, "broadcast", http.StatusOK, map[string]any{"result": map[string]any{"responses": responses}})
}

// nodeInfo is one gateway in the info reply.
type nodeInfo struct {
	UID         string `json:"uid"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	NumClients  int    `json:"num_clients"`
	NumUsers    int    `json:"num_users"`
	NumChannels int    `json:"num_channels"`
	Uptime      int64  `json:"uptime"`
}

func (g *Gateway) apiInfo(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		var empty struct{}
		if e := g.decodeAPI(r, &empty); e != nil {
			g.apiFail(w, "info", *e)
			return
		}
	}
	g.mu.Lock()
	n := nodeInfo{
		UID: g.nodeID, Name: g.cfg.NodeName, Version: g.cfg.Version,
		NumClients: len(g.clients), NumUsers: len(g.users),
		Uptime: int64(time.Since(g.started) / time.Second),
	}
	g.mu.Unlock()
	n.NumChannels = g.hub.NumChannels()
	g.writeAPI(w, "info", http.StatusOK, map[string]any{"result": map[string]any{"nodes": []nodeInfo{n}}})
}

type apiHistoryRequest struct {
	Channel string                   `json:"channel"`
	Limit   int32                    `json:"limit,omitempty"`
	Since   *protocol.StreamPosition `json:"since,omitempty"`
	Reverse bool                     `json:"reverse,omitempty"`
	Search  *searchRequest           `json:"search,omitempty"`
}

// apiHistory reads a channel's history like the history command, or, with
// a "search" object, searches it by text and time (newest first).
func (g *Gateway) apiHistory(w http.ResponseWriter, r *http.Request) {
	var req apiHistoryRequest
	if e := g.decodeAPI(r, &req); e != nil {
		g.apiFail(w, "history", *e)
		return
	}
	ch, perr := parseAPIChannel(req.Channel)
	if perr != nil {
		g.apiFail(w, "history", *perr)
		return
	}
	if req.Search != nil {
		res, e := g.search(r.Context(), ch, *req.Search)
		if e != nil {
			g.apiFail(w, "history", *e)
			return
		}
		g.writeAPI(w, "history", http.StatusOK, map[string]any{"result": res})
		return
	}
	res, pe := g.readHistory(r.Context(), ch, &protocol.HistoryRequest{Channel: req.Channel, Limit: req.Limit, Since: req.Since, Reverse: req.Reverse})
	if pe != nil {
		status := http.StatusBadRequest
		if pe.Code == protocol.ErrInternal.Code {
			status = http.StatusServiceUnavailable
		}
		g.apiFail(w, "history", apiError{status, pe})
		return
	}
	g.writeAPI(w, "history", http.StatusOK, map[string]any{"result": res})
}
