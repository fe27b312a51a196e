package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/resilience/dlq"
)

// Guide: "Performance Considerations → Throughput Optimization → Message
// Queues → Dead Letter Queues".
// A worker retries a message that fails, then moves it to the dead letters.
func ExampleWorker() {
	q := dlq.NewMemoryQueue()
	ctx := context.Background()
	for _, body := range []string{"order-1", "not json", "order-2"} {
		_, _ = q.Publish(ctx, []byte(body))
	}
	w, _ := dlq.NewWorker(dlq.WorkerOptions{
		Queue: q,
		Handler: func(_ context.Context, m dlq.Message) error {
			if string(m.Body) == "not json" {
				return errors.New("invalid message")
			}
			return nil
		},
		MaxAttempts: 3,
		Wait:        time.Millisecond,
	})
	for {
		if got, _ := w.ProcessOne(ctx); !got {
			break
		}
	}
	dead, _ := q.DeadLetters(ctx, 10)
	fmt.Printf("%+v\n", w.Stats())
	fmt.Printf("%s: %s after %d attempts\n", dead[0].Body, dead[0].Reason, dead[0].Attempts)
	// Output:
	// {Processed:5 Succeeded:2 Retried:2 DeadLettered:1}
	// not json: invalid message after 3 attempts
}
