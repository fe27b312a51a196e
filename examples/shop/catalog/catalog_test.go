package catalog

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// bleve starts its analysis workers when its package loads, for the life
// of the process; they are not this package's goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"))
}

var products = []Product{
	{ID: "mug-blue", Name: "Blue coffee mug", Category: "kitchen", Brand: "acme", Price: 900, Attributes: map[string]string{"color": "blue"}},
	{ID: "mug-red", Name: "Red coffee mug", Category: "kitchen", Brand: "acme", Price: 950, Attributes: map[string]string{"color": "red"}},
	{ID: "kettle", Name: "Electric kettle", Description: "boils water for coffee and tea", Category: "kitchen", Brand: "volt", Price: 3500},
	{ID: "tee-red", Name: "Red t-shirt", Category: "clothing", Brand: "acme", Price: 1500, Attributes: map[string]string{"color": "red", "size": "m"}},
	{ID: "tee-blue", Name: "Blue t-shirt", Category: "clothing", Brand: "loom", Price: 1600, Attributes: map[string]string{"color": "blue", "size": "l"}},
}

func open(t *testing.T) (*Catalog, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	for _, p := range products {
		require.NoError(t, c.Put(t.Context(), p))
	}
	return c, path
}

func ids(ps []Product) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

// Text, filters, price range and facets combine; facets count the matches.
func TestSearchFiltersAndFacets(t *testing.T) {
	c, _ := open(t)
	ctx := t.Context()
	res, err := c.Search(ctx, Query{Text: "coffee"})
	require.NoError(t, err)
	assert.Equal(t, []string{"kettle", "mug-blue", "mug-red"}, ids(res.Products))
	assert.Equal(t, map[string]int{"acme": 2, "volt": 1}, res.Facets["brand"])

	res, err = c.Search(ctx, Query{Filters: map[string]string{"attrs.color": "red"}, Facets: []string{"attrs.size"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"mug-red", "tee-red"}, ids(res.Products))
	assert.Equal(t, map[string]int{"clothing": 1, "kitchen": 1}, res.Facets["category"])
	assert.Equal(t, map[string]int{"m": 1}, res.Facets["attrs.size"])

	res, err = c.Search(ctx, Query{Filters: map[string]string{"category": "clothing"}, MinPrice: 1550})
	require.NoError(t, err)
	assert.Equal(t, []string{"tee-blue"}, ids(res.Products))
}

// A cursor pages through every match once, in id order.
func TestSearchPages(t *testing.T) {
	c, _ := open(t)
	var got []string
	after := ""
	for range 5 {
		res, err := c.Search(t.Context(), Query{Limit: 2, After: after})
		require.NoError(t, err)
		assert.EqualValues(t, 5, res.Total)
		got = append(got, ids(res.Products)...)
		if after = res.Next; after == "" {
			break
		}
	}
	assert.Equal(t, []string{"kettle", "mug-blue", "mug-red", "tee-blue", "tee-red"}, got)
}

// The product page is cached, and a change invalidates it at once.
func TestPageCacheInvalidatedOnChange(t *testing.T) {
	c, path := open(t)
	ctx := t.Context()
	p, err := c.Get(ctx, "kettle")
	require.NoError(t, err)
	_, err = c.Get(ctx, "kettle")
	require.NoError(t, err)
	assert.EqualValues(t, 1, c.CacheStats().Hits)

	p.Price = 2999
	require.NoError(t, c.Put(ctx, p))
	got, err := c.Get(ctx, "kettle")
	require.NoError(t, err)
	assert.EqualValues(t, 2999, got.Price)
	res, err := c.Search(ctx, Query{MaxPrice: 3000, Filters: map[string]string{"brand": "volt"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"kettle"}, ids(res.Products), "the index follows the change")

	// Reopened, the index is rebuilt from the file.
	require.NoError(t, c.Close())
	c2, err := Open(path)
	require.NoError(t, err)
	defer c2.Close()
	res, err = c2.Search(ctx, Query{Text: "kettle"})
	require.NoError(t, err)
	require.Len(t, res.Products, 1)
	assert.EqualValues(t, 2999, res.Products[0].Price)
}

// Bad products and queries are refused by name; unknown ids are not found.
func TestBadInput(t *testing.T) {
	c, _ := open(t)
	ctx := t.Context()
	for _, p := range []Product{
		{ID: "Bad ID", Name: "x", Category: "c", Price: 1},
		{ID: "x", Category: "c", Price: 1},
		{ID: "x", Name: "x", Category: "c", Price: 0},
		{ID: "x", Name: "x", Category: "c", Price: -5},
		{ID: "x", Name: "x", Category: "c", Price: 1, Attributes: map[string]string{"Bad Key": "v"}},
	} {
		assert.ErrorIs(t, c.Put(ctx, p), ErrInvalid, "%+v", p)
	}
	for _, q := range []Query{{Limit: 101}, {Limit: -1}, {Filters: map[string]string{"price": "1"}}, {Facets: []string{"name"}},
		{MinPrice: 10, MaxPrice: 5}, {After: "{}"}} {
		_, err := c.Search(ctx, q)
		assert.ErrorIs(t, err, ErrInvalid, "%+v", q)
	}
	_, err := c.Get(ctx, "nope")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = c.Get(ctx, "../etc")
	assert.ErrorIs(t, err, ErrNotFound)
}
