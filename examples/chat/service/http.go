package service

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpmetrics"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/ws", s.serveWS)
	mux.HandleFunc("GET /api/v1/events", s.serveEvents)
	lim, err := ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{
		Limiter: s.userLim, Policy: "messages",
		Key: func(r *http.Request) (string, error) {
			u, err := s.cfg.Authenticate(r)
			return "u:" + u, err
		},
		OnDenied: func(*http.Request, string, ratelimit.Decision) { s.metrics.limited.Add(1) },
		OnError: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeProblem(w, clientErr("unauthorized", "%v", err))
		},
	})
	if err != nil {
		panic(err) // the options above are constant
	}
	mux.Handle("POST /api/v1/messages", lim.Handler(s.authed(s.postMessage)))
	mux.HandleFunc("POST /api/v1/acks", s.authed(s.postAck))
	mux.HandleFunc("POST /api/v1/groups", s.authed(s.postGroup))
	mux.HandleFunc("GET /api/v1/groups/{id}", s.authed(s.getGroup))
	mux.HandleFunc("POST /api/v1/groups/{id}/members", s.authed(s.postMember))
	mux.HandleFunc("GET /api/v1/conversations/{conv}/messages", s.authed(s.getHistory))
	mux.HandleFunc("PUT /api/v1/keys", s.authed(s.putKey))
	mux.HandleFunc("GET /api/v1/keys/{user}", s.authed(s.getKey))
	mux.HandleFunc("POST /api/v1/media", s.authed(s.postMedia))
	mux.HandleFunc("GET /api/v1/media/{ref}", s.authed(s.getMedia))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.Handle("GET /", pageHandler())
	// Security headers (with a CSP the page works under), same-origin
	// CORS, request ids and a body limit above every route's own, so each
	// route answers its own limit with its own code.
	sec, err := httpsec.NewMiddleware(httpsec.Options{ContentSecurityPolicy: pageCSP,
		MaxBodyBytes: 2*max(s.cfg.MaxFrame, mediaLimit(s.cfg.Media)) + 1})
	if err != nil {
		panic(err) // the options above are constant
	}
	return s.metrics.instrument(sec.Handler(httpmetrics.Routes(mux)))
}

// authed runs h with the request's user, or answers 401.
func (s *Service) authed(h func(w http.ResponseWriter, r *http.Request, user string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.cfg.Authenticate(r)
		if err != nil {
			writeProblem(w, clientErr("unauthorized", "%v", err))
			return
		}
		h(w, r, u)
	}
}

func (s *Service) healthz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		writeProblem(w, &Error{Code: "draining", Detail: "gateway draining", Status: http.StatusServiceUnavailable})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"gateway": s.cfg.Gateway, "breaker": s.breaker.State().String()})
}

// enter counts a new connection, or answers 503 while the gateway drains
// (Close waits for the connections it counted).
func (s *Service) enter(w http.ResponseWriter) bool {
	s.mu.Lock()
	d := s.draining
	if !d {
		s.conns.Add(1)
	}
	s.mu.Unlock()
	if d {
		writeProblem(w, &Error{Code: "draining", Detail: "gateway draining; reconnect", Status: http.StatusServiceUnavailable, RetryAfter: time.Second})
	}
	return !d
}

// serveWS runs a WebSocket connection: this goroutine reads the client's
// frames, the session's writer writes.
func (s *Service) serveWS(w http.ResponseWriter, r *http.Request) {
	user, err := s.cfg.Authenticate(r)
	if err != nil {
		writeProblem(w, clientErr("unauthorized", "%v", err))
		return
	}
	if !s.enter(w) {
		return
	}
	defer s.conns.Done()
	// A WebSocket lives longer than the server's read and write timeouts.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept answered the client
	}
	c.SetReadLimit(s.cfg.MaxFrame)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x := s.newSession(user, &wsSink{c: c})
	done := make(chan struct{})
	go func() { defer close(done); x.run(ctx) }()
	defer func() { <-done }()
	defer x.close(statusNormal, "")
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if code, reason := s.frame(ctx, x, typ == websocket.MessageText, b); code != 0 {
			x.close(code, reason)
			return
		}
	}
}

// frame decodes and serves one client frame; a non-zero code closes the
// connection.
func (s *Service) frame(ctx context.Context, x *session, text bool, b []byte) (int, string) {
	if !text {
		return statusUnsupportedData, "binary frames are not accepted"
	}
	if !utf8.Valid(b) {
		return statusInvalidPayload, "invalid UTF-8"
	}
	f, err := decodeFrame(b)
	if err != nil {
		return statusInvalidPayload, "malformed JSON frame"
	}
	return x.handle(ctx, f)
}

