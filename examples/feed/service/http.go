package service

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sysdesign-go/sysdesign/examples/internal/blob"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpmetrics"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// maxBody bounds a request body in bytes.
const maxBody = 16 << 10

//go:embed openapi.json
var openAPI []byte

// route is one route of the API; the OpenAPI document lists the same.
type route struct {
	pattern string // "METHOD /path"
	handler http.Handler
}

// routes returns the API's routes. The OpenAPI test checks the document
// against this list and the list against the mux.
func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routeTable() {
		mux.Handle(rt.pattern, rt.handler)
	}
	sec, err := httpsec.NewMiddleware(httpsec.Options{MaxBodyBytes: 2*maxBody + 2*s.mediaLimit()})
	if err != nil {
		panic(err) // the options above are constant
	}
	return s.metrics.instrument(sec.Handler(httpmetrics.Routes(mux)))
}

func (s *Service) routeTable() []route {
	lim, err := ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{
		Limiter: s.writeLim, Policy: "writes",
		Key: func(r *http.Request) (string, error) {
			return s.cfg.Authenticate(r)
		},
		OnError: func(w http.ResponseWriter, _ *http.Request, err error) {
			s.writeError(w, clientErr("unauthorized", "", "%v", err))
		},
	})
	if err != nil {
		panic(err) // the options above are constant
	}
	write := func(h func(http.ResponseWriter, *http.Request, string)) http.Handler { return lim.Handler(s.authed(h)) }
	return []route{
		{"POST /api/v1/users", write(s.postUser)},
		{"GET /api/v1/users/{id}", s.authed(s.getUser)},
		{"PUT /api/v1/users/{id}/following/{target}", write(s.putFollowing)},
		{"DELETE /api/v1/users/{id}/following/{target}", write(s.deleteFollowing)},
		{"GET /api/v1/users/{id}/posts", s.authed(s.getUserPosts)},
		{"GET /api/v1/users/{id}/home", s.authed(s.getHome)},
		{"GET /api/v1/users/{id}/events", s.authed(s.getEvents)},
		{"POST /api/v1/posts", write(s.postPost)},
		{"GET /api/v1/posts/{id}", s.authed(s.getPost)},
		{"PUT /api/v1/posts/{id}/like", write(s.putLike)},
		{"DELETE /api/v1/posts/{id}/like", write(s.deleteLike)},
		{"GET /api/v1/search", s.authed(s.getSearch)},
		{"POST /api/v1/media", lim.Handler(s.authed(s.postMedia))},
		{"GET /api/v1/media/{ref}", http.HandlerFunc(s.getMedia)},
		{"GET /api/v1/openapi.json", http.HandlerFunc(serveOpenAPI)},
		{"GET /healthz", http.HandlerFunc(s.healthz)},
		{"GET /metrics", s.metrics.handler()},
	}
}

// authed runs h with the request's user, or answers 401.
func (s *Service) authed(h func(w http.ResponseWriter, r *http.Request, user string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.cfg.Authenticate(r)
		if err != nil {
			s.writeError(w, clientErr("unauthorized", "", "%v", err))
			return
		}
		h(w, r, u)
	}
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}

func (s *Service) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"strategy": s.cfg.Strategy.String(), "breaker": s.breaker.State().String()})
}

// readJSON decodes a request body of at most maxBody bytes into v, which
// must be the whole body: unknown fields and trailing data are errors.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return clientErr("unsupported", "", "content type %q: want application/json", trunc(ct))
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return clientErr("too_large", "", "body exceeds %d bytes", maxBody)
		}
		return clientErr("bad_request", "", "reading the body: %v", err)
	}
	return decodeJSON(b, v)
}

