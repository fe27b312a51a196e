package degrade_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/resilience/degrade"
)

// Guide: "Fault Tolerance → Graceful Degradation" (cached responses).
// When the call fails, the last good value is served, marked stale.
func ExampleDegrader() {
	d, _ := degrade.New(degrade.Options[string]{MaxStaleness: time.Hour})
	ctx := context.Background()
	v, stale, _ := d.Execute(ctx, "price:42", func(context.Context) (string, error) { return "$10", nil })
	fmt.Println(v, stale)
	v, stale, _ = d.Execute(ctx, "price:42", func(context.Context) (string, error) { return "", errors.New("unavailable") })
	fmt.Println(v, stale)
	// Output:
	// $10 false
	// $10 true
}
