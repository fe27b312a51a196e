// Command raftkv runs one node of a replicated, linearizable key-value store
// on Raft, with a JSON HTTP API. Run three of them to form a cluster that
// survives the loss of any one; see README.md.
//
// Guide: "Distributed Systems → Distributed Consensus" (Raft: leader
// election, log replication); "Distributed Systems → Consistency Models"
// (strong consistency).
//
//	raftkv -id n1 -raft 127.0.0.1:7001 -http 127.0.0.1:8001 -data /tmp/raftkv-data/n1 -bootstrap
//	raftkv -id n2 -raft 127.0.0.1:7002 -http 127.0.0.1:8002 -data /tmp/raftkv-data/n2 -join 127.0.0.1:8001
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sysdesign-go/sysdesign/consensus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "raftkv:", err)
		os.Exit(1)
	}
}

// config is one node's command line.
type config struct {
	id, raftAddr, httpAddr, dataDir, join, timing string
	bootstrap                                     bool
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("raftkv", flag.ContinueOnError)
	fs.StringVar(&c.id, "id", "", "node id, unique and stable (required)")
	fs.StringVar(&c.raftAddr, "raft", "127.0.0.1:7001", "Raft TCP address (host:port) peers connect to")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:8001", "HTTP API address")
	fs.StringVar(&c.dataDir, "data", "", "data directory for the log and snapshots (required)")
	fs.StringVar(&c.join, "join", "", "HTTP address of any cluster member to join through")
	fs.StringVar(&c.timing, "timing", "lan", `Raft timers: "lan" (50 ms, with the failure detector) or "default" (hashicorp/raft's 1 s)`)
	fs.BoolVar(&c.bootstrap, "bootstrap", false, "start a new cluster with this node as its first member")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.id == "":
		return c, errors.New("-id is required")
	case c.dataDir == "":
		return c, errors.New("-data is required")
	case c.bootstrap && c.join != "":
		return c, errors.New("-bootstrap and -join are exclusive")
	case c.timing != "lan" && c.timing != "default":
		return c, fmt.Errorf("-timing %q: want lan or default", c.timing)
	}
	return c, nil
}

// server is a running node with its HTTP API.
type server struct {
	node     *consensus.Node
	http     *http.Server
	httpAddr string
	done     chan error // the HTTP server's exit
	leader   chan error // the leader-duty loop's exit
	cancel   context.CancelFunc
	client   *http.Client // forwards to the leader and joins
}

func start(ctx context.Context, c config) (*server, error) {
	timing := consensus.LANTiming()
	if c.timing == "default" {
		timing = consensus.DefaultTiming()
	}
	node, err := consensus.NewNode(consensus.Options{ID: c.id, Addr: c.raftAddr, DataDir: c.dataDir, Timing: timing})
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	h, err := consensus.NewHandler(node, consensus.HandlerOptions{Client: client})
	if err != nil {
		_ = node.Close(context.Background())
		return nil, err
	}
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		_ = node.Close(context.Background())
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &server{node: node, http: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, httpAddr: ln.Addr().String(),
		done: make(chan error, 1), leader: make(chan error, 1), cancel: cancel, client: client}
	go func() { s.done <- s.http.Serve(ln) }()
	// Whenever this node leads, make sure its API address is published so
	// followers can forward to it.
	go func() {
		s.leader <- node.WhileLeader(ctx, func(ctx context.Context) error {
			if node.APIAddr(c.id) == s.httpAddr {
				return nil
			}
			return node.SetAPIAddr(ctx, c.id, s.httpAddr)
		})
	}()
	switch {
	case c.bootstrap:
		err = node.Bootstrap(ctx)
		if errors.Is(err, raft.ErrCantBootstrap) {
			err = nil // restarted with existing state
		}
	case c.join != "":
		err = join(ctx, client, c.join, c.id, node.Addr(), s.httpAddr)
	}
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// join asks an existing member (forwarded to the leader) to add this node,
// retrying while the cluster elects a leader.
func join(ctx context.Context, client *http.Client, through, id, raftAddr, httpAddr string) error {
	body, _ := json.Marshal(map[string]string{"id": id, "raft_addr": raftAddr, "api_addr": httpAddr})
	var last error
	for range 50 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+through+"/v1/cluster/join", bytes.NewReader(body))
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
			last = fmt.Errorf("join through %s: %s: %s", through, resp.Status, bytes.TrimSpace(msg))
			if resp.StatusCode < 500 {
				return last
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return last
}

// Close leaves gracefully: a leader hands leadership over first, so the
// cluster does not wait for an election timeout.
func (s *server) Close() error {
	if s.node.IsLeader() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.node.TransferLeadership(ctx, "")
		cancel()
	}
	s.cancel()
	<-s.leader
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	<-s.done
	s.client.CloseIdleConnections()
	return errors.Join(err, s.node.Close(context.Background()))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	s, err := start(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "raftkv: node %s: raft %s, http %s, data %s\n", c.id, s.node.Addr(), s.httpAddr, c.dataDir)
	<-ctx.Done()
	fmt.Fprintf(stdout, "raftkv: node %s shutting down\n", c.id)
	return s.Close()
}
