package consensus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HandlerOptions configures a [Handler]. The zero value forwards requests
// to the leader with a 10 s client and bounds each request by 5 s.
type HandlerOptions struct {
	// Client forwards requests to the leader's API. Nil means a client
	// with a 10 s timeout.
	Client *http.Client
	// NoForward makes followers answer 503 with the leader's identity
	// instead of forwarding writes and linearizable reads to the leader.
	NoForward bool
	// Timeout bounds each request, including its forwarding to the
	// leader. Zero means 5 s.
	Timeout time.Duration
}

// Handler is a small JSON HTTP API for one [Node], so that several processes
// form a cluster (see examples/raftkv):
//
//	GET    /v1/kv/{key}[?stale=true]       read (linearizable unless stale)
//	GET    /v1/kv?prefix=p[&stale=true]    list keys with a prefix
//	PUT    /v1/kv/{key}      {"value"}     write
//	DELETE /v1/kv/{key}                    delete
//	POST   /v1/create/{key}  {"value"}     create if absent
//	POST   /v1/cas/{key}     {"old","value"} compare-and-swap
//	POST   /v1/lock/{name}   {"owner","ttl_ms"}               acquire
//	POST   /v1/lock/{name}/renew   {"owner","token","ttl_ms"} renew
//	POST   /v1/lock/{name}/release {"owner","token"}          release
//	POST   /v1/cluster/join  {"id","raft_addr","api_addr","non_voter"}
//	POST   /v1/cluster/remove {"id"}
//	POST   /v1/cluster/transfer {"id"}    hand leadership over ("" = any)
//	GET    /v1/cluster/status
//
// Errors are JSON {"error", "leader_id", "leader_api"} with a 4xx status for
// bad requests (400 malformed, 404 missing, 409 conflict, 413 too large)
// and 503 when no leader can serve it. A follower forwards requests that
// need the leader to the leader's API address, published with
// [Node.SetAPIAddr] (the join endpoint does it).
//
// A Handler is safe for concurrent use.
type Handler struct {
	node *Node
	opts HandlerOptions
	mux  *http.ServeMux
}

// forwardedHeader marks a request a follower forwarded, so it is forwarded
// at most once.
const forwardedHeader = "X-Consensus-Forwarded"

// NewHandler returns the HTTP API of n.
func NewHandler(n *Node, opts HandlerOptions) (*Handler, error) {
	if n == nil {
		return nil, fmt.Errorf("%w: nil node", ErrInvalidConfig)
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative handler timeout %v", ErrInvalidConfig, opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	h := &Handler{node: n, opts: opts, mux: http.NewServeMux()}
	h.routes()
	return h, nil
}

// ServeHTTP implements http.Handler. A Handler not made by [NewHandler]
// answers every request with 500 and a JSON error.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h == nil || h.mux == nil {
		writeJSON(w, http.StatusInternalServerError, errorJSON{Error: fmt.Sprintf("%v: zero Handler (not made by NewHandler)", ErrInvalidConfig)})
		return
	}
	h.mux.ServeHTTP(w, r)
}

// kvJSON is a KV on the wire, with the value as a string.
type kvJSON struct {
	Key            string `json:"key"`
	Value          string `json:"value"`
	Revision       uint64 `json:"revision"`
	CreateRevision uint64 `json:"create_revision"`
	Version        uint64 `json:"version"`
}

func toJSON(kv KV) kvJSON {
	return kvJSON{Key: kv.Key, Value: string(kv.Value), Revision: kv.Revision, CreateRevision: kv.CreateRevision, Version: kv.Version}
}

type leaseJSON struct {
	Name    string    `json:"name"`
	Owner   string    `json:"owner"`
	Token   uint64    `json:"token"`
	Expires time.Time `json:"expires"`
}

type errorJSON struct {
	Error     string  `json:"error"`
	LeaderID  string  `json:"leader_id,omitempty"`
	LeaderAPI string  `json:"leader_api,omitempty"`
	Current   *kvJSON `json:"current,omitempty"`
}

