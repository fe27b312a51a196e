package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster starts three servers on loopback listeners, as three processes
// would be, and returns their base URLs by name.
func cluster(t *testing.T) map[string]string {
	names := []string{"n1", "n2", "n3"}
	lns := map[string]net.Listener{}
	var peers []string
	for _, n := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns[n] = ln
		peers = append(peers, n+"="+ln.Addr().String())
	}
	urls := map[string]string{}
	for _, n := range names {
		cfg, err := parse([]string{"-name", n, "-http", lns[n].Addr().String(), "-peers", strings.Join(peers, ",")})
		require.NoError(t, err)
		srv, err := newServer(cfg)
		require.NoError(t, err)
		hs := httptest.NewUnstartedServer(srv.routes())
		hs.Listener.Close()
		hs.Listener = lns[n]
		hs.Start()
		t.Cleanup(func() {
			hs.Close()
			require.NoError(t, srv.close(context.Background()))
			http.DefaultClient.CloseIdleConnections()
		})
		urls[n] = hs.URL
	}
	return urls
}

func call(t *testing.T, method, url, body string, header ...string) (int, answer) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var a answer
	_ = json.Unmarshal(b, &a)
	return resp.StatusCode, a
}

// The README's walk-through: a partition, writes at ONE on both sides,
// a refused QUORUM write that still lands, siblings after healing, and a
// write carrying their context that resolves them.
func TestPartitionSiblingsResolution(t *testing.T) {
	u := cluster(t)
	code, _ := call(t, "POST", u["n1"]+"/v1/admin/isolate", "")
	require.Equal(t, 200, code)
	code, _ = call(t, "PUT", u["n1"]+"/v1/kv/cart?level=ONE", "milk,eggs")
	require.Equal(t, 200, code, "ONE is available on the cut-off node")
	code, _ = call(t, "PUT", u["n2"]+"/v1/kv/cart?level=ONE", "milk,bread")
	require.Equal(t, 200, code, "and on the other side")
	code, _ = call(t, "PUT", u["n1"]+"/v1/kv/cart?level=QUORUM", "milk,tea")
	require.Equal(t, 503, code, "QUORUM is not, on the minority")
	code, a := call(t, "GET", u["n2"]+"/v1/kv/cart?level=QUORUM", "")
	require.Equal(t, 200, code)
	assert.Equal(t, []string{"milk,bread"}, a.Values, "the majority does not see the minority's writes")

	code, _ = call(t, "POST", u["n1"]+"/v1/admin/heal", "")
	require.Equal(t, 200, code)
	code, _ = call(t, "POST", u["n1"]+"/v1/admin/repair", "")
	require.Equal(t, 200, code)
	code, a = call(t, "GET", u["n3"]+"/v1/kv/cart?level=ALL", "")
	require.Equal(t, 200, code)
	assert.ElementsMatch(t, []string{"milk,eggs", "milk,bread", "milk,tea"}, a.Values, "every write of both sides, as siblings")

	ctx, err := a.Context.MarshalText()
	require.NoError(t, err)
	code, _ = call(t, "PUT", u["n2"]+"/v1/kv/cart", "milk,eggs,bread,tea", "X-Context", string(ctx))
	require.Equal(t, 200, code)
	code, a = call(t, "GET", u["n1"]+"/v1/kv/cart?level=ALL", "")
	require.Equal(t, 200, code)
	assert.Equal(t, []string{"milk,eggs,bread,tea"}, a.Values)

	for _, bad := range []struct{ method, path, body, h string }{
		{"GET", "/v1/kv/cart?level=TWO", "", ""},
		{"PUT", "/v1/kv/cart", "v", "garbage"},
	} {
		code, _ := call(t, bad.method, u["n1"]+bad.path, bad.body, "X-Context", bad.h)
		assert.Equal(t, 400, code, bad)
	}
	code, _ = call(t, "GET", u["n1"]+"/v1/kv/missing", "")
	assert.Equal(t, 404, code)
}

func TestParseRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-name", "n1", "-http", "127.0.0.1:0"},
		{"-name", "n9", "-http", "127.0.0.1:0", "-peers", "n1=127.0.0.1:1"},
		{"-name", "n1", "-http", "127.0.0.1:0", "-peers", "n1=127.0.0.1:1,n1=127.0.0.1:2"},
		{"-name", "n1", "-http", "127.0.0.1:0", "-peers", "n1"},
	} {
		_, err := parse(args)
		assert.Error(t, err, args)
	}
}
