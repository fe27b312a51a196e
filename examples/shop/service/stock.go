package service

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/examples/shop/inventory"
)

// The inventory implementations [NewStock] builds.
const (
	StockRaft         = "raft"
	StockRedis        = "redis"
	StockReservations = "reservations"
)

// NewStock returns the inventory named kind: "raft" (a three-node Raft
// group in this process, on disk under dataDir/raft), "redis" or
// "reservations" (holds expiring after holdTTL) on client under prefix.
// close releases what it started.
func NewStock(ctx context.Context, kind, dataDir string, client redis.UniversalClient, prefix string, holdTTL time.Duration) (inventory.Store, func() error, error) {
	none := func() error { return nil }
	switch kind {
	case StockRedis:
		return inventory.NewRedis(client, prefix+"stock:"), none, nil
	case StockReservations:
		s, err := inventory.NewReservations(client, inventory.ReservationOptions{Prefix: prefix + "holds:", HoldTTL: holdTTL})
		return s, none, err
	case StockRaft:
		c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 3, DataDir: filepath.Join(dataDir, "raft")})
		if err != nil {
			return nil, nil, err
		}
		closeRaft := func() error { return c.Close(context.Background()) }
		_, err = c.WaitLeader(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("raft: %w (and %w)", err, closeRaft())
		}
		return inventory.NewRaft("stock/", c.Nodes()...), closeRaft, nil
	}
	return nil, nil, fmt.Errorf("%w: inventory %q (raft, redis or reservations)", ErrInvalidConfig, kind)
}
