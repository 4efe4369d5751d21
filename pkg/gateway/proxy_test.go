package gateway

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// proxy is a TCP load balancer for tests: clients keep one address while
// the gateway behind it is switched, restarted or unreachable.
type proxy struct {
	t       *testing.T
	ln      net.Listener
	mu      sync.Mutex
	backend string // host:port; "" refuses connections
	conns   map[net.Conn]struct{}
}

func newProxy(t *testing.T, backend *env) *proxy {
	t.Helper()
	p := newTCPProxy(t, "")
	p.route(backend)
	return p
}

// newTCPProxy forwards to host:port backend ("": refuse).
func newTCPProxy(t *testing.T, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, conns: map[net.Conn]struct{}{}, backend: backend}
	t.Cleanup(func() { ln.Close(); p.dropAll() })
	go p.serve()
	return p
}

// url is the WebSocket URL through the proxy.
func (p *proxy) url() string { return "ws://" + p.ln.Addr().String() + "/connection/websocket" }

// route sends new connections to e (nil: refuse them).
func (p *proxy) route(e *env) {
	addr := ""
	if e != nil {
		addr = strings.TrimPrefix(e.srv.URL, "http://")
	}
	p.routeAddr(addr)
}

// routeAddr sends new connections to host:port ("": refuse them).
func (p *proxy) routeAddr(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backend = addr
}

// addr is the proxy's own host:port.
func (p *proxy) addr() string { return p.ln.Addr().String() }

// dropAll cuts every proxied connection, like a network failure.
func (p *proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		backend := p.backend
		p.mu.Unlock()
		if backend == "" {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", backend)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); out.Close() }()
		go func() { _, _ = io.Copy(in, out); in.Close() }()
	}
}
