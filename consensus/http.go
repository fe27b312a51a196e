package consensus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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
	// Auth, if set, admits only the callers it authenticates, each to
	// what its [Role] allows: 401 for a request without valid
	// credentials, 403 for one its role forbids. Nil means no access
	// control: anyone who reaches the API may read, write, take locks
	// and change the membership, which is only safe on a trusted
	// network.
	Auth *Auth
}

// Handler is a small JSON HTTP API for one [Node], so that several processes
// form a cluster (see examples/raftkv):
//
//	GET    /v1/kv/{key}[?stale=true][&min_revision=rev]  read (linearizable unless stale)
//	GET    /v1/kv?prefix=p[&stale=true][&min_revision=rev]  list keys with a prefix
//	PUT    /v1/kv/{key}      {"value"}     write
//	DELETE /v1/kv/{key}                    delete
//	POST   /v1/create/{key}  {"value"}     create if absent
//	POST   /v1/cas/{key}     {"old","value"} compare-and-swap
//	POST   /v1/lock/{name}   {"owner","ttl_ms"}               acquire
//	POST   /v1/lock/{name}/renew   {"owner","token","ttl_ms"} renew
//	POST   /v1/lock/{name}/release {"owner","token"}          release
//	POST   /v1/lease         {"ttl_ms"}   grant a lease: {"id","ttl_ms","expires"}
//	POST   /v1/lease/{id}/keepalive        renew it
//	DELETE /v1/lease/{id}                  revoke it (and delete its keys)
//	GET    /v1/watch/{key...}[?prefix=true][&from=rev]  watch (server-sent events)
//	POST   /v1/cluster/join  {"id","raft_addr","api_addr","non_voter"}
//	POST   /v1/cluster/remove {"id"}
//	POST   /v1/cluster/transfer {"id"}    hand leadership over ("" = any)
//	GET    /v1/cluster/status
//	GET    /v1/backup                     a backup ([Node.Backup]), application/octet-stream
//	POST   /v1/restore   <a backup>       restore it ([Node.Restore]): its header, as JSON
//
// A restore's body is at most 1 GiB; restore a larger backup with
// [Node.Restore].
//
// A read with min_revision first waits (within the handler's timeout)
// until the node has applied that revision: with stale=true, a follower
// then serves read-your-writes without the leader ([Node.WaitApplied]).
//
// PUT, create and cas take an optional "lease" (a lease id): the key is
// then deleted when the lease ends. A list answers with the store's
// revision in the X-Consensus-Revision header, to watch from its next
// revision.
//
// A watch is a stream of server-sent events (text/event-stream), one per
// revision: "id" is the revision, "event" is "events" and "data" is the
// JSON array of that revision's events ({"type":"put"|"delete","kv":{...}}).
// A client that reconnects with the standard Last-Event-ID header resumes
// after that revision, on any node: followers serve watches from their
// own applied log, in the same order. A watch that cannot start (a
// compacted revision: 410; a future one: 400) answers with a problem
// body; one that fails later (the client fell behind the history) ends
// with an "error" event carrying the problem.
//
// Errors are RFC 9457 problem bodies (application/problem+json:
// "type", "title", "status", "detail") that also carry "error", and
// "leader_id" and "leader_api" when a leader is known, with a 4xx status
// for bad requests (400 malformed, 404 missing, 409 conflict, 410
// compacted, 413 too large) and 503 when no leader can serve it. A follower forwards requests that
// need the leader to the leader's API address, published with
// [Node.SetAPIAddr] (the join endpoint does it), over HTTPS when the
// request came over TLS.
//
// With [HandlerOptions.Auth], every request needs a bearer token or a
// client certificate of a user whose [Role] allows it: reads, lists,
// watches and the status need [RoleReadOnly], writes, locks and leases
// [RoleReadWrite] (on a key or lock name under the user's prefix), and
// join, remove, transfer and backup [RoleAdmin]. A forwarded request keeps
// its caller's identity: the caller's token goes with it, or, for a
// caller with a certificate, the follower's own certificate and
// [ForwardedUserHeader]; the leader authorizes it again.
//
// A Handler is safe for concurrent use.
type Handler struct {
	node *Node
	opts HandlerOptions
	mux  *http.ServeMux
}

