package redisdlq_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/dlq/redisdlq"
)

// A queue's name is the Redis Cluster hash tag of its stream and its
// dead-letter stream, which Retry and Dead change in one transaction; a
// name with braces would break that and is refused before Redis is
// contacted. With a valid name, New creates the stream and consumer group
// and the queue goes to a [dlq.Worker].
//
// Guide: "Performance Considerations → Throughput Optimization → Message
// Queues → Dead Letter Queues".
func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()

	_, err := redisdlq.New(context.Background(), client, "{orders}", redisdlq.Options{Prefix: "app:"})
	fmt.Println(errors.Is(err, resilience.ErrInvalidConfig))
	// Output: true
}
