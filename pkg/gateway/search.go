package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pulseplatform/pulse/pkg/auth"
	"github.com/pulseplatform/pulse/pkg/channel"
	"github.com/pulseplatform/pulse/pkg/history"
	"github.com/pulseplatform/pulse/pkg/protocol"
	"github.com/pulseplatform/pulse/pkg/publication"
)

// searchRequest is a history search, from query parameters (portals) or
// the "search" object of POST /api/history (operators).
type searchRequest struct {
	Q      string `json:"q,omitempty"`
	Since  string `json:"since,omitempty"` // RFC 3339
	Until  string `json:"until,omitempty"` // RFC 3339
	Before uint64 `json:"before,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// searchItem is one match: the publication with its offset and stored time.
type searchItem struct {
	Offset uint64               `json:"offset"`
	Time   time.Time            `json:"time"`
	Data   protocol.Raw         `json:"data"`
	Tags   map[string]string    `json:"tags,omitempty"`
	Info   *protocol.ClientInfo `json:"info,omitempty"`
}

// searchResult is one page, newest first.
type searchResult struct {
	Publications []searchItem `json:"publications"`
	Epoch        string       `json:"epoch"`
	Scanned      int          `json:"scanned"`
	ScanLimit    int          `json:"scan_limit"`
	ScanLimitHit bool         `json:"scan_limit_hit"`
	// NextBefore is the cursor for the next (older) page: pass it as before.
	// 0 means there is nothing older to look at.
	NextBefore uint64 `json:"next_before"`
}

func (g *Gateway) search(ctx context.Context, ch channel.Channel, sr searchRequest) (*searchResult, *apiError) {
	q := history.SearchQuery{Text: sr.Q, Before: sr.Before, Limit: sr.Limit, ScanCap: g.cfg.SearchScanCap}
	if q.Limit <= 0 || q.Limit > g.cfg.SearchLimit {
		q.Limit = min(50, g.cfg.SearchLimit)
		if sr.Limit > g.cfg.SearchLimit {
			q.Limit = g.cfg.SearchLimit
		}
	}
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"since", sr.Since, &q.Since}, {"until", sr.Until, &q.Until}} {
		if t.v == "" {
			continue
		}
		parsed, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			return nil, &apiError{http.StatusBadRequest, protocol.ErrBadRequest.WithMessage(t.name + " must be an RFC 3339 time like 2026-11-26T08:00:00Z")}
		}
		*t.dst = parsed
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return nil, &apiError{http.StatusBadRequest, protocol.ErrBadRequest.WithMessage("until is before since")}
	}
	if len(sr.Q) > 256 {
		return nil, &apiError{http.StatusBadRequest, protocol.ErrBadRequest.WithMessage("q is longer than 256 bytes")}
	}
	res, err := g.reader.Search(ctx, ch, q)
	if err != nil {
		g.log.Error("history search", "channel", ch.Name(), "err", err)
		return nil, &apiError{http.StatusServiceUnavailable, protocol.ErrInternal.WithMessage("history read failed, retry")}
	}
	out := &searchResult{Publications: make([]searchItem, 0, len(res.Msgs)), Epoch: res.Epoch,
		Scanned: res.Scanned, ScanLimit: q.ScanCap, ScanLimitHit: res.CapHit, NextBefore: res.NextBefore}
	for _, m := range res.Msgs {
		p := publication.FromNATS(m.Data, m.Header, m.Sequence)
		out.Publications = append(out.Publications, searchItem{Offset: m.Sequence, Time: m.Time.UTC(), Data: p.Data, Tags: p.Tags, Info: p.Info})
	}
	return out, nil
}

// serveSearch is GET /history/search for portals: the user's own JWT in
// "Authorization: Bearer", the same read permission as subscribe.
func (g *Gateway) serveSearch(w http.ResponseWriter, r *http.Request) {
	const method = "history_search"
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		g.apiFail(w, method, apiError{http.StatusUnauthorized, protocol.ErrUnauthorized.WithMessage("send the user's token as Authorization: Bearer <JWT>")})
		return
	}
	claims, err := g.verifier.VerifyConnect(r.Context(), tok)
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		g.metrics.Refusals.WithLabelValues("token_expired").Inc()
		g.apiFail(w, method, apiError{http.StatusUnauthorized, protocol.ErrTokenExpired})
		return
	case err != nil:
		g.metrics.Refusals.WithLabelValues("invalid_token").Inc()
		g.apiFail(w, method, apiError{http.StatusUnauthorized, protocol.ErrUnauthorized.WithMessage("invalid token")})
		return
	}
	qv := r.URL.Query()
	ch, perr := parseAPIChannel(qv.Get("channel"))
	if perr != nil {
		g.apiFail(w, method, *perr)
		return
	}
	if !claims.CanSubscribe(ch) {
		g.metrics.Refusals.WithLabelValues("permission_denied").Inc()
		g.log.Info("refused", "reason", "permission_denied", "user", claims.Subject, "tenant", claims.Tenant, "channel", ch.Name(), "detail", "history search")
		g.apiFail(w, method, apiError{http.StatusForbidden, protocol.ErrPermissionDenied})
		return
	}
	sr := searchRequest{Q: qv.Get("q"), Since: qv.Get("since"), Until: qv.Get("until")}
	for name, dst := range map[string]any{"before": &sr.Before, "limit": &sr.Limit} {
		v := qv.Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			g.apiFail(w, method, apiError{http.StatusBadRequest, protocol.ErrBadRequest.WithMessage(fmt.Sprintf("%s must be a non-negative integer", name))})
			return
		}
		switch d := dst.(type) {
		case *uint64:
			*d = n
		case *int:
			*d = int(n)
		}
	}
	res, aerr := g.search(r.Context(), ch, sr)
	if aerr != nil {
		g.apiFail(w, method, *aerr)
		return
	}
	g.writeAPI(w, method, http.StatusOK, map[string]any{"result": res})
}

// parseAPIChannel validates a channel from an HTTP request.
func parseAPIChannel(name string) (channel.Channel, *apiError) {
	ch, err := channel.Parse(name)
	if err != nil {
		return channel.Channel{}, &apiError{http.StatusBadRequest, channelError(err)}
	}
	return ch, nil
}
