// Package consensus implements GUIDE.md, "Distributed Systems →
// Distributed Consensus" (Raft leader election, log replication, safety),
// "CAP Theorem" and "Consistency Models", on github.com/hashicorp/raft.
package consensus
