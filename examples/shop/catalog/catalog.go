// Package catalog is the shop's product catalog, from the guide's
// "Real-World System Designs → 4. E-commerce Platform" (Product Catalog:
// search and filtering) and "Database Design → Caching Strategies"
// (cache-aside, invalidation on write).
//
// Products live in a bbolt file (the source of truth) and in a bleve
// full-text index rebuilt from it at start; [Catalog.Search] answers a text
// query with filters on category, brand, price and any attribute, facet
// counts for the filters a page shows, and a cursor for the next page.
// [Catalog.Get], the product page, reads through an in-process cache of
// package cache, which [Catalog.Put] invalidates.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
	bolt "go.etcd.io/bbolt"

	"github.com/sysdesign-go/sysdesign/cache"
)

// Errors callers branch on, wrapped with the value at fault.
var (
	// ErrNotFound: no product with that id.
	ErrNotFound = errors.New("catalog: product not found")
	// ErrInvalid: a product or query the catalog cannot accept.
	ErrInvalid = errors.New("catalog: invalid")
)

// Product is one item for sale.
type Product struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Category    string            `json:"category"`
	Brand       string            `json:"brand,omitempty"`
	Price       int64             `json:"price"` // cents
	Attributes  map[string]string `json:"attributes,omitempty"`
}

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	attrPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

// Validate reports the first field of p that the catalog cannot accept.
func (p Product) Validate() error {
	switch {
	case !idPattern.MatchString(p.ID):
		return fmt.Errorf("%w: id %q (lower-case letters, digits and '-', up to 64)", ErrInvalid, p.ID)
	case p.Name == "" || len(p.Name) > 200:
		return fmt.Errorf("%w: name of %d bytes (1 to 200)", ErrInvalid, len(p.Name))
	case len(p.Description) > 4000:
		return fmt.Errorf("%w: description of %d bytes (up to 4000)", ErrInvalid, len(p.Description))
	case p.Category == "" || len(p.Category) > 64 || len(p.Brand) > 64:
		return fmt.Errorf("%w: category %q or brand %q (category required, up to 64 bytes each)", ErrInvalid, p.Category, p.Brand)
	case p.Price <= 0 || p.Price > 100_000_000:
		return fmt.Errorf("%w: price %d (1 to 100000000 cents)", ErrInvalid, p.Price)
	case len(p.Attributes) > 16:
		return fmt.Errorf("%w: %d attributes (up to 16)", ErrInvalid, len(p.Attributes))
	}
	for k, v := range p.Attributes {
		if !attrPattern.MatchString(k) || v == "" || len(v) > 64 {
			return fmt.Errorf("%w: attribute %q=%q", ErrInvalid, k, v)
		}
	}
	return nil
}

// Catalog is the product store with its search index and page cache. It is
// safe for concurrent use.
type Catalog struct {
	db    *bolt.DB
	index bleve.Index
	pages *cache.Memory[string, Product]
	aside *cache.Aside[string, Product]
}

var bucketProducts = []byte("products")

// Open opens the catalog in the bbolt file at path and indexes it.
func Open(path string) (*Catalog, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	c := &Catalog{db: db}
	if c.index, err = bleve.NewMemOnly(indexMapping()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if c.pages, err = cache.NewMemory[string, Product](10_000, cache.MemoryOptions[string, Product]{DefaultTTL: 5 * time.Minute}); err == nil {
		c.aside, err = cache.NewAside(c.pages.AsStore(), cache.AsideOptions{NegativeTTL: time.Second})
	}
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucketProducts)
			if err != nil {
				return err
			}
			batch := c.index.NewBatch()
			err = b.ForEach(func(_, v []byte) error {
				var p Product
				if err := json.Unmarshal(v, &p); err != nil {
					return err
				}
				return batch.Index(p.ID, doc(p))
			})
			if err != nil {
				return err
			}
			return c.index.Batch(batch)
		})
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return c, nil
}

// Close closes the index and the file.
func (c *Catalog) Close() error {
	return errors.Join(c.index.Close(), c.db.Close())
}

func indexMapping() mapping.IndexMapping {
	keyword := bleve.NewKeywordFieldMapping()
	text := bleve.NewTextFieldMapping()
	text.Analyzer = "en"
	m := bleve.NewDocumentMapping()
	m.AddFieldMappingsAt("name", text)
	m.AddFieldMappingsAt("description", text)
	m.AddFieldMappingsAt("category", keyword)
	m.AddFieldMappingsAt("brand", keyword)
	m.AddFieldMappingsAt("price", bleve.NewNumericFieldMapping())
	attrs := bleve.NewDocumentMapping()
	attrs.DefaultAnalyzer = "keyword"
	m.AddSubDocumentMapping("attrs", attrs)
	im := bleve.NewIndexMapping()
	im.DefaultMapping = m
	im.DefaultAnalyzer = "keyword"
	return im
}

// doc is what the index holds of p.
func doc(p Product) map[string]any {
	attrs := map[string]any{}
	for k, v := range p.Attributes {
		attrs[k] = v
	}
	return map[string]any{"name": p.Name, "description": p.Description, "category": p.Category,
		"brand": p.Brand, "price": float64(p.Price), "attrs": attrs}
}

// Put creates or replaces a product, reindexes it and drops its cached page.
func (c *Catalog) Put(ctx context.Context, p Product) error {
	if err := p.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := c.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketProducts).Put([]byte(p.ID), b) }); err != nil {
		return fmt.Errorf("catalog: put %q: %w", p.ID, err)
	}
	if err := c.index.Index(p.ID, doc(p)); err != nil {
		return fmt.Errorf("catalog: index %q: %w", p.ID, err)
	}
	c.pages.Delete(p.ID)
	c.aside.Forget(p.ID)
	return nil
}

