// Package lb implements the load-balancing patterns of GUIDE.md,
// "Scalability Patterns → Load Balancing Strategies" (round robin, least
// connections, IP hash, weighted round robin, geographic, health check
// integration), with "Fault Tolerance → Failover" and "Latency Optimization
// → Load Balancing".
package lb
