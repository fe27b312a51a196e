package shard

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Router, Migration or CachedDirectory its constructor did not make has
// no placement to work on: its calls return an error wrapping ErrInvalidConfig at once — never a panic, and never an
// empty answer that looks like an empty store (a zero Router counting 0
// keys, a zero Migration that copies nothing and then lets Switch pass).
func TestZeroValuesFailClearly(t *testing.T) {
	for name, call := range map[string]func(ctx context.Context) error{
		"Router.Get":        func(ctx context.Context) error { var r Router; _, err := r.Get(ctx, "k"); return err },
		"Router.Put":        func(ctx context.Context) error { var r Router; return r.Put(ctx, "k", nil) },
		"Router.Delete":     func(ctx context.Context) error { var r Router; return r.Delete(ctx, "k") },
		"Router.ShardFor":   func(context.Context) error { var r Router; _, err := r.ShardFor("k"); return err },
		"Router.Scan":       func(ctx context.Context) error { var r Router; _, err := r.Scan(ctx, "", "", 0); return err },
		"Router.Count":      func(ctx context.Context) error { var r Router; _, err := r.Count(ctx, "", ""); return err },
		"Router.TopN":       func(ctx context.Context) error { var r Router; _, err := r.TopN(ctx, "", "", 1, cmpKV); return err },
		"Scatter":           func(ctx context.Context) error { _, _, err := Scatter(ctx, &Router{}, okQuery); return err },
		"Migration.Get":     func(ctx context.Context) error { var m Migration; _, err := m.Get(ctx, "k"); return err },
		"Migration.Put":     func(ctx context.Context) error { var m Migration; return m.Put(ctx, "k", nil) },
		"Migration.Delete":  func(ctx context.Context) error { var m Migration; return m.Delete(ctx, "k") },
		"Migration.Copy":    func(ctx context.Context) error { var m Migration; return m.Copy(ctx) },
		"Migration.Verify":  func(ctx context.Context) error { var m Migration; _, err := m.Verify(ctx); return err },
		"Migration.Switch":  func(context.Context) error { var m Migration; return m.Switch() },
		"Migration.Router":  func(context.Context) error { var m Migration; _, err := m.Router(RouterOptions{}); return err },
		"Migration.Cleanup": func(ctx context.Context) error { var m Migration; _, err := m.Cleanup(ctx); return err },
		"CachedDirectory": func(ctx context.Context) error {
			var c CachedDirectory
			i, err := c.Lookup(ctx, "k")
			if i != -1 {
				return fmt.Errorf("index %d, want -1 (err %v)", i, err)
			}
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = call(t.Context()) })
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.ErrorContains(t, err, "not made by New")
		})
	}
}

func cmpKV(a, b KV) int { return 0 }

func okQuery(context.Context, string, Store) (int, error) { return 0, nil }