// Get returns a product, from the cache when it holds it.
func (c *Catalog) Get(ctx context.Context, id string) (Product, error) {
	if !idPattern.MatchString(id) {
		return Product{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return c.aside.Get(ctx, id, func(_ context.Context, id string) (Product, error) {
		var p Product
		err := c.db.View(func(tx *bolt.Tx) error {
			v := tx.Bucket(bucketProducts).Get([]byte(id))
			if v == nil {
				return fmt.Errorf("%w: %q: %w", ErrNotFound, id, cache.ErrNotFound)
			}
			return json.Unmarshal(v, &p)
		})
		return p, err
	})
}

// CacheStats returns the page cache's counts.
func (c *Catalog) CacheStats() cache.AsideStats { return c.aside.Stats() }

// Query is a search. Every field is optional.
type Query struct {
	// Text matches name and description.
	Text string
	// Filters are exact matches: "category", "brand" or "attrs.<name>".
	Filters map[string]string
	// MinPrice and MaxPrice bound the price in cents; 0 means no bound.
	MinPrice, MaxPrice int64
	// Facets are the fields to count values of, besides category and brand.
	Facets []string
	// After is the cursor from the previous page; Limit the page size
	// (default 20, at most 100).
	After string
	Limit int
}

// Result is a page of a search.
type Result struct {
	Products []Product `json:"products"`
	Total    uint64    `json:"total"`
	// Facets count, per field, the matches with each value.
	Facets map[string]map[string]int `json:"facets"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

func checkField(f string) error {
	if f == "category" || f == "brand" {
		return nil
	}
	if name, ok := strings.CutPrefix(f, "attrs."); ok && attrPattern.MatchString(name) {
		return nil
	}
	return fmt.Errorf("%w: field %q (category, brand or attrs.<name>)", ErrInvalid, f)
}

// Search runs q and returns one page, products in id order.
func (c *Catalog) Search(ctx context.Context, q Query) (Result, error) {
	if q.Limit == 0 {
		q.Limit = 20
	}
	if q.Limit < 0 || q.Limit > 100 {
		return Result{}, fmt.Errorf("%w: limit %d (1 to 100)", ErrInvalid, q.Limit)
	}
	if len(q.Text) > 200 {
		return Result{}, fmt.Errorf("%w: query of %d bytes (up to 200)", ErrInvalid, len(q.Text))
	}
	if q.MinPrice < 0 || q.MaxPrice < 0 || (q.MaxPrice > 0 && q.MinPrice > q.MaxPrice) {
		return Result{}, fmt.Errorf("%w: price range %d..%d", ErrInvalid, q.MinPrice, q.MaxPrice)
	}
	if q.After != "" && !idPattern.MatchString(q.After) {
		return Result{}, fmt.Errorf("%w: cursor %q", ErrInvalid, q.After)
	}
	var must []query.Query
	if t := strings.TrimSpace(q.Text); t != "" {
		name := bleve.NewMatchQuery(t)
		name.SetField("name")
		desc := bleve.NewMatchQuery(t)
		desc.SetField("description")
		must = append(must, bleve.NewDisjunctionQuery(name, desc))
	}
	fields := make([]string, 0, len(q.Filters))
	for f := range q.Filters {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		if err := checkField(f); err != nil {
			return Result{}, err
		}
		tq := bleve.NewTermQuery(q.Filters[f])
		tq.SetField(f)
		must = append(must, tq)
	}
	if q.MinPrice > 0 || q.MaxPrice > 0 {
		var lo, hi *float64
		if q.MinPrice > 0 {
			v := float64(q.MinPrice)
			lo = &v
		}
		if q.MaxPrice > 0 {
			v := float64(q.MaxPrice)
			hi = &v
		}
		inc := true
		rq := bleve.NewNumericRangeInclusiveQuery(lo, hi, &inc, &inc)
		rq.SetField("price")
		must = append(must, rq)
	}
	var bq query.Query = bleve.NewMatchAllQuery()
	if len(must) > 0 {
		bq = bleve.NewConjunctionQuery(must...)
	}
	req := bleve.NewSearchRequestOptions(bq, q.Limit+1, 0, false)
	req.SortBy([]string{"_id"})
	if q.After != "" {
		req.SetSearchAfter([]string{q.After})
	}
	facets := append([]string{"category", "brand"}, q.Facets...)
	for _, f := range facets {
		if err := checkField(f); err != nil {
			return Result{}, err
		}
		req.AddFacet(f, bleve.NewFacetRequest(f, 50))
	}
	res, err := c.index.SearchInContext(ctx, req)
	if err != nil {
		return Result{}, fmt.Errorf("catalog: search: %w", err)
	}
	out := Result{Total: res.Total, Facets: map[string]map[string]int{}}
	for name, fr := range res.Facets {
		m := map[string]int{}
		if fr.Terms != nil {
			for _, t := range fr.Terms.Terms() {
				m[t.Term] = t.Count
			}
		}
		out.Facets[name] = m
	}
	hits := res.Hits
	if len(hits) > q.Limit {
		hits = hits[:q.Limit]
		out.Next = hits[len(hits)-1].ID
	}
	for _, h := range hits {
		p, err := c.Get(ctx, h.ID)
		if err != nil {
			return Result{}, err
		}
		out.Products = append(out.Products, p)
	}
	if out.Products == nil {
		out.Products = []Product{}
	}
	return out, nil
}
