package service

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/shop/order"
)

// recommendations keeps "bought together" counts: for every completed
// order and every pair of its products (a, b), b's score in a's sorted set
// grows by one. A consumer of the order events feeds it; each product's
// update is one script that first records the order in the product's seen
// set, so a redelivered event counts once.
type recommendations struct {
	client redis.UniversalClient
	prefix string
}

var togetherScript = redis.NewScript(`
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
for i = 2, #ARGV do redis.call('ZINCRBY', KEYS[1], 1, ARGV[i]) end
return 1
`)

func (r *recommendations) keys(product string) []string {
	base := r.prefix + "{" + product + "}:"
	return []string{base + "together", base + "seen"}
}

// apply counts a completed order's pairs; other events are ignored.
func (r *recommendations) apply(ctx context.Context, e order.Event) error {
	if e.Type != order.Completed || len(e.Lines) < 2 {
		return nil
	}
	for _, a := range e.Lines {
		args := []any{e.Order}
		for _, b := range e.Lines {
			if b.Product != a.Product {
				args = append(args, b.Product)
			}
		}
		if err := togetherScript.Run(ctx, r.client, r.keys(a.Product), args...).Err(); err != nil {
			return err
		}
	}
	return nil
}

// Recommendation is a product bought together with another, and how often.
type Recommendation struct {
	Product string `json:"product"`
	Count   int    `json:"count"`
}

// top returns the n products most often bought with product.
func (r *recommendations) top(ctx context.Context, product string, n int) ([]Recommendation, error) {
	zs, err := r.client.ZRevRangeWithScores(ctx, r.keys(product)[0], 0, int64(n-1)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Recommendation, 0, len(zs))
	for _, z := range zs {
		out = append(out, Recommendation{Product: z.Member.(string), Count: int(z.Score)})
	}
	return out, nil
}