func decodeFrame(b []byte) (Frame, error) {
	var f Frame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Frame{}, err
	}
	if dec.More() {
		return Frame{}, errors.New("trailing data after the frame")
	}
	return f, nil
}

type wsSink struct{ c *websocket.Conn }

func (k *wsSink) abort() { _ = k.c.CloseNow() }

func (k *wsSink) write(ctx context.Context, b []byte) error {
	return k.c.Write(ctx, websocket.MessageText, b)
}

func (k *wsSink) close(code int, reason string) {
	if code == 0 {
		code = statusNormal
	}
	_ = k.c.Close(websocket.StatusCode(code), reason)
}

// serveEvents is the Server-Sent Events fallback: the same frames as
// events, sent with POST /api/v1/messages and acknowledged with POST
// /api/v1/acks. A closing gateway sends a last "close" frame.
func (s *Service) serveEvents(w http.ResponseWriter, r *http.Request) {
	user, err := s.cfg.Authenticate(r)
	if err != nil {
		writeProblem(w, clientErr("unauthorized", "%v", err))
		return
	}
	if !s.enter(w) {
		return
	}
	defer s.conns.Done()
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	x := s.newSession(user, &sseSink{w: w, rc: rc})
	x.run(ctx)
}

type sseSink struct {
	w  io.Writer
	rc *http.ResponseController
}

func (k *sseSink) write(_ context.Context, b []byte) error {
	if _, err := fmt.Fprintf(k.w, "data: %s\n\n", b); err != nil {
		return err
	}
	return k.rc.Flush()
}

func (k *sseSink) abort() {}

func (k *sseSink) close(code int, reason string) {
	if code == statusServiceRestart {
		b, _ := json.Marshal(Frame{Type: "close", Code: strconv.Itoa(code), Detail: reason})
		_ = k.write(context.Background(), b)
	}
}

// readJSON decodes a request body of at most MaxFrame bytes into v.
func (s *Service) readJSON(w http.ResponseWriter, r *http.Request, v any) *Error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxFrame))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return clientErr("too_large", "body exceeds %d bytes", s.cfg.MaxFrame)
		}
		return clientErr("bad_request", "reading the body: %v", err)
	}
	if !utf8.Valid(b) {
		return clientErr("invalid_utf8", "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return clientErr("malformed_json", "body is not the expected JSON object: %v", err)
	}
	return nil
}

func (s *Service) postMessage(w http.ResponseWriter, r *http.Request, user string) {
	var f Frame
	if e := s.readJSON(w, r, &f); e != nil {
		writeProblem(w, e)
		return
	}
	sent, err := s.send(r.Context(), user, "", f, false)
	if err != nil {
		writeProblem(w, s.asError(err))
		return
	}
	writeJSON(w, http.StatusOK, sent)
}