// maxRestoreSize bounds the body of POST /v1/restore: 1 GiB.
const maxRestoreSize = 1 << 30

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
		// (Only a Timeout above 10 s lets this bound act first; a test of
		// it would wait 10 s.)
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
		writeProblem(w, http.StatusInternalServerError, errorJSON{Error: fmt.Sprintf("%v: zero Handler (not made by NewHandler)", ErrInvalidConfig)})
		return
	}
	h.mux.ServeHTTP(w, r)
}

// kvJSON is a KV on the wire, with the value as a string.
type kvJSON struct {
	Key            string  `json:"key"`
	Value          string  `json:"value"`
	Revision       uint64  `json:"revision"`
	CreateRevision uint64  `json:"create_revision"`
	Version        uint64  `json:"version"`
	Lease          LeaseID `json:"lease,omitempty"`
}

func toJSON(kv KV) kvJSON {
	return kvJSON{Key: kv.Key, Value: string(kv.Value), Revision: kv.Revision, CreateRevision: kv.CreateRevision, Version: kv.Version, Lease: kv.Lease}
}

type leaseJSON struct {
	Name    string    `json:"name"`
	Owner   string    `json:"owner"`
	Token   uint64    `json:"token"`
	Expires time.Time `json:"expires"`
}

// errorJSON is an RFC 9457 problem body with the package's extension
// members.
type errorJSON struct {
	Type      string  `json:"type"`
	Title     string  `json:"title"`
	Status    int     `json:"status"`
	Detail    string  `json:"detail"`
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
	Lease    LeaseID `json:"lease"`
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
				writeProblem(w, http.StatusRequestEntityTooLarge, errorJSON{Error: fmt.Sprintf("consensus: request body over %d bytes", limit)})
				return
			}
			if err != nil {
				writeProblem(w, http.StatusBadRequest, errorJSON{Error: "consensus: read body: " + err.Error()})
				return
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c.req); err != nil {
				writeProblem(w, http.StatusBadRequest, errorJSON{Error: "consensus: malformed JSON body: " + err.Error()})
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

// userKey is the context key of the authenticated caller.
type userKey struct{}

// guard wraps next with the handler's access control: the caller must
// authenticate and hold need on the key keyOf returns (no key check when
// keyOf is nil).
func (h *Handler) guard(need Role, keyOf func(*http.Request) string, next http.HandlerFunc) http.HandlerFunc {
	if h.opts.Auth == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := h.opts.Auth.Authenticate(r)
		if err == nil {
			err = allow(u, need, keyOf, r)
		}
		if err != nil {
			writeAuthProblem(w, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	}
}

func allow(u User, need Role, keyOf func(*http.Request) string, r *http.Request) error {
	if keyOf == nil {
		if u.Role < need {
			return fmt.Errorf("%w: user %q is %v, %s %s needs %v", ErrForbidden, u.Name, u.Role, r.Method, r.URL.Path, need)
		}
		return nil
	}
	if key := keyOf(r); key != anyKey && !u.Allows(need, key) {
		return fmt.Errorf("%w: user %q is %v on prefix %q, %s %s needs %v on %q", ErrForbidden, u.Name, u.Role, u.Prefix, r.Method, r.URL.Path, need, key)
	}
	return nil
}

// writeAuthProblem answers an authentication (401, with its challenge) or
// authorization (403) failure.
func writeAuthProblem(w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", wwwAuthenticate)
	}
	writeProblem(w, status, errorJSON{Error: err.Error()})
}

func readMode(r *http.Request) ReadMode {
	if s := r.URL.Query().Get("stale"); s == "true" || s == "1" {
		return Stale
	}
	return Linearizable
}

// waitMinRevision waits, for a read with ?min_revision=N, until the node
// has applied revision N.
func (h *Handler) waitMinRevision(ctx context.Context, r *http.Request) error {
	s := r.URL.Query().Get("min_revision")
	if s == "" {
		return nil
	}
	rev, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: min_revision %q is not a revision", ErrInvalidArgument, s)
	}
	return h.node.WaitApplied(ctx, rev)
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

// grantJSON is a LeaseInfo on the wire.
type grantJSON struct {
	ID      LeaseID   `json:"id"`
	TTLms   int64     `json:"ttl_ms"`
	Expires time.Time `json:"expires"`
}

func grantResult(l LeaseInfo, err error) (any, error) {
	return grantJSON{ID: l.ID, TTLms: l.TTL.Milliseconds(), Expires: l.Expires}, err
}

func leaseParam(r *http.Request) (LeaseID, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: lease id %q is not a number", ErrInvalidArgument, r.PathValue("id"))
	}
	return LeaseID(id), nil
}

