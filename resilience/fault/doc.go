// Package fault is chaos engineering in process, from the guide System
// Design Round — Principal Engineer Interview Preparation, "Fault
// Tolerance → Chaos Engineering: Failure Injection, Chaos Monkey, Latency
// Monkey": an [Injector] adds latency, errors, aborts and hangs to calls —
// by probability, by request header, or on a schedule ([Periodic]) — as
// Envoy's fault-injection filter does, for Go functions (it is a
// resilience.Guard), HTTP servers ([Injector.Middleware]) and HTTP
// clients ([Injector.RoundTripper]). Use it in tests and game days to
// prove that the policies of package resilience do their job.
//
//	chaos, err := fault.NewInjector(fault.Options{DelayProbability: 0.1, Delay: 200 * time.Millisecond, ErrorProbability: 0.05})
//	client := &http.Client{Transport: chaos.RoundTripper(nil)}
//
// An injected fault is a *resilience.PolicyError wrapping [ErrInjected].
// Bad configuration returns an error wrapping resilience.ErrInvalidConfig
// that names the value. The zero Injector injects nothing.
package fault