func (s *Service) postAck(w http.ResponseWriter, r *http.Request, user string) {
	var f struct {
		Conv string `json:"conv"`
		Seq  int64  `json:"seq"`
	}
	if e := s.readJSON(w, r, &f); e != nil {
		writeProblem(w, e)
		return
	}
	if err := s.ack(r.Context(), user, f.Conv, f.Seq); err != nil {
		writeProblem(w, s.asError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// GroupInfo is a group as the API shows it.
type GroupInfo struct {
	Conv    string   `json:"conv"`
	Members []string `json:"members"`
}

func (s *Service) postGroup(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		ID      string   `json:"id"`
		Members []string `json:"members"`
	}
	if e := s.readJSON(w, r, &req); e != nil {
		writeProblem(w, e)
		return
	}
	if !idRE.MatchString(req.ID) {
		writeProblem(w, clientErr("bad_id", "group id %q: want 1 to 64 of A-Z a-z 0-9 _ -", trunc(req.ID)))
		return
	}
	members := append([]string{user}, req.Members...)
	slices.Sort(members)
	members = slices.Compact(members)
	if len(members) > 100_000 {
		writeProblem(w, clientErr("too_large", "%d members exceed 100000", len(members)))
		return
	}
	for _, m := range members {
		if !idRE.MatchString(m) {
			writeProblem(w, clientErr("bad_id", "member %q: want 1 to 64 of A-Z a-z 0-9 _ -", trunc(m)))
			return
		}
	}
	c := "g:" + req.ID
	var created bool
	if err := s.redis(r.Context(), func(ctx context.Context) (err error) {
		created, err = s.st.createGroup(ctx, c, members)
		return err
	}); err != nil {
		writeProblem(w, s.asError(err))
		return
	}
	if !created {
		writeProblem(w, clientErr("exists", "group %q exists", c))
		return
	}
	_ = s.groups.Set(c, &group{members: members})
	s.notifyJoined(r.Context(), c, members)
	writeJSON(w, http.StatusCreated, GroupInfo{Conv: c, Members: members})
}

func (s *Service) getGroup(w http.ResponseWriter, r *http.Request, user string) {
	c := "g:" + r.PathValue("id")
	members, _, err := s.conversation(r.Context(), c, user)
	if err != nil {
		writeProblem(w, s.asError(err))
		return
	}
	writeJSON(w, http.StatusOK, GroupInfo{Conv: c, Members: members})
}

func (s *Service) postMember(w http.ResponseWriter, r *http.Request, user string) {
	c := "g:" + r.PathValue("id")
	var req struct {
		User string `json:"user"`
	}
	if e := s.readJSON(w, r, &req); e != nil {
		writeProblem(w, e)
		return
	}
	if !idRE.MatchString(req.User) {
		writeProblem(w, clientErr("bad_id", "user %q: want 1 to 64 of A-Z a-z 0-9 _ -", trunc(req.User)))
		return
	}
	if _, _, err := s.conversation(r.Context(), c, user); err != nil {
		writeProblem(w, s.asError(err))
		return
	}
	if err := s.redis(r.Context(), func(ctx context.Context) error { return s.st.addMember(ctx, c, req.User) }); err != nil {
		writeProblem(w, s.asError(err))
		return
	}
	s.groups.Delete(c)
	s.notifyJoined(r.Context(), c, []string{req.User})
	w.WriteHeader(http.StatusNoContent)
}

// History is a page of a conversation, oldest first; Before pages on.
type History struct {
	Messages []Frame `json:"messages"`
	// Before is the seq to pass as ?before= for the previous page; 0
	// when this page reaches the first message.
	Before int64 `json:"before"`
}

func (s *Service) getHistory(w http.ResponseWriter, r *http.Request, user string) {
	c := r.PathValue("conv")
	q := r.URL.Query()
	before, limit := int64(0), int64(50)
	for _, p := range []struct {
		name     string
		v        *int64
		min, max int64
	}{{"before", &before, 1, 1 << 62}, {"limit", &limit, 1, 500}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < p.min || n > p.max {
				writeProblem(w, clientErr("bad_request", "%s=%q: want an integer from %d to %d", p.name, trunc(s), p.min, p.max))
				return
			}
			*p.v = n
		}
	}
	if _, _, err := s.conversation(r.Context(), c, user); err != nil {
		writeProblem(w, s.asError(err))
		return
	}
	var fs []Frame
	if err := s.redis(r.Context(), func(ctx context.Context) (err error) {
		fs, err = s.st.readLogBefore(ctx, c, before, limit)
		return err
	}); err != nil {
		writeProblem(w, s.asError(err))
		return
	}
	h := History{Messages: fs}
	if h.Messages == nil {
		h.Messages = []Frame{}
	}
	if len(fs) > 0 && fs[0].Seq > 1 {
		h.Before = fs[0].Seq
	}
	writeJSON(w, http.StatusOK, h)
}

// PublicKey is a user's published NaCl box public key, in standard
// base64.
type PublicKey struct {
	User string `json:"user"`
	Key  string `json:"public_key"`
}

func (s *Service) putKey(w http.ResponseWriter, r *http.Request, user string) {
	var req struct {
		Key string `json:"public_key"`
	}
	if e := s.readJSON(w, r, &req); e != nil {
		writeProblem(w, e)
		return
	}
	if k, err := base64.StdEncoding.DecodeString(req.Key); err != nil || len(k) != 32 {
		writeProblem(w, clientErr("bad_key", "public_key %q: want 32 bytes in standard base64", trunc(req.Key)))
		return
	}
	if err := s.redis(r.Context(), func(ctx context.Context) error { return s.st.setKey(ctx, user, req.Key) }); err != nil {
		writeProblem(w, s.asError(err))
		return
	}
	writeJSON(w, http.StatusOK, PublicKey{User: user, Key: req.Key})
}

func (s *Service) getKey(w http.ResponseWriter, r *http.Request, _ string) {
	u := r.PathValue("user")
	if !idRE.MatchString(u) {
		writeProblem(w, clientErr("bad_id", "user %q: want 1 to 64 of A-Z a-z 0-9 _ -", trunc(u)))
		return
	}
	var k string
	if err := s.redis(r.Context(), func(ctx context.Context) (err error) {
		k, err = s.st.key(ctx, u)
		return err
	}); err != nil {
		writeProblem(w, s.asError(err))
		return
	}
	if k == "" {
		writeProblem(w, clientErr("not_found", "user %q has published no key", u))
		return
	}
	writeJSON(w, http.StatusOK, PublicKey{User: u, Key: k})
}