type statusJSON struct {
	Stats     Stats    `json:"stats"`
	Servers   []Server `json:"servers"`
	LeaderAPI string   `json:"leader_api,omitempty"`
}

// handle registers fn for pattern behind the handler's access control.
func (h *Handler) handle(pattern string, need Role, keyOf func(*http.Request) string, fn http.HandlerFunc) {
	h.mux.HandleFunc(pattern, h.guard(need, keyOf, fn))
}

func pathKey(r *http.Request) string   { return r.PathValue("key") }
func prefixKey(r *http.Request) string { return r.URL.Query().Get("prefix") }
func lockName(r *http.Request) string  { return r.PathValue("name") }

// anyKey, from a key function, asks for the role alone.
const anyKey = "\x00any"

// leaseKeys returns, for a lease's revocation, the longest common prefix
// of the keys attached to it: the revocation deletes them all, so the
// caller needs write access to each. A lease without keys (or an unknown
// one, which the endpoint answers with 404) asks for the role alone.
func (h *Handler) leaseKeys(r *http.Request) string {
	id, err := leaseParam(r)
	if err != nil {
		return anyKey // the endpoint answers 400
	}
	if p, ok := h.node.fsm.leaseKeyPrefix(id); ok {
		return p
	}
	return anyKey
}

func (h *Handler) routes() {
	n := h.node
	ttl := func(c *call) time.Duration { return time.Duration(c.req.TTLms) * time.Millisecond }
	lease := func(c *call) Lease { return Lease{Name: c.r.PathValue("name"), Owner: c.req.Owner, Token: c.req.Token} }
	h.handle("GET /v1/kv/{key...}", RoleReadOnly, pathKey, h.endpoint(false, func(ctx context.Context, c *call) (any, error) {
		if err := h.waitMinRevision(ctx, c.r); err != nil {
			return nil, err
		}
		return kvResult(n.Read(ctx, c.r.PathValue("key"), readMode(c.r)))
	}))
	h.handle("GET /v1/kv", RoleReadOnly, prefixKey, h.endpoint(false, func(ctx context.Context, c *call) (any, error) {
		if err := h.waitMinRevision(ctx, c.r); err != nil {
			return nil, err
		}
		kvs, rev, err := n.Range(ctx, c.r.URL.Query().Get("prefix"), readMode(c.r))
		if err == nil {
			c.w.Header().Set(revisionHeader, strconv.FormatUint(rev, 10))
		}
		out := make([]kvJSON, 0, len(kvs))
		for _, kv := range kvs {
			out = append(out, toJSON(kv))
		}
		return out, err
	}))
	h.handle("PUT /v1/kv/{key...}", RoleReadWrite, pathKey, h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		if err := needs(c.req.Value); err != nil {
			return nil, err
		}
		return kvResult(n.Put(ctx, c.r.PathValue("key"), []byte(*c.req.Value), WithLease(c.req.Lease)))
	}))
	h.handle("DELETE /v1/kv/{key...}", RoleReadWrite, pathKey, h.endpoint(false, func(ctx context.Context, c *call) (any, error) {
		return kvResult(n.Delete(ctx, c.r.PathValue("key")))
	}))
	h.handle("POST /v1/create/{key...}", RoleReadWrite, pathKey, h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		if err := needs(c.req.Value); err != nil {
			return nil, err
		}
		return kvResult(n.Create(ctx, c.r.PathValue("key"), []byte(*c.req.Value), WithLease(c.req.Lease)))
	}))
	h.handle("POST /v1/cas/{key...}", RoleReadWrite, pathKey, h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		if err := needs(c.req.Value, c.req.Old); err != nil {
			return nil, err
		}
		return kvResult(n.CompareAndSwap(ctx, c.r.PathValue("key"), []byte(*c.req.Old), []byte(*c.req.Value), WithLease(c.req.Lease)))
	}))
	h.handle("POST /v1/lock/{name}", RoleReadWrite, lockName, h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return leaseResult(n.AcquireLock(ctx, c.r.PathValue("name"), c.req.Owner, ttl(c)))
	}))
	h.handle("POST /v1/lock/{name}/renew", RoleReadWrite, lockName, h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return leaseResult(n.RenewLock(ctx, lease(c), ttl(c)))
	}))
	h.handle("POST /v1/lock/{name}/release", RoleReadWrite, lockName, h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return struct{}{}, n.ReleaseLock(ctx, lease(c))
	}))
	h.handle("POST /v1/lease", RoleReadWrite, nil, h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return grantResult(n.GrantLease(ctx, ttl(c)))
	}))
	h.handle("POST /v1/lease/{id}/keepalive", RoleReadWrite, nil, h.endpoint(false, func(ctx context.Context, c *call) (any, error) {
		id, err := leaseParam(c.r)
		if err != nil {
			return nil, err
		}
		return grantResult(n.KeepAlive(ctx, id))
	}))
	h.handle("DELETE /v1/lease/{id}", RoleReadWrite, h.leaseKeys, h.endpoint(false, func(ctx context.Context, c *call) (any, error) {
		id, err := leaseParam(c.r)
		if err != nil {
			return nil, err
		}
		return struct{}{}, n.RevokeLease(ctx, id)
	}))
	h.handle("GET /v1/watch/{key...}", RoleReadOnly, pathKey, h.watch)
	h.handle("POST /v1/cluster/join", RoleAdmin, nil, h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
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
	h.handle("POST /v1/cluster/remove", RoleAdmin, nil, h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return struct{}{}, n.RemoveServer(ctx, c.req.ID)
	}))
	h.handle("POST /v1/cluster/transfer", RoleAdmin, nil, h.endpoint(true, func(ctx context.Context, c *call) (any, error) {
		return struct{}{}, n.TransferLeadership(ctx, c.req.ID)
	}))
	h.handle("GET /v1/backup", RoleAdmin, nil, func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
		defer cancel()
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := n.Backup(ctx, w); err != nil {
			h.reply(ctx, &call{w: w, r: r}, nil, err)
		}
	})
	h.handle("POST /v1/restore", RoleAdmin, nil, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRestoreSize))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, http.StatusRequestEntityTooLarge, errorJSON{Error: fmt.Sprintf("consensus: backup over %d bytes", int64(maxRestoreSize))})
			return
		}
		if err != nil {
			writeProblem(w, http.StatusBadRequest, errorJSON{Error: "consensus: read body: " + err.Error()})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
		defer cancel()
		info, err := n.Restore(ctx, bytes.NewReader(body))
		h.reply(ctx, &call{w: w, r: r, body: body}, info, err)
	})
	h.handle("GET /v1/cluster/status", RoleReadOnly, nil, h.endpoint(false, func(ctx context.Context, c *call) (any, error) {
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
		writeProblem(c.w, http.StatusServiceUnavailable, errorJSON{Error: err.Error(), LeaderID: nl.LeaderID, LeaderAPI: api})
		return
	}
	if errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrForbidden) {
		writeAuthProblem(c.w, err)
		return
	}
	body := errorJSON{Error: err.Error()}
	var cf *CompareFailedError
	if errors.As(err, &cf) {
		cur := toJSON(cf.Current)
		body.Current = &cur
	}
	writeProblem(c.w, statusOf(err), body)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrKeyNotFound), errors.Is(err, ErrUnknownNode), errors.Is(err, ErrLeaseNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrKeyExists), errors.Is(err, ErrCompareFailed), errors.Is(err, ErrLockHeld), errors.Is(err, ErrLeaseLost):
		return http.StatusConflict
	case errors.Is(err, ErrValueTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrCompacted):
		return http.StatusGone
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrDuplicateServer), errors.Is(err, ErrFutureRevision), errors.Is(err, ErrInvalidBackup):
		return http.StatusBadRequest
	case errors.Is(err, ErrIndeterminate), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// forward replays the call against the leader's API and copies its answer.
