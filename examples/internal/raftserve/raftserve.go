// Package raftserve runs one consensus node with its HTTP API, as the
// example programs that run a Raft cluster (raftkv, discovery) need it: the
// node (with mutual TLS and a role table when asked, through lockdown), the
// API on HTTP or HTTPS, the leader publishing its API address so that
// followers can forward to it, bootstrap or join, and a graceful close
// that hands leadership over first.
//
// Guide: "Distributed Systems → Distributed Consensus".
package raftserve

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/examples/internal/lockdown"
)

// Config is one node.
type Config struct {
	// Node configures the Raft node: its ID, Addr and DataDir, timers,
	// and so on. Its TLS is set from the files below.
	Node consensus.Options
	// HTTPAddr is the API's listen address (host:port).
	HTTPAddr string
	// Bootstrap starts a new cluster with this node as its first member
	// (a node restarted with its state carries on); Join, the host:port
	// of any member's API, joins an existing one. At most one is set.
	Bootstrap bool
	Join      string
	// TLSCert, TLSKey and TLSCA are PEM files for mutual TLS between the
	// nodes and HTTPS on the API; Users is a JSON role table
	// ([lockdown.Load]).
	TLSCert, TLSKey, TLSCA, Users string
	// Handler returns the API served on the node. client forwards to the
	// leader under the node's own certificate; auth is the role table
	// (nil without Users).
	Handler func(node *consensus.Node, client *http.Client, auth *consensus.Auth) (http.Handler, error)
}

// Server is a running node and its API.
type Server struct {
	// Node is the Raft node.
	Node *consensus.Node
	// Client forwards to the leader and joins; Close closes its idle
	// connections.
	Client *http.Client

	http     *http.Server
	httpAddr string
	done     chan error // the HTTP server's exit
	leader   chan error // the leader-duty loop's exit
	cancel   context.CancelFunc
}

// joinTries and joinWait bound how long [Start] retries a join while the
// cluster elects a leader.
const (
	joinTries = 100
	joinWait  = 100 * time.Millisecond
)

// Start starts the node, serves its API and bootstraps or joins. The node
// runs until [Server.Close]; ctx bounds the start and ends the leader's
// duty loop.
func Start(ctx context.Context, c Config) (*Server, error) {
	if c.Bootstrap && c.Join != "" {
		return nil, errors.New("raftserve: Bootstrap and Join are exclusive")
	}
	tlsConf, auth, err := lockdown.Load(c.TLSCert, c.TLSKey, c.TLSCA, c.Users)
	if err != nil {
		return nil, err
	}
	opts := c.Node
	opts.TLS = tlsConf
	node, err := consensus.NewNode(opts)
	if err != nil {
		return nil, err
	}
	// With TLS the node forwards and joins under its own certificate,
	// whose name (the node id) the role table lists as an admin.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}, Timeout: 10 * time.Second}
	h, err := c.Handler(node, client, auth)
	if err != nil {
		return nil, errors.Join(err, node.Close(context.Background()))
	}
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return nil, errors.Join(err, node.Close(context.Background()))
	}
	scheme := "http://"
	if tlsConf != nil {
		// HTTPS; a client certificate is optional, as a caller may
		// authenticate with a bearer token instead.
		conf := tlsConf.Clone()
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		ln, scheme = tls.NewListener(ln, conf), "https://"
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Server{Node: node, Client: client, http: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		httpAddr: ln.Addr().String(), done: make(chan error, 1), leader: make(chan error, 1), cancel: cancel}
	go func() { s.done <- s.http.Serve(ln) }()
	// Whenever this node leads, its API address is published, so that
	// followers can forward to it.
	go func() {
		s.leader <- node.WhileLeader(ctx, func(ctx context.Context) error {
			if node.APIAddr(opts.ID) == s.httpAddr {
				return nil
			}
			return node.SetAPIAddr(ctx, opts.ID, s.httpAddr)
		})
	}()
	switch {
	case c.Bootstrap:
		if err = node.Bootstrap(ctx); errors.Is(err, raft.ErrCantBootstrap) {
			err = nil // restarted with its state
		}
	case c.Join != "":
		err = join(ctx, client, scheme+c.Join, opts.ID, node.Addr(), s.httpAddr)
	}
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// HTTPAddr returns the address the API listens on.
func (s *Server) HTTPAddr() string { return s.httpAddr }

// join asks the member at the base URL through (which forwards to the
// leader) to add this node, retrying while the cluster elects a leader.
func join(ctx context.Context, client *http.Client, through, id, raftAddr, httpAddr string) error {
	body, err := json.Marshal(map[string]string{"id": id, "raft_addr": raftAddr, "api_addr": httpAddr})
	if err != nil {
		return err
	}
	var last error
	for range joinTries {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, through+"/v1/cluster/join", bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			if last = fmt.Errorf("join through %s: %s: %s", through, resp.Status, bytes.TrimSpace(msg)); resp.StatusCode < 500 {
				return last
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(joinWait):
		}
	}
	return last
}

// Close leaves gracefully: a leader hands leadership over first, so that
// the cluster does not wait for an election timeout; then the API and the
// node stop.
func (s *Server) Close() error {
	if s.Node.IsLeader() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.Node.TransferLeadership(ctx, "")
		cancel()
	}
	s.cancel()
	<-s.leader
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	err := s.http.Shutdown(ctx)
	<-s.done
	s.Client.CloseIdleConnections()
	return errors.Join(err, s.Node.Close(ctx))
}

// closeWait bounds a graceful close: past it, Close returns the node's
// error saying it is still shutting down.
const closeWait = 10 * time.Second

// Kill stops the node as a crash would: no leadership handover, the API's
// connections closed at once. The cluster finds the node gone by its
// heartbeats.
func (s *Server) Kill() error {
	err := s.http.Close()
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	err = errors.Join(err, s.Node.Close(ctx))
	s.cancel()
	<-s.leader
	s.Client.CloseIdleConnections()
	return err
}
