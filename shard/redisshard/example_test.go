package redisshard_test

import (
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/shard"
	"github.com/sysdesign-go/sysdesign/shard/redisshard"
)

// On Redis Cluster each shard's prefix carries its own hash tag, so the
// shard's keys share a slot and different shards spread over the nodes.
// A prefix without one is refused before any key is written.
//
// Guide: "Database Design → Database Sharding" (horizontal sharding).
func ExampleNewStore() {
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:7001"}})
	defer cluster.Close()

	_, err := redisshard.NewStore(cluster, "orders:s1:", redisshard.Options{})
	fmt.Println(errors.Is(err, shard.ErrInvalidConfig))
	_, err = redisshard.NewStore(cluster, "orders:{s1}:", redisshard.Options{})
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}
