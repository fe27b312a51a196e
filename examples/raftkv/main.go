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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/examples/internal/lockdown"
	"github.com/sysdesign-go/sysdesign/examples/internal/raftserve"
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
	tlsCert, tlsKey, tlsCA, users                 string
	genTLS, genNames                              string
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
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate of this node, for mutual TLS between nodes and HTTPS (with -tls-key and -tls-ca)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM certificate of the cluster's CA, which verifies peers and client certificates")
	fs.StringVar(&c.users, "users", "", `JSON role table, [{"name","token","role":"read-only|read-write|admin","prefix"}]: access control (needs TLS)`)
	fs.StringVar(&c.genTLS, "gen-tls", "", "write a new CA and a certificate for each of -names into this directory, and exit")
	fs.StringVar(&c.genNames, "names", "n1,n2,n3", "with -gen-tls: comma-separated names (node ids, users) to issue certificates to")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.genTLS != "" {
		return c, nil
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
	case c.users != "" && c.tlsCert == "" && c.tlsKey == "" && c.tlsCA == "":
		return c, errors.New("-users needs -tls-cert, -tls-key and -tls-ca: bearer tokens over plain HTTP can be read off the wire")
	}
	return c, nil
}

// start starts node c with the store's API.
func start(ctx context.Context, c config) (*raftserve.Server, error) {
	timing := consensus.LANTiming()
	if c.timing == "default" {
		timing = consensus.DefaultTiming()
	}
	return raftserve.Start(ctx, raftserve.Config{
		Node:     consensus.Options{ID: c.id, Addr: c.raftAddr, DataDir: c.dataDir, Timing: timing},
		HTTPAddr: c.httpAddr, Bootstrap: c.bootstrap, Join: c.join,
		TLSCert: c.tlsCert, TLSKey: c.tlsKey, TLSCA: c.tlsCA, Users: c.users,
		Handler: func(node *consensus.Node, client *http.Client, auth *consensus.Auth) (http.Handler, error) {
			return consensus.NewHandler(node, consensus.HandlerOptions{Client: client, Auth: auth})
		},
	})
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if c.genTLS != "" {
		names := strings.Split(c.genNames, ",")
		if err := lockdown.WriteCerts(c.genTLS, names); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "raftkv: wrote ca.crt, ca.key and a certificate and key for each of %v to %s\n", names, c.genTLS)
		return nil
	}
	s, err := start(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "raftkv: node %s: raft %s, http %s, data %s\n", c.id, s.Node.Addr(), s.HTTPAddr(), c.dataDir)
	<-ctx.Done()
	fmt.Fprintf(stdout, "raftkv: node %s shutting down\n", c.id)
	return s.Close()
}
