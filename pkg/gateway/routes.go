package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pulseplatform/pulse/pkg/portal"
)

// Handler is the whole HTTP surface of the gateway.
func (g *Gateway) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)

	r.Get("/connection/websocket", g.serveWS)

	r.Route("/api", func(r chi.Router) {
		r.Use(g.requireAPIKey)
		r.Post("/publish", g.apiPublish)
		r.Post("/broadcast", g.apiBroadcast)
		r.Post("/history", g.apiHistory)
		r.Post("/presence", g.apiPresence)
		r.Post("/presence_stats", g.apiPresenceStats)
		r.Post("/info", g.apiInfo)
	})

	r.Get("/history/search", g.serveSearch)

	if g.cfg.Dev {
		// Demo identities for the portal's picker; only in -dev, where the
		// secret is printed anyway.
		r.Get("/dev/tokens", g.serveDevTokens)
	}
	r.Handle("/*", portal.Handler())

	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	r.Get("/readyz", g.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(g.registry, promhttp.HandlerOpts{}))
	return r
}

func (g *Gateway) readyz(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := g.ready(ctx); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (g *Gateway) serveDevTokens(w http.ResponseWriter, _ *http.Request) {
	tokens, err := DevTokens([]byte(g.cfg.JWTHMACSecret))
	if err != nil {
		http.Error(w, "cannot mint demo tokens: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"tokens": tokens})
}