// request is every JSON body the API accepts.
type request struct {
	Value    *string `json:"value"`
	Old      *string `json:"old"`
	Owner    string  `json:"owner"`
	Token    uint64  `json:"token"`
	TTLms    int64   `json:"ttl_ms"`
	ID       string  `json:"id"`
	RaftAddr string  `json:"raft_addr"`
	APIAddr  string  `json:"api_addr"`
	NonVoter bool    `json:"non_voter"`
}

// call is one request in flight: its body, read once so it can be
// forwarded.
type call struct {
	w    http.ResponseWriter
	r    *http.Request
	body []byte
	req  request
}

// endpoint adapts fn to an http.HandlerFunc: it reads and decodes the body
// (when the endpoint takes one), bounds the request by the handler's
// timeout, and writes fn's result or error.
func (h *Handler) endpoint(hasBody bool, fn func(ctx context.Context, c *call) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := &call{w: w, r: r}
		if hasBody {
			limit := int64(2*h.node.opts.MaxValueSize + h.node.opts.MaxKeySize + 4096)
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeJSON(w, http.StatusRequestEntityTooLarge, errorJSON{Error: fmt.Sprintf("consensus: request body over %d bytes", limit)})
				return
			}
			if err != nil {
				writeJSON(w, http.StatusBadRequest, errorJSON{Error: "consensus: read body: " + err.Error()})
				return
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c.req); err != nil {
				writeJSON(w, http.StatusBadRequest, errorJSON{Error: "consensus: malformed JSON body: " + err.Error()})
				return
			}
			c.body = body
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
		defer cancel()
		v, err := fn(ctx, c)
		h.reply(ctx, c, v, err)
	}
}

func readMode(r *http.Request) ReadMode {
	if s := r.URL.Query().Get("stale"); s == "true" || s == "1" {
		return Stale
	}
	return Linearizable
}

func needs(fields ...*string) error {
	for _, f := range fields {
		if f == nil {
			return fmt.Errorf(`%w: body needs "value" (and "old" for compare-and-swap)`, ErrInvalidArgument)
		}
	}
	return nil
}

func leaseResult(l Lease, err error) (any, error) {
	return leaseJSON{Name: l.Name, Owner: l.Owner, Token: l.Token, Expires: l.Expires()}, err
}

func kvResult(kv KV, err error) (any, error) { return toJSON(kv), err }

type statusJSON struct {
	Stats     Stats    `json:"stats"`
	Servers   []Server `json:"servers"`
	LeaderAPI string   `json:"leader_api,omitempty"`
}

