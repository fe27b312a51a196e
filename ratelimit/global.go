package ratelimit

import (
	"context"
	"fmt"
	"time"
)

// Global is a [KeyedLimiter] that puts every key under one [Limiter]: a
// single limit shared by all clients, such as "this service takes at most
// 1,000 requests a second", for a [Middleware] or anything else that asks
// per key. Use [Keyed] instead for a limit per client.
//
// A Global is safe for concurrent use when its Limiter is (every limiter of
// this package is).
type Global struct {
	l   Limiter
	now func() time.Time
}

var _ KeyedLimiter = (*Global)(nil)

// NewGlobal returns a Global over l. opts.Now is the clock AllowN reads
// (time.Now if nil); give l the same one.
func NewGlobal(l Limiter, opts Options) (*Global, error) {
	if l == nil {
		return nil, fmt.Errorf("%w: NewGlobal needs a Limiter, got nil", ErrInvalidConfig)
	}
	return &Global{l: l, now: opts.clock()}, nil
}

// AllowN charges n events to the one limiter, whatever the key.
func (g *Global) AllowN(_ context.Context, _ string, n int) (Decision, error) {
	if g == nil || g.l == nil {
		return Decision{}, errNotMade("Global", "NewGlobal")
	}
	return g.l.AllowN(g.now(), n)
}

// Limits returns the limits the limiter enforces, for the rate-limit
// headers of a [Middleware]: the limits of a [Multi], else its one Limit.
func (g *Global) Limits() []Limit {
	if g == nil || g.l == nil {
		return nil
	}
	if m, ok := g.l.(interface{ Limits() []Limit }); ok {
		return m.Limits()
	}
	return []Limit{g.l.Limit()}
}