// It reports false if the leader could not be reached. ctx carries the
// handler's timeout, which bounds the forwarded request even when the
// client has none.
func (h *Handler) forward(ctx context.Context, c *call, api string) bool {
	req, err := http.NewRequestWithContext(ctx, c.r.Method, scheme(c.r)+api+c.r.URL.RequestURI(), bytes.NewReader(c.body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(forwardedHeader, h.node.ID())
	forwardIdentity(c.r, req)
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	c.w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	if v := resp.Header.Get("WWW-Authenticate"); v != "" {
		c.w.Header().Set("WWW-Authenticate", v)
	}
	c.w.Header().Set(forwardedHeader, api)
	c.w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(c.w, resp.Body)
	return true
}

// scheme returns the scheme to forward r with: the cluster's API speaks
// HTTPS on every node or on none.
func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https://"
	}
	return "http://"
}

// forwardIdentity makes the forwarded request to carry the identity of
// the caller of r: its bearer token, or, for a caller authenticated by
// certificate, its name under [ForwardedUserHeader].
func forwardIdentity(r, to *http.Request) {
	if a := r.Header.Get("Authorization"); a != "" {
		to.Header.Set("Authorization", a)
		return
	}
	if u, ok := r.Context().Value(userKey{}).(User); ok {
		to.Header.Set(ForwardedUserHeader, u.Name)
	}
}

