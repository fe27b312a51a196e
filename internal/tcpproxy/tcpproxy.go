// Package tcpproxy is a TCP proxy for tests that need to break a network
// path on purpose: cut a Redis connection mid-test, partition a Raft node,
// or slow a link.
//
// A [Proxy] listens on a loopback port and forwards every connection to a
// target. Its mode can change at any time: [Proxy.Cut] resets every
// connection and refuses new ones (a crashed peer), [Proxy.Blackhole] keeps
// connections open but drops every byte (a partition: callers hang until
// their own timeouts fire), [Proxy.Restore] heals it. [Proxy.SetLatency]
// delays every chunk of data in both directions.
package tcpproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Mode is what the proxy does with traffic.
type Mode int

// The proxy's modes.
const (
	Pass      Mode = iota // forward traffic
	Cut                   // reset connections, refuse new ones
	Blackhole             // accept and hold connections, drop all data
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Cut:
		return "cut"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Proxy forwards TCP connections from a loopback port to a target. It is
// safe for concurrent use; every goroutine it starts ends by Close.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	mode    Mode              // guarded by mu
	latency time.Duration     // guarded by mu
	conns   map[net.Conn]bool // guarded by mu: every open connection, both sides
	closed  bool              // guarded by mu
	changed chan struct{}     // guarded by mu: closed and replaced on every mode change

	wg sync.WaitGroup
}

// New starts a proxy on 127.0.0.1 (a free port) forwarding to target.
func New(target string) (*Proxy, error) {
	if target == "" {
		return nil, errors.New("tcpproxy: empty target address")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcpproxy: listen: %w", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address clients dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Cut resets every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() { p.setMode(Cut) }

// Blackhole keeps connections open but silently drops all data until
// Restore, so callers wait for their own timeouts.
func (p *Proxy) Blackhole() { p.setMode(Blackhole) }

// Restore forwards traffic again. Connections reset by Cut stay closed;
// clients reconnect.
func (p *Proxy) Restore() { p.setMode(Pass) }

// SetLatency delays each chunk of data in each direction by d.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = max(d, 0)
	p.mu.Unlock()
}

func (p *Proxy) setMode(m Mode) {
	p.mu.Lock()
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
	var toClose []net.Conn
	if m == Cut {
		for c := range p.conns {
			toClose = append(toClose, c)
		}
	}
	p.mu.Unlock()
	for _, c := range toClose {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, like a crashed peer
		}
		_ = c.Close()
	}
}

// Close stops the proxy and closes every connection. It waits for all of the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := p.conns
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	err := p.ln.Close()
	for c := range conns {
		_ = c.Close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		if p.Mode() == Cut {
			_ = client.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.track(client) {
		_ = client.Close()
		return
	}
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(server) {
		_ = server.Close()
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	p.wg.Add(2)
	go p.pipe(server, client, done)
	go p.pipe(client, server, done)
	<-done // one direction ended: tear down both
}

func (p *Proxy) pipe(dst, src net.Conn, done chan<- struct{}) {
	defer p.wg.Done()
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			mode, latency := p.mode, p.latency
			p.mu.Unlock()
			switch mode {
			case Cut:
				return
			case Blackhole:
				// drop the bytes, keep the connection
			case Pass:
				if latency > 0 {
					time.Sleep(latency)
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}
