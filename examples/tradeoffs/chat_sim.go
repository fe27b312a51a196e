package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/chat/client"
	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

const chatSection = "Real-World System Designs → 2. Chat Application"

// chatLab is one chat gateway on the real Redis, under a prefix of its
// own that is deleted at the end.
type chatLab struct {
	url    string
	svc    *service.Service
	rdb    *redis.Client
	prefix string
	tokens *service.Tokens
	srv    *http.Server
}

// startChat starts a gateway configured by cfg (Redis, Prefix and
// Authenticate filled in), or returns skipped saying why there is none.
func startChat(ctx context.Context, cfg service.Config) (c *chatLab, skipped string, err error) {
	addr := redistest.Addr()
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, DialTimeout: time.Second})
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Sprintf("no Redis answered at %s (%v); %s", addr, err, redistest.Howto), nil
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	c = &chatLab{rdb: rdb, prefix: "sysdesign-lab:chat:" + hex.EncodeToString(b[:]) + ":"}
	if c.tokens, err = service.NewTokens([]byte("lab-chat-key-0123456789abcdef0123")); err != nil {
		_ = rdb.Close()
		return nil, "", err
	}
	cfg.Redis, cfg.Prefix, cfg.Authenticate = rdb, c.prefix, c.tokens.User
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if c.svc, err = service.New(ctx, cfg); err != nil {
		_ = rdb.Close()
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.close()
		return nil, "", err
	}
	c.url = "http://" + ln.Addr().String()
	c.srv = &http.Server{Handler: c.svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c, "", nil
}

func (c *chatLab) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c.srv != nil {
		_ = c.srv.Shutdown(ctx)
	}
	_ = c.svc.Close(ctx)
	_ = redistest.Purge(ctx, c.rdb, c.prefix)
	_ = c.rdb.Close()
}

// dial connects user and returns the connection after its hello.
func (c *chatLab) dial(ctx context.Context, user string) (*client.Conn, error) {
	tok, err := c.tokens.Issue(user, time.Hour)
	if err != nil {
		return nil, err
	}
	conn, err := client.Dial(ctx, c.url, tok)
	if err != nil {
		return nil, err
	}
	if f, err := conn.Read(ctx); err != nil || f.Type != "hello" {
		_ = conn.CloseNow()
		return nil, errors.Join(err, fmt.Errorf("lab: %s got %q, not hello", user, f.Type))
	}
	return conn, nil
}
