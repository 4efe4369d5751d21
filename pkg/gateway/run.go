package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/auth"
	"github.com/pulseplatform/pulse/pkg/natsembed"
	"github.com/pulseplatform/pulse/pkg/sim"
)

// Run starts a gateway from cfg and serves until ctx ends, then drains:
// readiness goes false, clients get 3001 and reconnect elsewhere, and the
// process has ShutdownTimeout to finish. out receives -dev's instructions.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if cfg.Logger == nil {
		return errors.New("gateway: Config.Logger is required")
	}
	log := cfg.Logger
	if cfg.Dev {
		if cfg.JWTHMACSecret == "" {
			cfg.JWTHMACSecret = randomHex(32)
		}
		if cfg.APIKey == "" {
			cfg.APIKey = randomHex(16)
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	natsURL := cfg.NATSURL
	var inProcess []nats.Option
	if natsURL == "" {
		if cfg.NATSSync == "" {
			// A temporary store is removed on exit and never reopened, so
			// fsyncing it protects nothing; a -data-dir store is fsynced.
			cfg.NATSSync = natsembed.SyncAlways
			if cfg.DataDir == "" {
				cfg.NATSSync = "2m"
			}
		}
		srv, err := natsembed.Start(ctx, natsembed.Options{
			Listen: cfg.NATSListen, DataDir: cfg.DataDir, Sync: cfg.NATSSync,
			ServerName: cfg.NodeName, Logger: log.With("component", "nats-server"),
		})
		if err != nil {
			return fmt.Errorf("embedded NATS (-nats-listen %s): %w", cfg.NATSListen, err)
		}
		defer srv.Shutdown()
		natsURL = srv.ClientURL()
		// The gateway's own connection skips the loopback socket.
		inProcess = append(inProcess, nats.InProcessServer(srv.NATS()))
		log.Info("embedded NATS JetStream started", "url", natsURL, "sync", cfg.NATSSync)
	}

	// Set once the gateway exists; the handler may run before that.
	var gw atomic.Pointer[Gateway]
	nc, err := nats.Connect(natsURL, append(inProcess,
		nats.Name("pulse-gateway "+cfg.NodeName),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
			if g := gw.Load(); g != nil {
				g.NATSReconnected()
			}
		}),
	)...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s (-nats-url): %w", natsURL, err)
	}
	defer nc.Close()

	verifier, err := newVerifier(ctx, cfg)
	if err != nil {
		return err
	}
	defer verifier.Close()

	g, err := New(ctx, cfg, nc, verifier)
	if err != nil {
		return err
	}
	gw.Store(g)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (-addr): %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("gateway listening", "addr", ln.Addr().String(), "node", g.nodeID)

	if cfg.DebugAddr != "" {
		dln, err := net.Listen("tcp", cfg.DebugAddr)
		if err != nil {
			return fmt.Errorf("listen on %s (-debug-addr): %w", cfg.DebugAddr, err)
		}
		dsrv := &http.Server{Handler: debugHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = dsrv.Serve(dln) }()
		defer dsrv.Close()
		log.Info("profiling listener", "addr", dln.Addr().String())
	}

	var sims sync.WaitGroup
	simCtx, stopSims := context.WithCancel(ctx)
	defer func() { stopSims(); sims.Wait() }()
	if cfg.Dev {
		tokens, err := DevTokens([]byte(cfg.JWTHMACSecret))
		if err != nil {
			return err
		}
		printDev(out, cfg, ln.Addr().String(), natsURL, tokens)
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		for name, runSim := range map[string]func(context.Context, jetstream.JetStream, sim.Config) error{
			"deployer-sim": sim.RunDeployer, "billing-sim": sim.RunBilling,
		} {
			sims.Add(1)
			go func() {
				defer sims.Done()
				scfg := sim.Config{Tenants: []string{"acme", "globex"}, Rate: 1, Seed: time.Now().UnixNano(), Logger: log.With("component", name)}
				if err := runSim(simCtx, js, scfg); err != nil && simCtx.Err() == nil {
					log.Error("simulator stopped", "sim", name, "err", err)
				}
			}()
		}
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining clients", "deadline", cfg.ShutdownTimeout)
	stopSims()
	sims.Wait()
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	drainErr := g.Shutdown(drainCtx)
	if err := srv.Shutdown(drainCtx); err != nil {
		drainErr = errors.Join(drainErr, fmt.Errorf("http shutdown: %w", err))
	}
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		drainErr = errors.Join(drainErr, fmt.Errorf("NATS drain: %w", err))
	}
	log.Info("stopped")
	return drainErr
}

func newVerifier(ctx context.Context, cfg Config) (*auth.Verifier, error) {
	acfg := auth.Config{
		HMACSecret: []byte(cfg.JWTHMACSecret),
		JWKSURL:    cfg.JWKSURL,
		RequireExp: cfg.JWTRequireExp,
		Audience:   cfg.JWTAudience,
		Issuer:     cfg.JWTIssuer,
	}
	if cfg.JWTHMACSecret == "" {
		acfg.HMACSecret = nil
	}
	if cfg.JWTPublicKeyFile != "" {
		pem, err := os.ReadFile(cfg.JWTPublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("-jwt-public-key-file: %w", err)
		}
		acfg.PublicKeyPEM = pem
	}
	v, err := auth.NewVerifier(ctx, acfg)
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	return v, nil
}