func (h *Handler) routes() {
	n := h.node
	ttl := func(c *call) time.Duration { return time.Duration(c.req.TTLms) * time.Millisecond }
	lease := func(c *call) Lease { return Lease{Name: c.r.PathValue("name"), Owner: c.req.Owner, Token: c.req.Token} }
	h.mux.HandleFunc("GET /v1/kv/{key...}", h.endpoint(false, func(ctx context.Context, c *call) (any, error) {
		return kvResult(n.Read(ctx, c.r.PathValue("key"), readMode(c.r)))
	}))
	h.mux.HandleFunc("GET /v1/kv", h.endpoint(false, func(ctx context.Context, c *call) (any, error) {
		kvs, err := n.List(ctx, c.r.URL.Query().Get("prefix"), readMode(c.r))
		out := make([]kvJSON, 0, len(kvs))
		for _, kv := range kvs {
			out = append(out, toJSON(kv))
		}
		return out, err
	}))
	h.mux.HandleFunc("PUT /v1/kv/{key...}", h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		if err := needs(c.req.Value); err != nil {
			return nil, err
		}
		return kvResult(n.Put(ctx, c.r.PathValue("key"), []byte(*c.req.Value)))
	}))
	h.mux.HandleFunc("DELETE /v1/kv/{key...}", h.endpoint(false, func(ctx context.Context, c *call) (any, error) {
		return kvResult(n.Delete(ctx, c.r.PathValue("key")))
	}))
	h.mux.HandleFunc("POST /v1/create/{key...}", h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		if err := needs(c.req.Value); err != nil {
			return nil, err
		}
		return kvResult(n.Create(ctx, c.r.PathValue("key"), []byte(*c.req.Value)))
	}))
	h.mux.HandleFunc("POST /v1/cas/{key...}", h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		if err := needs(c.req.Value, c.req.Old); err != nil {
			return nil, err
		}
		return kvResult(n.CompareAndSwap(ctx, c.r.PathValue("key"), []byte(*c.req.Old), []byte(*c.req.Value)))
	}))
	h.mux.HandleFunc("POST /v1/lock/{name}", h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return leaseResult(n.AcquireLock(ctx, c.r.PathValue("name"), c.req.Owner, ttl(c)))
	}))
	h.mux.HandleFunc("POST /v1/lock/{name}/renew", h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return leaseResult(n.RenewLock(ctx, lease(c), ttl(c)))
	}))
	h.mux.HandleFunc("POST /v1/lock/{name}/release", h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return struct{}{}, n.ReleaseLock(ctx, lease(c))
	}))
	h.mux.HandleFunc("POST /v1/cluster/join", h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		var err error
		if c.req.NonVoter {
			err = n.AddNonVoter(ctx, c.req.ID, c.req.RaftAddr)
		} else {
			err = n.AddVoter(ctx, c.req.ID, c.req.RaftAddr)
		}
		if err == nil && c.req.APIAddr != "" {
			err = n.SetAPIAddr(ctx, c.req.ID, c.req.APIAddr)
		}
		return struct{}{}, err
	}))
	h.mux.HandleFunc("POST /v1/cluster/remove", h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return struct{}{}, n.RemoveServer(ctx, c.req.ID)
	}))
	h.mux.HandleFunc("POST /v1/cluster/transfer", h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return struct{}{}, n.TransferLeadership(ctx, c.req.ID)
	}))
	h.mux.HandleFunc("GET /v1/cluster/status", h.endpoint(false, func(ctx context.Context, c *call) (any, error) {
		servers, err := n.Servers(ctx)
		st := n.Stats()
		return statusJSON{Stats: st, Servers: servers, LeaderAPI: n.APIAddr(st.LeaderID)}, err
	}))
}

// reply writes v, or maps err to a status; a NotLeader error is forwarded
// to the leader when possible.
func (h *Handler) reply(ctx context.Context, c *call, v any, err error) {
	if err == nil {
		writeJSON(c.w, http.StatusOK, v)
		return
	}
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		api := h.node.APIAddr(nl.LeaderID)
		if !h.opts.NoForward && api != "" && c.r.Header.Get(forwardedHeader) == "" {
			if h.forward(ctx, c, api) {
				return
			}
		}
		writeJSON(c.w, http.StatusServiceUnavailable, errorJSON{Error: err.Error(), LeaderID: nl.LeaderID, LeaderAPI: api})
		return
	}
	body := errorJSON{Error: err.Error()}
	var cf *CompareFailedError
	if errors.As(err, &cf) {
		cur := toJSON(cf.Current)
		body.Current = &cur
	}
	writeJSON(c.w, statusOf(err), body)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrKeyNotFound), errors.Is(err, ErrUnknownNode):
		return http.StatusNotFound
	case errors.Is(err, ErrKeyExists), errors.Is(err, ErrCompareFailed), errors.Is(err, ErrLockHeld), errors.Is(err, ErrLeaseLost):
		return http.StatusConflict
	case errors.Is(err, ErrValueTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrDuplicateServer):
		return http.StatusBadRequest
	case errors.Is(err, ErrIndeterminate), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// forward replays the call against the leader's API and copies its answer.
// It reports false if the leader could not be reached. ctx carries the
// handler's timeout, which bounds the forwarded request even when the
// client has none.
func (h *Handler) forward(ctx context.Context, c *call, api string) bool {
	req, err := http.NewRequestWithContext(ctx, c.r.Method, "http://"+api+c.r.URL.RequestURI(), bytes.NewReader(c.body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(forwardedHeader, h.node.ID())
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	c.w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	c.w.Header().Set(forwardedHeader, api)
	c.w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(c.w, resp.Body)
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
