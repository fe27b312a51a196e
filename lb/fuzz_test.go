package lb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
)

// FuzzBalancer drives every algorithm through a random sequence of backend
// changes and picks, and checks the invariants callers rely on: a pick
// returns a backend that is configured, in rotation (unless in panic mode)
// and not on the request's avoid list; errors are the documented ones;
// nothing panics; in-flight counts return to zero.
func FuzzBalancer(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(3))
	f.Add([]byte{3, 3, 3, 200, 17, 42, 99, 0, 0, 1}, uint8(12))
	f.Add([]byte{255, 254, 253, 128, 64, 32}, uint8(7))
	f.Fuzz(func(t *testing.T, ops []byte, which uint8) {
		a := algos[int(which)%len(algos)]
		b, err := a.new(backends(4), Options{Outlier: &OutlierOptions{ConsecutiveFailures: 2, MaxEjectionPercent: 50}})
		if err != nil {
			t.Fatal(err)
		}
		var held []Pick
		for i, op := range ops {
			addr := fmt.Sprintf("10.0.0.%d:80", 1+int(op>>3)%6)
			switch op % 8 {
			case 0:
				_ = b.Add(Backend{Addr: addr, Weight: float64(1 + op%5), Zone: fmt.Sprint(op % 3)})
			case 1:
				_ = b.Remove(addr)
			case 2:
				_ = b.SetHealthy(addr, op&16 == 0)
			case 3:
				_ = b.SetWeight(addr, float64(op%7)+0.5)
			case 4:
				_ = b.Drain(addr)
			default:
				req := Request{Key: fmt.Sprint(i), Zone: fmt.Sprint(op % 3)}
				if op&32 != 0 {
					req.Avoid = []string{addr}
				}
				p, err := b.Pick(context.Background(), req)
				if err != nil {
					if !errors.Is(err, ErrNoHealthyBackend) && !errors.Is(err, ErrAtCapacity) {
						t.Fatalf("unexpected error %v", err)
					}
					continue
				}
				s := b.Stats()
				found := false
				for _, bs := range s.Backends {
					if bs.Addr == p.Addr() {
						found = true
						if bs.State == StateDraining {
							t.Fatalf("picked draining %s", bs.Addr)
						}
						if !s.Panic && bs.State != StateHealthy && bs.State != StateSlowStart {
							t.Fatalf("picked %s in state %v outside panic mode", bs.Addr, bs.State)
						}
					}
				}
				if !found {
					t.Fatalf("picked %s, which is not configured", p.Addr())
				}
				if req.avoids(p.Addr()) && s.InRotation > 1 {
					t.Fatalf("picked avoided %s with %d in rotation", p.Addr(), s.InRotation)
				}
				if op&64 != 0 {
					held = append(held, p)
				} else {
					var rerr error
					if op&128 != 0 {
						rerr = errors.New("fail")
					}
					p.Done(Result{Err: rerr, Latency: 1})
				}
			}
		}
		for _, p := range held {
			p.Done(Result{})
		}
		for _, bs := range b.Stats().Backends {
			if bs.InFlight != 0 {
				t.Fatalf("%s has %d in flight after every Done", bs.Addr, bs.InFlight)
			}
		}
	})
}

// FuzzBackendValidation: any backend is either accepted with a positive
// finite weight or rejected with ErrInvalidConfig, never a panic.
func FuzzBackendValidation(f *testing.F) {
	f.Add("a", 1.0, 10.0, 20.0, 0, true)
	f.Add("", math.NaN(), 91.0, 0.0, -1, true)
	f.Add("x", -1.0, 0.0, 181.0, 3, false)
	f.Fuzz(func(t *testing.T, addr string, weight, lat, lon float64, capacity int, coord bool) {
		be := Backend{Addr: addr, Weight: weight, Capacity: capacity}
		if coord {
			be.Coord = &Coord{Lat: lat, Lon: lon}
		}
		b, err := New(Geo{}, []Backend{be}, Options{})
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		w := b.Backends()[0].Weight
		if !(w > 0) || math.IsInf(w, 0) {
			t.Fatalf("accepted weight %v", w)
		}
		p, err := b.Pick(context.Background(), Request{Coord: &Coord{Lat: 1, Lon: 2}})
		if err != nil {
			t.Fatal(err)
		}
		p.Done(Result{})
	})
}

// FuzzIPHashKey: any key hashes without a panic, and addresses of one /24
// hash alike.
func FuzzIPHashKey(f *testing.F) {
	f.Add("192.0.2.1", byte(7))
	f.Add("[2001:db8::1]:443", byte(0))
	f.Add("not an ip", byte(1))
	f.Fuzz(func(t *testing.T, key string, last byte) {
		_ = ipHashKey(key)
		a := fmt.Sprintf("198.51.100.%d", last)
		if ipHashKey(a) != ipHashKey("198.51.100.1") {
			t.Fatalf("%s and 198.51.100.1 hash apart", a)
		}
	})
}
