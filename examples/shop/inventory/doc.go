// Package inventory keeps stock for the shop without overselling: the
// guide's "Real-World System Designs → 4. E-commerce Platform" (Inventory
// Management: stock tracking), which its "Distributed Systems → CAP Theorem"
// section names as a CP use case.
//
// One interface, [Store], and three implementations a reader can compare:
//
//   - [Raft]: a compare-and-swap on the Raft store of package consensus.
//     Linearizable, and CP: in a minority partition it refuses
//     ([ErrUnavailable]) rather than sell stock the majority may have sold.
//   - [Redis]: one atomic Lua script per operation on Redis (Cluster-safe:
//     every key of a product shares a hash tag). Fast, but Redis replicates
//     asynchronously, so a failover can forget a sale that was acknowledged.
//   - [Reservations]: the same Redis scripts with holds that expire: stock
//     held for a checkout returns to the shelf by itself when the checkout
//     neither commits nor releases it within HoldTTL — a crashed checkout
//     leaks nothing, but a slow payment can outlive its hold.
//
// Every implementation keeps, per product, Available + Reserved + Sold =
// Total and never lets a count go negative. Each hold belongs to one order,
// so Reserve, Commit and Release are idempotent per order: a saga that
// retries a step, or resumes after a crash, never takes stock twice.
package inventory
