// Package degrade implements, from the guide System Design Round —
// Principal Engineer Interview Preparation, "Fault Tolerance → Graceful
// Degradation": a [Degrader] serves the last good value of a key, marked
// stale, when the dependency fails ("Cached Responses: Serve stale but
// available data"), and [Switches] turn non-critical features off, one by
// one or all at once in degraded mode ("Feature Flags: Disable
// non-critical features").
//
//	prices, err := degrade.New(degrade.Options[Price]{MaxStaleness: time.Hour})
//	price, stale, err := prices.Execute(ctx, "price:42", fetchPrice)
//
// A Degrader keeps the last good values in memory, or reads them from a
// [StaleSource] such as a cache that keeps expired entries. A [Switch] is
// a resilience.Guard: resilience.Guarded puts it in a resilience.Pipeline,
// where a call behind a switch that is off fails with [ErrDisabled]. Bad
// configuration returns an error wrapping resilience.ErrInvalidConfig that
// names the value; the zero [Switches] is an empty set, ready to use.
package degrade
