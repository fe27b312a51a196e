package payment

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/shop/order"
)

// Errors of the provider.
var (
	// ErrUnavailable: the provider failed the call before doing anything;
	// it is safe to retry.
	ErrUnavailable = errors.New("payment: provider unavailable")
	// ErrKeyReused: an idempotency key was sent again with another amount —
	// a client bug, refused rather than guessed at. It wraps
	// order.ErrDeclined, so a saga compensates.
	ErrKeyReused = fmt.Errorf("%w: idempotency key reused", order.ErrDeclined)
)

// Faults are the provider's injected failures, each a probability per
// call in [0, 1].
type Faults struct {
	// Errors fail a call before it does anything (ErrUnavailable).
	Errors float64
	// Lost charges the card, then never answers: the call blocks until its
	// context ends. Only an idempotency key makes the retry safe.
	Lost float64
	// Slow answers after SlowDelay.
	Slow      float64
	SlowDelay time.Duration
	// Declines refuse a new charge for good (wrapping order.ErrDeclined).
	Declines float64
	// Duplicates send a charge's callback twice.
	Duplicates float64
	// Seed makes the faults reproducible.
	Seed uint64
}

// Callback is the provider's notice that a charge or refund happened, as
// a webhook would deliver it.
type Callback struct {
	Key      string `json:"key"`
	ChargeID string `json:"charge_id"`
	Amount   int64  `json:"amount"`
	Status   string `json:"status"` // "charged" or "refunded"
}

// Stats count what the provider did.
type Stats struct {
	Calls     int // Charge calls received
	Charges   int // charges that took money
	Refunds   int // refunds that gave it back
	Callbacks int // callbacks sent, duplicates included
}

// Provider is a simulated card processor. It is safe for concurrent use.
type Provider struct {
	faults Faults
	// Notify, if set, receives every callback, on the goroutine of the call
	// that caused it, after the charge or refund is recorded.
	Notify func(Callback)

	mu      sync.Mutex
	rnd     *rand.Rand
	charges map[string]*charge // by idempotency key
	stats   Stats
}

type charge struct {
	id       string
	amount   int64
	refunded bool
}

// NewProvider returns a provider with faults.
func NewProvider(f Faults) *Provider {
	return &Provider{faults: f, rnd: rand.New(rand.NewPCG(f.Seed, f.Seed^0x5eed)), charges: map[string]*charge{}}
}

func (p *Provider) roll(prob float64) bool { return prob > 0 && p.rnd.Float64() < prob }

// Charge takes amount (cents) for key, or returns the charge already made
// with key. It returns the charge id.
func (p *Provider) Charge(ctx context.Context, key string, amount int64) (string, error) {
	p.mu.Lock()
	p.stats.Calls++
	if p.roll(p.faults.Errors) {
		p.mu.Unlock()
		return "", fmt.Errorf("%w: charge %q", ErrUnavailable, key)
	}
	c := p.charges[key]
	var cbs []Callback
	switch {
	case c != nil && c.refunded:
		p.mu.Unlock()
		return "", fmt.Errorf("%w: key %q was refunded", order.ErrDeclined, key)
	case c != nil && c.amount != amount:
		p.mu.Unlock()
		return "", fmt.Errorf("%w: key %q was used for %d, not %d", ErrKeyReused, key, c.amount, amount)
	case c == nil:
		if p.roll(p.faults.Declines) {
			p.mu.Unlock()
			return "", fmt.Errorf("%w: card for %q", order.ErrDeclined, key)
		}
		c = &charge{id: fmt.Sprintf("ch_%d", len(p.charges)+1), amount: amount}
		p.charges[key] = c
		p.stats.Charges++
		cb := Callback{Key: key, ChargeID: c.id, Amount: amount, Status: "charged"}
		cbs = append(cbs, cb)
		if p.roll(p.faults.Duplicates) {
			cbs = append(cbs, cb)
		}
		p.stats.Callbacks += len(cbs)
	}
	id, lost, slow := c.id, p.roll(p.faults.Lost), p.roll(p.faults.Slow)
	notify := p.Notify
	p.mu.Unlock()

	for _, cb := range cbs {
		if notify != nil {
			notify(cb)
		}
	}
	if lost {
		<-ctx.Done()
		return "", ctx.Err()
	}
	if slow {
		t := time.NewTimer(p.faults.SlowDelay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
	}
	return id, nil
}

// Refund gives back key's charge once. Refunding a key never charged
// records the key as refunded, so a charge arriving late with it is
// declined.
func (p *Provider) Refund(ctx context.Context, key string) error {
	p.mu.Lock()
	if p.roll(p.faults.Errors) {
		p.mu.Unlock()
		return fmt.Errorf("%w: refund %q", ErrUnavailable, key)
	}
	c := p.charges[key]
	if c == nil {
		p.charges[key] = &charge{refunded: true}
		p.mu.Unlock()
		return nil
	}
	if c.refunded {
		p.mu.Unlock()
		return nil
	}
	c.refunded = true
	p.stats.Refunds++
	p.stats.Callbacks++
	cb := Callback{Key: key, ChargeID: c.id, Amount: c.amount, Status: "refunded"}
	notify := p.Notify
	p.mu.Unlock()
	if notify != nil {
		notify(cb)
	}
	return nil
}

// Stats returns the provider's counts.
func (p *Provider) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Settled reports, for key, whether money was taken and kept: charged and
// not refunded.
func (p *Provider) Settled(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.charges[key]
	return c != nil && c.id != "" && !c.refunded
}
