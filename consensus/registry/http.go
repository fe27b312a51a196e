package registry

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

	"github.com/sysdesign-go/sysdesign/consensus"
)

// Handler is the registry's HTTP API, for instances and clients in other
// processes ([Client] speaks it):
//
//	PUT    /v1/services/{service}/instances/{id}  {"addr","zone","weight","meta","ttl_ms"}  register
//	DELETE /v1/services/{service}/instances/{id}  deregister
//	POST   /v1/registrations/{lease}/heartbeat    renew
//	GET    /v1/services/{service}[?stale=true]    {"instances","revision"}
//	GET    /v1/services/{service}/watch           server-sent events
//
// A watch is a stream of server-sent events (text/event-stream), each
// event "instances" carrying the service's complete set as JSON: the
// first at once, then one after every change. Any node serves it, from
// its own log; a stream that fails ends with an "error" event.
//
// Errors are RFC 9457 problem bodies (application/problem+json) with a
// 4xx status for bad input (400 invalid, 404 not registered, 409 duplicate
// instance, 413 body too large). A follower forwards a request that
// needs the leader to the leader's API address (published with
// [consensus.Node.SetAPIAddr]); when it cannot, it answers 503 with
// "leader_id" and "leader_api", which [Client] follows.
//
// With [HandlerOptions.Auth], every request needs a bearer token or a
// client certificate of a user whose role allows it
// ([consensus.User.Allows], the service name standing for the key):
// lists and watches need [consensus.RoleReadOnly], registrations,
// deregistrations and heartbeats [consensus.RoleReadWrite]; 401 (with a
// WWW-Authenticate challenge) for a request without valid credentials,
// 403 for one its role forbids. A forwarded request keeps its caller's
// identity, as [consensus.Handler]'s does.
//
// A Handler is safe for concurrent use.
type Handler struct {
	reg  *Registry
	mux  *http.ServeMux
	opts HandlerOptions
}

// HandlerOptions configures a [Handler]. The zero value forwards with a
// 10 s client and admits every caller.
type HandlerOptions struct {
	// Client forwards requests to the leader's API (over HTTPS when the
	// request came over TLS: give it the node's certificate and the
	// cluster's CA). Nil means a client with a 10 s timeout.
	Client *http.Client
	// Auth, if set, admits only the callers it authenticates, each to
	// what its role allows. Nil means no access control: anyone who
	// reaches the API may register and deregister instances.
	Auth *consensus.Auth
}

// maxBody bounds a registration's body.
const maxBody = 64 << 10

// forwardedHeader marks a request a follower forwarded to the leader, so
// that it is forwarded at most once.
const forwardedHeader = "X-Registry-Forwarded"

// NewHandler returns the HTTP API of r. A follower forwards the requests
// that need the leader (writes, and lists unless ?stale=true) to the
// leader's API address, once.
func NewHandler(r *Registry, opts HandlerOptions) (*Handler, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil registry", ErrInvalid)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	h := &Handler{reg: r, mux: http.NewServeMux(), opts: opts}
	rw, ro := consensus.RoleReadWrite, consensus.RoleReadOnly
	h.handle("PUT /v1/services/{service}/instances/{id}", rw, true, h.endpoint(h.register))
	h.handle("DELETE /v1/services/{service}/instances/{id}", rw, true, h.endpoint(func(req *http.Request, _ []byte) (any, error) {
		return struct{}{}, r.Deregister(req.Context(), req.PathValue("service"), req.PathValue("id"))
	}))
	h.handle("POST /v1/registrations/{lease}/heartbeat", rw, false, h.endpoint(func(req *http.Request, _ []byte) (any, error) {
		lease, err := strconv.ParseUint(req.PathValue("lease"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: lease %q is not a number", ErrInvalid, req.PathValue("lease"))
		}
		return struct{}{}, r.Heartbeat(req.Context(), consensus.LeaseID(lease))
	}))
	h.handle("GET /v1/services/{service}", ro, true, h.endpoint(func(req *http.Request, _ []byte) (any, error) {
		mode := consensus.Linearizable
		if s := req.URL.Query().Get("stale"); s == "true" || s == "1" {
			mode = consensus.Stale
		}
		insts, rev, err := r.List(req.Context(), req.PathValue("service"), mode)
		return listJSON{Instances: insts, Revision: rev}, err
	}))
	h.handle("GET /v1/services/{service}/watch", ro, true, h.watch)
	return h, nil
}

// userKey is the context key of the authenticated caller.
type userKey struct{}

// handle registers fn for pattern behind the handler's access control: the
// caller needs role need, on the path's service when byService is set.
func (h *Handler) handle(pattern string, need consensus.Role, byService bool, fn http.HandlerFunc) {
	if h.opts.Auth == nil {
		h.mux.HandleFunc(pattern, fn)
		return
	}
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
		u, err := h.opts.Auth.Authenticate(req)
		if err == nil {
			service := req.PathValue("service")
			if byService && !u.Allows(need, service) || !byService && u.Role < need {
				err = fmt.Errorf("%w: user %q is %v on prefix %q, %s %s needs %v", consensus.ErrForbidden, u.Name, u.Role, u.Prefix, req.Method, req.URL.Path, need)
			}
		}
		if err != nil {
			h.reply(w, nil, err)
			return
		}
		fn(w, req.WithContext(context.WithValue(req.Context(), userKey{}, u)))
	})
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// endpoint reads the request's body (bounded), runs fn and writes its
// result, or forwards the request to the leader when fn needs it.
func (h *Handler) endpoint(fn func(req *http.Request, body []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, http.StatusRequestEntityTooLarge, problem{Detail: fmt.Sprintf("registry: body over %d bytes", maxBody)})
			return
		}
		if err != nil {
			h.reply(w, nil, fmt.Errorf("%w: read body: %v", ErrInvalid, err))
			return
		}
		v, err := fn(req, body)
		var nl *consensus.NotLeaderError
		if errors.As(err, &nl) && req.Header.Get(forwardedHeader) == "" {
			if api := h.reg.node.APIAddr(nl.LeaderID); api != "" && h.forward(w, req, body, api) {
				return
			}
		}
		h.reply(w, v, err)
	}
}

