// Command replica runs one node of a leaderless, Dynamo-style replicated
// key-value store (the shard/replica package) with a JSON HTTP API: each
// process is a replica and a coordinator, and every request names its
// consistency level. Run three on loopback, cut one off, and watch both
// sides accept writes at ONE and the conflict come back as siblings; see
// README.md.
//
// Guide: "Distributed Systems → CAP Theorem" (AP systems: available during a
// partition, may return inconsistent data); "Distributed Systems →
// Consistency Models" (quorum writes, eventual consistency, vector clocks).
//
//	go run ./examples/replica -name n1 -http 127.0.0.1:8101 -peers n1=127.0.0.1:8101,n2=127.0.0.1:8102,n3=127.0.0.1:8103
package main

import (
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
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sysdesign-go/sysdesign/shard"
	"github.com/sysdesign-go/sysdesign/shard/replica"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "replica:", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	name  string
	http  string
	peers map[string]string // name → host:port, this node included
}

func parse(args []string) (config, error) {
	fs := flag.NewFlagSet("replica", flag.ContinueOnError)
	var cfg config
	var peers string
	fs.StringVar(&cfg.name, "name", "", "this node's name, one of -peers")
	fs.StringVar(&cfg.http, "http", "", "address to serve the API and the replication protocol on")
	fs.StringVar(&peers, "peers", "", "every node of the cluster as name=host:port, comma-separated")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.peers = map[string]string{}
	for _, p := range strings.Split(peers, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || name == "" || addr == "" {
			return cfg, fmt.Errorf("-peers: %q is not name=host:port", p)
		}
		if _, dup := cfg.peers[name]; dup {
			return cfg, fmt.Errorf("-peers: %q twice", name)
		}
		cfg.peers[name] = addr
	}
	switch {
	case cfg.name == "" || cfg.http == "":
		return cfg, errors.New("-name and -http are required")
	case cfg.peers[cfg.name] == "":
		return cfg, fmt.Errorf("-name %q is not in -peers", cfg.name)
	}
	return cfg, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.http)
	if err != nil {
		return err
	}
	srv, err := newServer(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	hs := &http.Server{Handler: srv.routes(), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "replica %s serving on %s\n", cfg.name, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(hs.Shutdown(shutdown), srv.close(shutdown))
}

// server is one process: a node, the coordinator its API uses, and a
// switch that cuts it off from the other nodes.
type server struct {
	name     string
	peers    []string
	node     *replica.Node
	coord    *replica.Coordinator
	isolated atomic.Bool
}

// isolating is the process's transport: its own node in-process, the
// others over HTTP unless the process is cut off.
type isolating struct {
	s    *server
	http *replica.HTTPTransport
}

func (t isolating) Call(ctx context.Context, to string, req *replica.Request) (*replica.Response, error) {
	if to == t.s.name {
		return t.s.node.Handle(ctx, req)
	}
	if t.s.isolated.Load() {
		return nil, fmt.Errorf("%w: %s is cut off from %s", replica.ErrNodeDown, t.s.name, to)
	}
	return t.http.Call(ctx, to, req)
}

func newServer(cfg config) (*server, error) {
	s := &server{name: cfg.name}
	urls := map[string]string{}
	for name, addr := range cfg.peers {
		s.peers = append(s.peers, name)
		urls[name] = "http://" + addr
	}
	slices.Sort(s.peers)
	ring, err := shard.NewRing(shard.NodesNamed(s.peers...), shard.RingOptions{})
	if err != nil {
		return nil, err
	}
	n := min(3, len(s.peers))
	tr := isolating{s: s, http: &replica.HTTPTransport{Nodes: urls, Client: &http.Client{Timeout: 2 * time.Second}}}
	if s.node, err = replica.NewNode(replica.NodeConfig{Name: cfg.name, Placement: ring, N: n, Transport: tr}); err != nil {
		return nil, err
	}
	s.coord, err = replica.NewCoordinator(replica.Config{Placement: ring, Transport: tr, N: n, Timeout: time.Second, SloppyQuorum: true})
	return s, err
}

func (s *server) close(ctx context.Context) error { return s.coord.Close(ctx) }

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	peer := replica.NewHTTPHandler(s.node)
	mux.HandleFunc("POST "+replica.HTTPPath, func(w http.ResponseWriter, r *http.Request) {
		if s.isolated.Load() {
			http.Error(w, "cut off", http.StatusServiceUnavailable)
			return
		}
		peer.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /v1/kv/{key}", s.get)
	mux.HandleFunc("PUT /v1/kv/{key}", s.put)
	mux.HandleFunc("POST /v1/admin/isolate", func(w http.ResponseWriter, r *http.Request) {
		s.isolated.Store(true)
		reply(w, http.StatusOK, map[string]any{"node": s.name, "isolated": true})
	})
	mux.HandleFunc("POST /v1/admin/heal", func(w http.ResponseWriter, r *http.Request) {
		s.isolated.Store(false)
		reply(w, http.StatusOK, map[string]any{"node": s.name, "isolated": false})
	})
	mux.HandleFunc("POST /v1/admin/repair", s.repair)
	return mux
}

// options reads ?level= (ONE, QUORUM or ALL; QUORUM when absent).
func options(r *http.Request) (replica.Options, error) {
	switch l := strings.ToUpper(r.URL.Query().Get("level")); l {
	case "", "QUORUM":
		return replica.Options{Level: replica.Quorum}, nil
	case "ONE":
		return replica.Options{Level: replica.One}, nil
	case "ALL":
		return replica.Options{Level: replica.All}, nil
	default:
		return replica.Options{}, fmt.Errorf("%w: level %q (want ONE, QUORUM or ALL)", replica.ErrInvalidLevel, l)
	}
}

// answer is a read's or a write's JSON reply.
type answer struct {
	Key     string          `json:"key"`
	Values  []string        `json:"values"`
	Context replica.Context `json:"context"`
	Level   string          `json:"level"`
	Node    string          `json:"coordinator"`
}

func (s *server) answer(key string, opts replica.Options, res *replica.Result) answer {
	a := answer{Key: key, Context: res.Context, Level: opts.Level.String(), Node: s.name}
	for _, v := range res.Values {
		a.Values = append(a.Values, string(v))
	}
	return a
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	opts, err := options(r)
	if err != nil {
		fail(w, err)
		return
	}
	res, err := s.coord.Get(r.Context(), key, opts)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, s.answer(key, opts, res))
}

func (s *server) put(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	opts, err := options(r)
	if err != nil {
		fail(w, err)
		return
	}
	var cc replica.Context
	if h := r.Header.Get("X-Context"); h != "" {
		if err := cc.UnmarshalText([]byte(h)); err != nil {
			fail(w, err)
			return
		}
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, replica.DefaultMaxValueSize+1))
	if err != nil {
		fail(w, fmt.Errorf("%w: %w", replica.ErrValueTooLarge, err))
		return
	}
	res, err := s.coord.Put(r.Context(), key, value, cc, opts)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, s.answer(key, opts, res))
}

// repair runs hinted handoff and anti-entropy with every other node.
func (s *server) repair(w http.ResponseWriter, r *http.Request) {
	handed, err := s.node.HandOff(r.Context())
	out := map[string]any{"node": s.name, "hints_delivered": handed}
	repaired := map[string]int{}
	for _, p := range s.peers {
		if p == s.name || err != nil {
			continue
		}
		var st replica.AntiEntropyStats
		st, err = s.node.AntiEntropy(r.Context(), p)
		repaired[p] = st.Keys
	}
	if err != nil {
		fail(w, err)
		return
	}
	out["keys_repaired"] = repaired
	reply(w, http.StatusOK, out)
}

func fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, replica.ErrInvalidArgument):
		code = http.StatusBadRequest
	case errors.Is(err, replica.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, replica.ErrUnavailable), errors.Is(err, replica.ErrSessionUnavailable), errors.Is(err, replica.ErrNodeDown):
		code = http.StatusServiceUnavailable
	}
	reply(w, code, map[string]string{"error": err.Error()})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
