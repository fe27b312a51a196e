package payment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/shop/order"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// ClientOptions configure a [Client]. The zero value is usable.
type ClientOptions struct {
	// Timeout bounds each attempt. Zero means 200 ms.
	Timeout time.Duration
	// Attempts is the most attempts per call, the first included. Zero
	// means 4.
	Attempts int
	// Backoff spaces the retries (full jitter by default). The zero value
	// is resilience's: 100 ms base, 10 s cap.
	Backoff resilience.Backoff
	// BudgetRatio caps retries at this share of recent calls (plus ten per
	// window), so retries cannot multiply an outage. Zero means 0.2.
	BudgetRatio float64
	// BreakAfter consecutive failures open the breaker for BreakFor. Zero
	// means 5 and 1 s.
	BreakAfter uint32
	BreakFor   time.Duration
}

// Client calls a [Provider] through retry → breaker → timeout, with the
// caller's idempotency key on every attempt. A declined charge is neither
// retried nor counted against the breaker; an open breaker fails the call
// at once. Client implements
// order.Payments and is safe for concurrent use.
type Client struct {
	provider *Provider
	charge   *resilience.Pipeline[string]
	refund   *resilience.Pipeline[struct{}]
	breaker  *resilience.CircuitBreaker[string]
}

var _ order.Payments = (*Client)(nil)

// NewClient returns a client of p.
func NewClient(p *Provider, o ClientOptions) (*Client, error) {
	if o.Timeout == 0 {
		o.Timeout = 200 * time.Millisecond
	}
	if o.Attempts == 0 {
		o.Attempts = 4
	}
	if o.BudgetRatio == 0 {
		o.BudgetRatio = 0.2
	}
	if o.BreakAfter == 0 {
		o.BreakAfter = 5
	}
	if o.BreakFor == 0 {
		o.BreakFor = time.Second
	}
	budget, err := resilience.NewBudget(resilience.BudgetOptions{Ratio: o.BudgetRatio})
	if err != nil {
		return nil, fmt.Errorf("payment: %w", err)
	}
	trip, err := resilience.ConsecutiveFailures(o.BreakAfter)
	if err != nil {
		return nil, fmt.Errorf("payment: %w", err)
	}
	// A decline is final, and an open breaker fails fast: neither is retried.
	retryIf := func(err error) bool {
		return !errors.Is(err, order.ErrDeclined) && !errors.Is(err, resilience.ErrOpen)
	}
	c := &Client{provider: p}
	c.charge, c.breaker, err = pipeline[string](o, budget, trip, retryIf)
	if err != nil {
		return nil, err
	}
	c.refund, _, err = pipeline[struct{}](o, budget, trip, retryIf)
	return c, err
}

func pipeline[T any](o ClientOptions, budget *resilience.Budget, trip resilience.TripPolicy, retryIf func(error) bool) (*resilience.Pipeline[T], *resilience.CircuitBreaker[T], error) {
	retry, err := resilience.NewRetry[T](resilience.RetryOptions{Name: "payments", MaxAttempts: o.Attempts, Backoff: o.Backoff, Budget: budget, RetryIf: retryIf})
	if err != nil {
		return nil, nil, fmt.Errorf("payment: %w", err)
	}
	breaker, err := resilience.NewCircuitBreaker[T](resilience.BreakerOptions{Name: "payments", Trip: trip, Timeout: o.BreakFor,
		IsSuccessful: func(err error) bool { return errors.Is(err, order.ErrDeclined) }})
	if err != nil {
		return nil, nil, fmt.Errorf("payment: %w", err)
	}
	timeout, err := resilience.NewTimeout[T](resilience.TimeoutOptions{Name: "payments", Timeout: o.Timeout})
	if err != nil {
		return nil, nil, fmt.Errorf("payment: %w", err)
	}
	p, err := resilience.NewPipeline[T](retry, breaker, timeout)
	if err != nil {
		return nil, nil, fmt.Errorf("payment: %w", err)
	}
	return p, breaker, nil
}

// Charge charges amount under the idempotency key key (the order id) and
// returns the charge id.
func (c *Client) Charge(ctx context.Context, key string, amount int64) (string, error) {
	if key == "" || amount <= 0 {
		return "", fmt.Errorf("%w: charge of %d for key %q", order.ErrDeclined, amount, key)
	}
	return c.charge.Execute(ctx, func(ctx context.Context) (string, error) {
		return c.provider.Charge(ctx, key, amount)
	})
}

// Refund refunds key's charge, if any, and bars a later charge with key.
func (c *Client) Refund(ctx context.Context, key string) error {
	_, err := c.refund.Execute(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.provider.Refund(ctx, key)
	})
	return err
}

// BreakerState returns the state of the charge breaker, for metrics.
func (c *Client) BreakerState() resilience.State { return c.breaker.State() }
