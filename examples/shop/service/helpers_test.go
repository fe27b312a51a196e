package service

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/examples/shop/catalog"
	"github.com/sysdesign-go/sysdesign/examples/shop/inventory"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// bleve starts its analysis workers when its package loads, for the life
// of the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"))
}

var secret = []byte("0123456789abcdef0123456789abcdef")

type env struct {
	t       *testing.T
	db      *redistest.DB
	shop    *Shop
	cluster *Cluster
	url     string
	tokens  *httpsec.Tokens
	admin   string
	dir     string
}

// newEnv opens a shop on a fresh data directory and Redis prefix, seeds
// the catalog and stock, and serves it with n instances.
func newEnv(t *testing.T, n int, tweak func(*Config)) *env {
	t.Helper()
	e := &env{t: t, db: redistest.New(t), dir: t.TempDir()}
	var err error
	e.tokens, err = httpsec.NewTokens(httpsec.TokenOptions{Issuer: "shop", Audience: "shop", Secret: secret})
	require.NoError(t, err)
	e.admin = e.token("ops", AdminRole)
	e.start(n, tweak)
	ctx := t.Context()
	for _, p := range []catalog.Product{
		{ID: "mug", Name: "Coffee mug", Category: "kitchen", Brand: "acme", Price: 900, Attributes: map[string]string{"color": "blue"}},
		{ID: "beans", Name: "Coffee beans", Category: "food", Brand: "roast", Price: 1200},
		{ID: "kettle", Name: "Electric kettle", Category: "kitchen", Brand: "volt", Price: 3500},
	} {
		require.NoError(t, e.shop.Catalog().Put(ctx, p))
		require.NoError(t, e.shop.Stock().Restock(ctx, p.ID, 5))
	}
	return e
}

func (e *env) start(n int, tweak func(*Config)) {
	e.t.Helper()
	cfg := Config{DataDir: e.dir, Shards: 2, Redis: e.db.Client, Prefix: e.db.Key(""),
		Stock: inventory.NewRedis(e.db.Client, e.db.Key("stock:")), Tokens: e.tokens, CallbackSecret: secret,
		RecoverEvery: 50 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := Open(e.t.Context(), cfg)
	require.NoError(e.t, err)
	c, err := Start(s, "127.0.0.1:0", n)
	require.NoError(e.t, err)
	e.shop, e.cluster, e.url = s, c, c.URL()
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.shop == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.cluster.Close(ctx)
	_ = e.shop.Close()
	e.shop = nil
}

func (e *env) token(user string, roles ...string) string {
	tok, err := e.tokens.Issue(user, roles, time.Hour)
	require.NoError(e.t, err)
	return tok
}

// call sends a request; headers alternate name, value.
func (e *env) call(method, path string, body any, headers ...string) (int, http.Header, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.url+path, rd)
	require.NoError(e.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, resp.Header, out
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// eventually polls f until it holds, for state a consumer updates.
func eventually(t *testing.T, f func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		require.True(t, time.Now().Before(deadline), msg)
		time.Sleep(10 * time.Millisecond)
	}
}