// writeProblem writes p as an RFC 9457 problem body.
func writeProblem(w http.ResponseWriter, status int, p errorJSON) {
	p.Type, p.Title, p.Status, p.Detail = "about:blank", http.StatusText(status), status, p.Error
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// revisionHeader carries the store's revision on a list's answer.
const revisionHeader = "X-Consensus-Revision"

// eventJSON is an Event on the wire.
type eventJSON struct {
	Type string `json:"type"`
	KV   kvJSON `json:"kv"`
}

// watch streams a [Watcher]'s events as server-sent events, one message
// per revision, until the client goes away, the node closes or the watch
// fails.
func (h *Handler) watch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := WatchOptions{Prefix: q.Get("prefix") == "true" || q.Get("prefix") == "1"}
	from := q.Get("from")
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		rev, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, errorJSON{Error: fmt.Sprintf("%v: Last-Event-ID %q is not a revision", ErrInvalidArgument, last)})
			return
		}
		from = strconv.FormatUint(rev+1, 10)
	}
	if from != "" {
		rev, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, errorJSON{Error: fmt.Sprintf("%v: from %q is not a revision", ErrInvalidArgument, from)})
			return
		}
		opts.From = rev
	}
	wt, err := h.node.Watch(r.PathValue("key"), opts)
	if err != nil {
		writeProblem(w, statusOf(err), errorJSON{Error: err.Error()})
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	var buf bytes.Buffer
	for {
		evs, err := wt.Recv(r.Context())
		if err != nil {
			if r.Context().Err() == nil {
				p := errorJSON{Error: err.Error()}
				p.Type, p.Title, p.Status, p.Detail = "about:blank", http.StatusText(statusOf(err)), statusOf(err), p.Error
				b, _ := json.Marshal(p)
				fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
				_ = rc.Flush()
			}
			return
		}
		buf.Reset()
		for len(evs) > 0 {
			rev := evs[0].KV.Revision
			batch := make([]eventJSON, 0, len(evs))
			for len(evs) > 0 && evs[0].KV.Revision == rev {
				batch = append(batch, eventJSON{Type: evs[0].Type.String(), KV: toJSON(evs[0].KV)})
				evs = evs[1:]
			}
			b, _ := json.Marshal(batch)
			fmt.Fprintf(&buf, "id: %d\nevent: events\ndata: %s\n\n", rev, b)
		}
		if _, err := w.Write(buf.Bytes()); err != nil || rc.Flush() != nil {
			return
		}
	}
}