// decodeJSON decodes b, which must be valid UTF-8 and one JSON object of
// v's fields only.
func decodeJSON(b []byte, v any) error {
	if !utf8.Valid(b) {
		return clientErr("invalid_utf8", "", "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return clientErr("malformed_json", "", "body is not the expected JSON object: %v", err)
	}
	if dec.More() {
		return clientErr("malformed_json", "", "trailing data after the JSON object")
	}
	return nil
}

// userParam returns the user ID in the path parameter name, or an error.
func userParam(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if !idRE.MatchString(id) {
		return "", clientErr("bad_user", name, "user %q: want 1 to 32 of A-Z a-z 0-9 _ -", trunc(id))
	}
	return id, nil
}

// self returns the path's user, who must be the caller.
func self(r *http.Request, user string) (string, error) {
	id, err := userParam(r, "id")
	if err != nil {
		return "", err
	}
	if id != user {
		return "", clientErr("forbidden", "id", "user %q may not act as %q", user, id)
	}
	return id, nil
}

// pageParams reads ?cursor= and ?limit= (default 20, at most 100).
func pageParams(r *http.Request) (cursor int64, limit int, err error) {
	q := r.URL.Query()
	limit = defaultLimit
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > 100 || len(v) > 1 {
			return 0, 0, clientErr("bad_limit", "limit", "limit %q: want one integer from 1 to 100", trunc(strings.Join(v, ",")))
		}
		limit = n
	}
	if v, ok := q["cursor"]; ok {
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil || n < 1 || len(v) > 1 || strconv.FormatInt(n, 10) != v[0] {
			return 0, 0, clientErr("bad_cursor", "cursor", "cursor %q: want the next_cursor of a previous page", trunc(strings.Join(v, ",")))
		}
		cursor = n
	}
	return cursor, limit, nil
}

