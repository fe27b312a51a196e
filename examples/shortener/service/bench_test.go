package service

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// benchService returns a service over a fresh store holding n codes, and
// the codes.
func benchService(b *testing.B, cfg Config, n int) (*Service, []string) {
	b.Helper()
	storage, err := OpenStorage(b.TempDir(), StorageOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = storage.Close() })
	cfg.ClickInterval = 10 * time.Millisecond
	s, err := New(context.Background(), storage, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	codes := make([]string, n)
	byShard := map[*boltStore]map[string][]byte{} // one transaction per shard: an fsync per code would dominate
	for i := range codes {
		codes[i] = counterCode(uint64(i))
		st, err := storage.owner("u:" + codes[i])
		if err != nil {
			b.Fatal(err)
		}
		if byShard[st] == nil {
			byShard[st] = map[string][]byte{}
		}
		byShard[st]["u:"+codes[i]] = fmt.Appendf(nil, `{"url":"https://example.com/%d","created":1}`, i)
	}
	for st, kvs := range byShard {
		if err := st.db.Update(func(tx *bbolt.Tx) error {
			for k, v := range kvs {
				if err := tx.Bucket(bucket).Put([]byte(k), v); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range codes {
		if _, err := s.lookup(context.Background(), c); err != nil { // fills L1 when cached
			b.Fatal(err)
		}
	}
	return s, codes
}

// benchConfigs are the service set-ups the benchmarks compare: the L1
// cache in front of the store, and the store alone.
var benchConfigs = []struct {
	name string
	cfg  Config
}{{"cache=l1", Config{}}, {"cache=off", Config{NoCache: true}}}

// The redirect's lookup alone: an L1 hit against a read of the bbolt
// store (through the shard router, decoding the record).
func BenchmarkService_Lookup(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			s, codes := benchService(b, bc.cfg, 1024)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := s.lookup(ctx, codes[i&1023]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// A whole redirect through the service's handler (routing, metrics,
// lookup, click counting, response), without the network.
func BenchmarkService_Redirect(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			s, codes := benchService(b, bc.cfg, 1024)
			h := s.Handler()
			reqs := make([]*http.Request, len(codes))
			for i, c := range codes {
				reqs[i] = httptest.NewRequest(http.MethodGet, "/"+c, nil)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, reqs[i&1023])
					if w.Code != http.StatusFound {
						b.Errorf("status %d", w.Code)
						return
					}
					i++
				}
			})
		})
	}
}