// forward replays req on the leader's API and copies its answer; false if
// the leader could not be reached.
func (h *Handler) forward(w http.ResponseWriter, req *http.Request, body []byte, api string) bool {
	scheme := "http://"
	if req.TLS != nil {
		scheme = "https://"
	}
	fr, err := http.NewRequestWithContext(req.Context(), req.Method, scheme+api+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return false
	}
	fr.Header.Set("Content-Type", "application/json")
	fr.Header.Set(forwardedHeader, h.reg.node.ID())
	if a := req.Header.Get("Authorization"); a != "" {
		fr.Header.Set("Authorization", a)
	} else if u, ok := req.Context().Value(userKey{}).(consensus.User); ok {
		fr.Header.Set(consensus.ForwardedUserHeader, u.Name)
	}
	resp, err := h.opts.Client.Do(fr)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	if v := resp.Header.Get("WWW-Authenticate"); v != "" {
		w.Header().Set("WWW-Authenticate", v)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return true
}

// registerJSON is a registration's body.
type registerJSON struct {
	Addr   string            `json:"addr"`
	Zone   string            `json:"zone"`
	Weight float64           `json:"weight"`
	Meta   map[string]string `json:"meta"`
	TTLms  int64             `json:"ttl_ms"`
}

// registrationJSON is a Registration on the wire.
type registrationJSON struct {
	Instance Instance          `json:"instance"`
	Lease    consensus.LeaseID `json:"lease"`
	TTLms    int64             `json:"ttl_ms"`
	Revision uint64            `json:"revision"`
}

type listJSON struct {
	Instances []Instance `json:"instances"`
	Revision  uint64     `json:"revision"`
}

// problem is an RFC 9457 problem body.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	LeaderID  string `json:"leader_id,omitempty"`
	LeaderAPI string `json:"leader_api,omitempty"`
}

func (h *Handler) register(req *http.Request, raw []byte) (any, error) {
	var body registerJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("%w: malformed JSON body: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: malformed JSON body: data after the object", ErrInvalid)
	}
	inst := Instance{Service: req.PathValue("service"), ID: req.PathValue("id"), Addr: body.Addr, Zone: body.Zone, Weight: body.Weight, Meta: body.Meta}
	reg, err := h.reg.Register(req.Context(), inst, time.Duration(body.TTLms)*time.Millisecond)
	return registrationJSON{Instance: reg.Instance, Lease: reg.Lease, TTLms: reg.TTL.Milliseconds(), Revision: reg.Revision}, err
}

func (h *Handler) reply(w http.ResponseWriter, v any, err error) {
	if err == nil {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
		return
	}
	p := problem{Detail: err.Error()}
	status := http.StatusInternalServerError
	var nl *consensus.NotLeaderError
	switch {
	case errors.As(err, &nl):
		status, p.LeaderID, p.LeaderAPI = http.StatusServiceUnavailable, nl.LeaderID, h.reg.node.APIAddr(nl.LeaderID)
	case errors.Is(err, ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, ErrNotRegistered):
		status = http.StatusNotFound
	case errors.Is(err, ErrDuplicateInstance):
		status = http.StatusConflict
	case errors.Is(err, consensus.ErrIndeterminate), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	case errors.Is(err, consensus.ErrClosed):
		status = http.StatusServiceUnavailable
	case errors.Is(err, consensus.ErrUnauthenticated):
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="registry"`)
	case errors.Is(err, consensus.ErrForbidden):
		status = http.StatusForbidden
	}
	writeProblem(w, status, p)
}

func writeProblem(w http.ResponseWriter, status int, p problem) {
	p.Type, p.Title, p.Status = "about:blank", http.StatusText(status), status
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// watch streams the service's instance set, in full after every change.
func (h *Handler) watch(w http.ResponseWriter, req *http.Request) {
	service := req.PathValue("service")
	if err := validName("service name", service); err != nil {
		h.reply(w, nil, err)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	err := h.reg.Watch(req.Context(), service, func(insts []Instance) {
		b, _ := json.Marshal(insts)
		_, _ = fmt.Fprintf(w, "event: instances\ndata: %s\n\n", b)
		_ = rc.Flush()
	})
	if req.Context().Err() == nil { // the watch failed, not the client
		b, _ := json.Marshal(problem{Type: "about:blank", Title: "watch failed", Status: http.StatusServiceUnavailable, Detail: err.Error()})
		_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
		_ = rc.Flush()
	}
}
