package service

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBase62(t *testing.T) {
	assert.Equal(t, "0000000", base62(0, 7))
	assert.Equal(t, "000000z", base62(61, 7))
	assert.Equal(t, "0000010", base62(62, 7))
	assert.Equal(t, "zzzzzzz", base62(codeSpace-1, 7))
	assert.Equal(t, "10000000", base62(codeSpace, 7), "wider values are not truncated")
}

// Counter codes are distinct for distinct IDs — within the 7-character
// space (the scramble is a bijection) and beyond it.
func TestCounterCodesAreUnique(t *testing.T) {
	seen := map[string]uint64{}
	check := func(id uint64) {
		code := counterCode(id)
		require.True(t, validCode(code), code)
		if prev, dup := seen[code]; dup {
			t.Fatalf("IDs %d and %d share code %q", prev, id, code)
		}
		seen[code] = id
	}
	for id := range uint64(200_000) {
		check(id)
	}
	for id := uint64(codeSpace - 1000); id < codeSpace+1000; id++ {
		check(id)
	}
	assert.Len(t, counterCode(5), 7)
	assert.Len(t, counterCode(codeSpace), 8)
	assert.NotEqual(t, "0000001", counterCode(1), "consecutive IDs do not give consecutive codes")
}

func TestHashCodes(t *testing.T) {
	a := hashCode("https://example.com", 0, 7)
	assert.Len(t, a, 7)
	assert.Equal(t, a, hashCode("https://example.com", 0, 7), "deterministic")
	assert.NotEqual(t, a, hashCode("https://example.com", 1, 7), "a retry salts the hash")
	assert.NotEqual(t, a, hashCode("https://example.org", 0, 7))
	assert.Len(t, hashCode("x", 0, 11), 11)
}

// The allocator hands out each ID once across goroutines and reserves a
// block only when the last one is spent.
func TestBlockAllocator(t *testing.T) {
	var mu sync.Mutex
	var next uint64
	reserves := 0
	a := &blockAllocator{size: 10, reserve: func(_ context.Context, n uint64) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		reserves++
		start := next
		next += n
		return start, nil
	}}
	var ids sync.Map
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				id, err := a.Next(context.Background())
				assert.NoError(t, err)
				_, dup := ids.LoadOrStore(id, true)
				assert.False(t, dup, "ID %d handed out twice", id)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 10, reserves)
	failing := &blockAllocator{size: 10, reserve: func(context.Context, uint64) (uint64, error) { return 0, errors.New("disk full") }}
	_, err := failing.Next(context.Background())
	assert.ErrorContains(t, err, "disk full")
}

// Whatever the input, validateURL never panics, and what it accepts is an
// absolute http(s) URL with a host that validates again unchanged.
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{"https://example.com", "javascript:alert(1)", "http://a@b", "HTTP://X.Y/%zz", "data:,x", "https://[::1]:80/", "http://a.b:0/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, apiErr := validateURL(raw, 2048, []string{"self.example"})
		if apiErr != nil {
			require.GreaterOrEqual(t, apiErr.Status, 400)
			require.Less(t, apiErr.Status, 500)
			return
		}
		u, err := url.Parse(got)
		require.NoError(t, err)
		require.Contains(t, []string{"http", "https"}, u.Scheme)
		require.NotEmpty(t, u.Hostname())
		require.Nil(t, u.User)
		require.False(t, strings.ContainsAny(got, " \t\r\n"))
		again, apiErr := validateURL(got, 2048, []string{"self.example"})
		require.Nil(t, apiErr, "accepted %q, then refused %q", raw, got)
		require.Equal(t, got, again)
	})
}

// Alias validation accepts exactly the documented charset and lengths.
func FuzzValidCode(f *testing.F) {
	for _, s := range []string{"abc", "a-b_c", "ab", "a/b", "ü12", strings.Repeat("x", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok := validCode(s)
		want := len(s) >= 3 && len(s) <= 32 && strings.Trim(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-") == ""
		require.Equal(t, want, ok, "%q", s)
	})
}
