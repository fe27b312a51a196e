package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/chat/client"
	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testKey = []byte("0123456789abcdef0123456789abcdef")

// env is a set of gateways over one test's Redis keys.
type env struct {
	t      testing.TB
	db     *redistest.DB
	rdb    redis.UniversalClient
	proxy  *tcpproxy.Proxy // between the gateways and Redis, when asked for
	tokens *service.Tokens
	svcs   []*service.Service
	urls   []string
}

// newEnv starts n gateways configured by cfg (Redis, Prefix and
// Authenticate filled in). With cut set, the gateways reach Redis through
// a proxy the test can cut; hooks see (and may fail) the gateways' Redis
// commands.
func newEnv(t testing.TB, n int, cfg service.Config, cut bool, hooks ...redis.Hook) *env {
	t.Helper()
	e := &env{t: t, db: redistest.New(t)}
	e.rdb = e.db.Client
	if cut {
		p, err := tcpproxy.New(e.db.Addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		e.proxy = p
		rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
		t.Cleanup(func() { _ = rdb.Close() })
		e.rdb = rdb
	}
	var err error
	e.tokens, err = service.NewTokens(testKey)
	require.NoError(t, err)
	if len(hooks) > 0 {
		rdb := redis.NewClient(&redis.Options{Addr: e.db.Addr, ContextTimeoutEnabled: true, MaxRetries: -1})
		t.Cleanup(func() { _ = rdb.Close() })
		for _, h := range hooks {
			rdb.AddHook(h)
		}
		e.rdb = rdb
	}
	for range n {
		e.start(cfg)
	}
	return e
}

// start starts one more gateway configured by cfg (Prefix, Authenticate
// and, unless set, Redis filled in).
func (e *env) start(cfg service.Config) {
	t := e.t
	t.Helper()
	if cfg.Redis == nil {
		cfg.Redis = e.rdb
	}
	cfg.Prefix, cfg.Authenticate = e.db.Prefix, e.tokens.User
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := service.New(context.Background(), cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, s.Close(ctx))
	})
	t.Cleanup(srv.Close)
	e.svcs, e.urls = append(e.svcs, s), append(e.urls, srv.URL)
}

func (e *env) token(user string) string {
	tok, err := e.tokens.Issue(user, time.Hour)
	require.NoError(e.t, err)
	return tok
}

// ws is a test's WebSocket client.
type ws struct {
	t     testing.TB
	user  string
	c     *client.Conn
	acked map[string]int64
	buf   []service.Frame
}

// dial connects user to gateway i and reads its hello.
func (e *env) dial(user string, i int) *ws {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, e.urls[i], e.token(user))
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = c.CloseNow() })
	w := &ws{t: e.t, user: user, c: c}
	h := w.next("hello")
	require.Equal(e.t, user, h.User)
	w.acked = h.Acked
	return w
}

// next returns the first frame of type typ, reading as needed; frames of
// other types are kept for later calls.
func (w *ws) next(typ string) service.Frame {
	w.t.Helper()
	for i, f := range w.buf {
		if f.Type == typ {
			w.buf = append(w.buf[:i], w.buf[i+1:]...)
			return f
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		f, err := w.c.Read(ctx)
		require.NoError(w.t, err, "%s waiting for a %q frame", w.user, typ)
		if f.Type == typ {
			return f
		}
		w.buf = append(w.buf, f)
	}
}

// nextAfter returns the next message with a sequence number above seen,
// skipping repeats of those already seen: delivery is at-least-once, and a
// message sent live can come again from the sync that follows a connect.
func (w *ws) nextAfter(seen int64) service.Frame {
	w.t.Helper()
	for {
		if f := w.next("msg"); f.Seq > seen {
			return f
		}
	}
}

// send sends a message and waits for its "sent".
func (w *ws) send(conv, id, body string) service.Frame {
	w.t.Helper()
	require.NoError(w.t, w.c.Send(context.Background(), conv, id, body))
	f := w.next("sent")
	require.Equal(w.t, id, f.ID)
	return f
}

// ack acknowledges and waits until the gateway has handled it (frames
// are handled in order, so its pong comes after).
func (w *ws) ack(conv string, seq int64) {
	w.t.Helper()
	require.NoError(w.t, w.c.Ack(context.Background(), conv, seq))
	require.NoError(w.t, w.c.Write(context.Background(), service.Frame{Type: "ping"}))
	w.next("pong")
}

// closed reads until the gateway closes and returns the close code.
func (w *ws) closed() int {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, err := w.c.Read(ctx)
		if err != nil {
			require.NoError(w.t, ctx.Err(), "no close within 5 s")
			return int(websocket.CloseStatus(err))
		}
	}
}

// call makes an HTTP request as user and returns the status and body.
func (e *env) call(method, url, user, contentType string, body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(e.t, err)
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(user))
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, resp.Header, b
}

func (e *env) postJSON(url, user string, v any) (int, []byte) {
	e.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(e.t, err)
	st, _, body := e.call("POST", url, user, "application/json", b)
	return st, body
}

// problem decodes a problem+json body and returns its code.
func problem(t *testing.T, h http.Header, body []byte) string {
	t.Helper()
	require.Equal(t, "application/problem+json", h.Get("Content-Type"), "body %s", body)
	var p httpsec.Problem
	require.NoError(t, json.Unmarshal(body, &p))
	return p.Code
}