// NewUser is the body of POST /api/v1/users.
type NewUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Service) postUser(w http.ResponseWriter, r *http.Request, user string) {
	var req NewUser
	if err := readJSON(w, r, &req); err != nil {
		s.writeError(w, err)
		return
	}
	if err := req.check(user); err != nil {
		s.writeError(w, err)
		return
	}
	var u User
	err := s.redis(r.Context(), func(ctx context.Context) error {
		ok, err := s.st.createUser(ctx, req.ID, req.Name, s.cfg.Now())
		if err != nil {
			return err
		}
		if !ok {
			return clientErr("exists", "id", "user %q exists", req.ID)
		}
		u, err = s.st.user(ctx, req.ID)
		return err
	})
	if err != nil {
		s.writeError(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+u.ID)
	writeJSON(w, http.StatusCreated, u)
}

// check validates a new user created by caller.
func (u NewUser) check(caller string) error {
	if !idRE.MatchString(u.ID) {
		return clientErr("bad_user", "id", "user %q: want 1 to 32 of A-Z a-z 0-9 _ -", trunc(u.ID))
	}
	if u.ID != caller {
		return clientErr("forbidden", "id", "user %q may not create %q", caller, u.ID)
	}
	if n := utf8.RuneCountInString(u.Name); n > 64 || strings.TrimSpace(u.Name) == "" {
		return clientErr("bad_name", "name", "name of %d characters: want 1 to 64, not only spaces", n)
	}
	return nil
}

func (s *Service) getUser(w http.ResponseWriter, r *http.Request, _ string) {
	id, err := userParam(r, "id")
	if err != nil {
		s.writeError(w, err)
		return
	}
	var u User
	if err := s.redis(r.Context(), func(ctx context.Context) (err error) {
		u, err = s.st.user(ctx, id)
		return err
	}); err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Service) putFollowing(w http.ResponseWriter, r *http.Request, user string) {
	s.follow(w, r, user, true)
}

func (s *Service) deleteFollowing(w http.ResponseWriter, r *http.Request, user string) {
	s.follow(w, r, user, false)
}

func (s *Service) follow(w http.ResponseWriter, r *http.Request, user string, on bool) {
	id, err := self(r, user)
	if err != nil {
		s.writeError(w, err)
		return
	}
	target, err := userParam(r, "target")
	if err != nil {
		s.writeError(w, err)
		return
	}
	if target == id {
		s.writeError(w, clientErr("follow_self", "target", "user %q cannot follow themselves", id))
		return
	}
	err = s.redis(r.Context(), func(ctx context.Context) error {
		if err := s.st.exists(ctx, id, target); err != nil {
			return err
		}
		if err := s.st.follow(ctx, id, target, on); err != nil {
			return err
		}
		s.counts.Delete(target)
		s.invalidate(ctx, id)
		if on {
			return s.backfill(ctx, id, target)
		}
		return nil
	})
	if err != nil {
		s.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) getUserPosts(w http.ResponseWriter, r *http.Request, _ string) {
	id, err := userParam(r, "id")
	if err != nil {
		s.writeError(w, err)
		return
	}
	cursor, limit, err := pageParams(r)
	if err != nil {
		s.writeError(w, err)
		return
	}
	page, err := s.userPosts(r.Context(), id, cursor, limit)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Service) getHome(w http.ResponseWriter, r *http.Request, user string) {
	start := time.Now()
	id, err := self(r, user)
	if err != nil {
		s.writeError(w, err)
		return
	}
	cursor, limit, err := pageParams(r)
	if err != nil {
		s.writeError(w, err)
		return
	}
	var page Page
	if cursor == 0 && limit == defaultLimit && s.pages != nil {
		page, err = s.firstPage(r.Context(), id)
	} else {
		page, err = s.home(r.Context(), id, cursor, limit)
	}
	switch {
	case err == nil && cursor == 0:
		_ = s.lastPages.Set(id, page)
	case errors.Is(err, ErrUnavailable) && cursor == 0:
		// Degraded: the last first page this instance served, marked
		// stale, rather than an error.
		if last, ok := s.lastPages.Get(id); ok {
			s.metrics.stale.Add(1)
			last.Stale = true
			page, err = last, nil
		}
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
	s.metrics.homeRead.Observe(time.Since(start).Seconds())
}

// NewPost is the body of POST /api/v1/posts.
type NewPost struct {
	Text  string   `json:"text"`
	Media []string `json:"media,omitempty"`
	// ReplyTo is the ID of the post this one answers; the answered
	// post's reply count grows by one.
	ReplyTo string `json:"reply_to,omitempty"`
}

var (
	mediaRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	idemRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// check validates a new post.
func (s *Service) check(p NewPost) error {
	if strings.TrimSpace(p.Text) == "" {
		return clientErr("empty_post", "text", "text is empty")
	}
	if n := utf8.RuneCountInString(p.Text); n > s.cfg.MaxPostRunes {
		return clientErr("too_long", "text", "text of %d characters exceeds %d", n, s.cfg.MaxPostRunes)
	}
	if p.ReplyTo != "" {
		if _, _, ok := parsePostID(p.ReplyTo); !ok {
			return clientErr("bad_post", "reply_to", "reply_to %q: want a post ID, <sequence>-<author>", trunc(p.ReplyTo))
		}
	}
	if len(p.Media) > s.cfg.MaxMedia {
		return clientErr("too_many_media", "media", "%d media references exceed %d", len(p.Media), s.cfg.MaxMedia)
	}
	for _, m := range p.Media {
		if !mediaRE.MatchString(m) {
			return clientErr("bad_media", "media", "media %q: want sha256:<64 hex digits>", trunc(m))
		}
		if s.cfg.Media != nil && s.cfg.Media.Has(m) != nil {
			return clientErr("bad_media", "media", "media %q is not stored; upload it first", m)
		}
	}
	return nil
}

// mediaLimit is the largest upload, 0 with uploads off.
func (s *Service) mediaLimit() int64 {
	if s.cfg.Media == nil {
		return 0
	}
	return s.cfg.Media.MaxBytes()
}

// postMedia stores an upload in the blob store and answers its
// reference; the same bytes answer the same reference.
func (s *Service) postMedia(w http.ResponseWriter, r *http.Request, _ string) {
	m := s.cfg.Media
	if m == nil {
		s.writeError(w, clientErr("not_found", "", "uploads are off"))
		return
	}
	if r.ContentLength > m.MaxBytes() {
		s.writeError(w, clientErr("too_large", "", "upload of %d bytes exceeds %d", r.ContentLength, m.MaxBytes()))
		return
	}
	ref, err := m.Put(http.MaxBytesReader(w, r.Body, m.MaxBytes()+1), r.Header.Get("Content-Type"))
	switch {
	case errors.Is(err, blob.ErrTooLarge):
		s.writeError(w, clientErr("too_large", "", "%v", err))
	case errors.Is(err, blob.ErrUnsupportedType):
		s.writeError(w, clientErr("unsupported", "Content-Type", "%v", err))
	case errors.Is(err, blob.ErrEmpty):
		s.writeError(w, clientErr("empty_upload", "", "empty upload"))
	case err != nil:
		s.writeError(w, err)
	default:
		w.Header().Set("Location", "/api/v1/media/"+ref.Ref)
		writeJSON(w, http.StatusCreated, ref)
	}
}

// getMedia serves a blob with the headers of a CDN origin (ETag,
// Cache-Control immutable, 304 on If-None-Match). Media is public, like
// the URL of an image on a CDN: its name is unguessable without its bytes.
func (s *Service) getMedia(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	if s.cfg.Media == nil {
		s.writeError(w, clientErr("not_found", "ref", "no media %q", trunc(ref)))
		return
	}
	if err := s.cfg.Media.Serve(w, r, ref); err != nil {
		if errors.Is(err, blob.ErrBadRef) {
			s.writeError(w, clientErr("bad_media", "ref", "%v", err))
			return
		}
		s.writeError(w, clientErr("not_found", "ref", "no media %q", ref))
	}
}

func (s *Service) postPost(w http.ResponseWriter, r *http.Request, user string) {
	var req NewPost
	if err := readJSON(w, r, &req); err != nil {
		s.writeError(w, err)
		return
	}
	if err := s.check(req); err != nil {
		s.writeError(w, err)
		return
	}
	idem := r.Header.Get("Idempotency-Key")
	if idem != "" && !idemRE.MatchString(idem) {
		s.writeError(w, clientErr("idempotency_key", "Idempotency-Key", "Idempotency-Key %q: want 1 to 64 of A-Z a-z 0-9 _ -", trunc(idem)))
		return
	}
	p, err := s.publish(r.Context(), Post{Author: user, Text: req.Text, Media: req.Media, ReplyTo: req.ReplyTo, Created: s.cfg.Now().UTC().Truncate(time.Millisecond)}, idem)
	if err != nil {
		s.writeError(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/posts/"+p.ID)
	writeJSON(w, http.StatusCreated, p)
}

func (s *Service) putLike(w http.ResponseWriter, r *http.Request, user string) {
	s.like(w, r, user, true)
}

func (s *Service) deleteLike(w http.ResponseWriter, r *http.Request, user string) {
	s.like(w, r, user, false)
}

// like records or removes the caller's like of a post; liking twice
// counts once.
func (s *Service) like(w http.ResponseWriter, r *http.Request, user string, on bool) {
	id := r.PathValue("id")
	if _, _, ok := parsePostID(id); !ok {
		s.writeError(w, clientErr("bad_post", "id", "post %q: want <sequence>-<author>", trunc(id)))
		return
	}
	var n int64
	if err := s.redis(r.Context(), func(ctx context.Context) (err error) {
		n, err = s.st.like(ctx, id, user, on)
		return err
	}); err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "likes": n})
}

func (s *Service) getPost(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PathValue("id")
	if _, _, ok := parsePostID(id); !ok {
		s.writeError(w, clientErr("bad_post", "id", "post %q: want <sequence>-<author>", trunc(id)))
		return
	}
	var ps []Post
	if err := s.redis(r.Context(), func(ctx context.Context) (err error) {
		ps, err = s.st.posts(ctx, []string{id})
		return err
	}); err != nil {
		s.writeError(w, err)
		return
	}
	if len(ps) == 0 {
		s.writeError(w, clientErr("unknown_post", "id", "no post %q", id))
		return
	}
	writeJSON(w, http.StatusOK, ps[0])
}
