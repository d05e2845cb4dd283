package webhooks_test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy forwards TCP connections from its own 127.0.0.1 port to a target, and can cut them all:
// a real lost connection, for the client under test, without stopping the service.
type proxy struct {
	listener net.Listener
	target   string
	mu       sync.Mutex
	conns    []net.Conn
	accepted int
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{listener: listener, target: target}
	t.Cleanup(func() {
		listener.Close()
		p.cut()
	})
	go p.serve()
	return p
}

func (p *proxy) addr() string {
	return p.listener.Addr().String()
}

func (p *proxy) serve() {
	for {
		downstream, err := p.listener.Accept()
		if err != nil {
			return
		}
		upstream, err := net.Dial("tcp", p.target)
		if err != nil {
			downstream.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, downstream, upstream)
		p.accepted++
		p.mu.Unlock()
		go func() { _, _ = io.Copy(upstream, downstream); upstream.Close() }()
		go func() { _, _ = io.Copy(downstream, upstream); downstream.Close() }()
	}
}

// cut closes every connection forwarded so far.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, conn := range p.conns {
		conn.Close()
	}
	p.conns = nil
}

// connections is how many connections it has accepted.
func (p *proxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}
