package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/examples/shortener/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The command serves a cluster until its context ends, then stops cleanly.
func TestRunClusterAndStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t.Setenv("SHORTENER_STRATEGY", "hash")
	t.Setenv("REDIS_ADDR", "")
	var log bytes.Buffer
	done := make(chan error, 1)
	urls := make(chan string, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-cluster", "3", "-data", t.TempDir()}, io.Discard, &log, func(c *service.Cluster) {
			urls <- c.URL()
		})
	}()
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatalf("run ended early: %v\n%s", err, log.String())
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Post(base+"/api/v1/urls", "application/json", strings.NewReader(`{"url":"https://go.dev/"}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	var link struct {
		Code     string `json:"code"`
		ShortURL string `json:"short_url"`
	}
	require.NoError(t, json.Unmarshal(body, &link))
	assert.Equal(t, base+"/"+link.Code, link.ShortURL, "short links name the balancer, not an instance")
	resp, err = hc.Post(base+"/api/v1/urls", "application/json", strings.NewReader(`{"url":"`+link.ShortURL+`"}`))
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "shortening a short link loops: %s", body)
	assert.Contains(t, string(body), "self_reference")
	resp, err = hc.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	assert.Contains(t, log.String(), "strategy=hash", "SHORTENER_STRATEGY applies")
	assert.Contains(t, log.String(), "shutting down")
}

func TestBadFlags(t *testing.T) {
	// A cancelled context: a flag set that wrongly passes stops at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, args := range [][]string{
		{"-strategy", "uuid", "-data", t.TempDir()},
		{"-cluster", "0", "-data", t.TempDir()},
		{"-redirect", "200", "-data", t.TempDir()},
		{"-cache-ttl", "0", "-data", t.TempDir()},
		{"-store-latency", "-1ms", "-data", t.TempDir()},
		{"-debug-addr", "256.0.0.1:0", "-data", t.TempDir()},
		{"-trusted-proxies", "10.0.0.0/8,proxy.internal", "-data", t.TempDir()},
		{"-namespace", "two words", "-data", t.TempDir()},
		{"-base-url", "sho.rt", "-data", t.TempDir()},
		{"-nope"},
		{"extra-arg"},
		{"-tls-cert", "cert.pem", "-data", t.TempDir()},
		{"-tls-cert", "missing.pem", "-tls-key", "missing.pem", "-data", t.TempDir()},
		{"-token-secret", "too short", "-data", t.TempDir()},
		{"-issue-admin-token", "ops"},
		{"-api-keys", "acme", "-data", t.TempDir()},
		{"-api-keys", "acme=short", "-data", t.TempDir()},
		{"-allowed-origins", "https://app.example/path", "-data", t.TempDir()},
	} {
		err := run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), io.Discard, io.Discard, nil)
		assert.Error(t, err, "%v", args)
	}
	t.Setenv("SHORTENER_CLUSTER", "three")
	err := run(ctx, []string{"-addr", "127.0.0.1:0"}, io.Discard, io.Discard, nil)
	assert.ErrorContains(t, err, "SHORTENER_CLUSTER")
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-h"}, io.Discard, &out, nil)
	assert.True(t, errors.Is(err, flag.ErrHelp))
	for _, want := range []string{"-cluster", "-strategy", "REDIS_ADDR", "SHORTENER_", "-store-latency", "-debug-addr",
		"evicts the link from the others' L1 in process", "only through Redis"} {
		assert.Contains(t, out.String(), want)
	}
}

// The pprof handlers are served on the debug listener only.
func TestDebugListener(t *testing.T) {
	url, stop, err := serveDebug("127.0.0.1:0", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer stop()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for _, path := range []string{"", "cmdline", "goroutine?debug=1"} {
		resp, err := hc.Get(url + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
		assert.NotEmpty(t, body, path)
	}

	c, err := service.Start(context.Background(), service.ClusterConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close(context.Background())) }()
	resp, err := hc.Get(c.URL() + "/debug/pprof/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "the service itself exposes no profiles")
}

func TestParsePrefixes(t *testing.T) {
	got, err := parsePrefixes(" 10.1.2.3, 192.168.7.9/16,::1,")
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("::1/128"),
	}, got)
	_, err = parsePrefixes("10.0.0.0/8,proxy.internal")
	assert.ErrorContains(t, err, `"proxy.internal"`)
}

// -issue-admin-token prints a token of the admin role; -restore refuses a
// file that is not a whole backup and leaves the directory alone.
func TestIssueTokenAndRestore(t *testing.T) {
	secret := "0123456789abcdef0123456789abcdef"
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-token-secret", secret, "-issue-admin-token", "ops"}, &out, io.Discard, nil))
	tokens, err := httpsec.NewTokens(httpsec.TokenOptions{Issuer: "shortener", Audience: "shortener-admin", Secret: []byte(secret)})
	require.NoError(t, err)
	id, err := tokens.Verify(strings.TrimSpace(out.String()))
	require.NoError(t, err)
	assert.Equal(t, "ops", id.Subject)
	assert.True(t, id.HasRole(service.AdminRole))

	file := filepath.Join(t.TempDir(), "backup.bin")
	require.NoError(t, os.WriteFile(file, []byte("sysdesign shortener backup v1\n\x00\x00"), 0o600))
	dir := filepath.Join(t.TempDir(), "data")
	err = run(context.Background(), []string{"-restore", file, "-data", dir}, io.Discard, io.Discard, nil)
	require.ErrorIs(t, err, service.ErrBadBackup)
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "a refused restore created the directory")
}
