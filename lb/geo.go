package lb

import (
	"maps"
	"math"
	"sort"
	"time"
)

// Geo routes each request to the nearest zone that has a healthy backend
// with spare capacity, and within that zone to the less loaded of two
// random backends (as [P2C]). Nearness is the great-circle distance from
// [Request.Coord] to the zone's backends' mean coordinates, or, for
// requests that give only a [Request.Zone], the configured ZoneLatency
// (the request's own zone is at 0). When the nearest
// zone has no backend in rotation (all unhealthy, ejected or draining) or
// all of its backends are at [Backend.Capacity], the request spills over
// to the next nearest zone. Requests with no origin go to the least loaded
// of two random backends anywhere. Zones equally near are tried in the
// order of their names.
//
// Pros (the guide, Geographic; Latency Optimization → Geographic Load
// Balancing): it reduces latency and improves user experience, and it
// contains a zone's failure: only that zone's users move. Cons: complex
// implementation, requires geographic routing data (coordinates or a
// latency table) that must be kept right; a spill-over can overload the
// next zone, so give backends a Capacity. The panic threshold counts all
// zones together. Use it for global applications and CDN-like services.
//
// Geo picks lock-free; a pick costs O(zones + backends of the zones tried).
// Backends without a Zone form the zone "".
type Geo struct {
	// ZoneLatency is the configured latency from a request's zone (the
	// outer key) to a backend zone (the inner key), for requests that give
	// a Zone and no Coord. A request's own zone is at latency 0 unless the
	// table says otherwise; zones missing from the table are tried last.
	// Negative latencies are errors. New copies the table.
	ZoneLatency map[string]map[string]time.Duration
}

func (a Geo) setup() (algoSetup, error) {
	table := make(map[string]map[string]time.Duration, len(a.ZoneLatency))
	for from, row := range a.ZoneLatency {
		for to, d := range row {
			if d < 0 {
				return algoSetup{}, configErr(nil, "zone latency %q→%q is %v (want ≥ 0)", from, to, d)
			}
		}
		table[from] = maps.Clone(row)
	}
	return algoSetup{readsLoad: true, build: func(active []*endpoint, b *Balancer) (picker, error) {
		return buildGeo(active, table, &b.rng), nil
	}}, nil
}

type geoZone struct {
	name  string
	coord *Coord // mean of the backends' coordinates, nil if none has any
	eps   []*endpoint
	inv   []float64
}

func buildGeo(active []*endpoint, latency map[string]map[string]time.Duration, r *rng) *geoPicker {
	byName := map[string]*geoZone{}
	sums := map[string]*[3]float64{}
	for _, e := range active {
		z := byName[e.b.Zone]
		if z == nil {
			z = &geoZone{name: e.b.Zone}
			byName[e.b.Zone] = z
			sums[e.b.Zone] = &[3]float64{}
		}
		z.eps = append(z.eps, e)
		z.inv = append(z.inv, 1/e.weightNow())
		if e.b.Coord != nil {
			s := sums[e.b.Zone]
			s[0] += e.b.Coord.Lat
			s[1] += e.b.Coord.Lon
			s[2]++
		}
	}
	p := &geoPicker{all: &p2cPicker{eps: active, inv: inverseWeights(active, true), rng: r}, rng: r}
	for name, z := range byName {
		if s := sums[name]; s[2] > 0 {
			z.coord = &Coord{Lat: s[0] / s[2], Lon: s[1] / s[2]}
		}
		p.zones = append(p.zones, *z)
	}
	sort.Slice(p.zones, func(i, j int) bool { return p.zones[i].name < p.zones[j].name })
	// Precompute the latency from every known origin zone to every backend
	// zone, so a pick does one map lookup.
	p.rows = map[string][]float64{}
	origins := map[string]bool{}
	for from := range latency {
		origins[from] = true
	}
	for _, z := range p.zones {
		origins[z.name] = true
	}
	for from := range origins {
		row := make([]float64, len(p.zones))
		for i, z := range p.zones {
			d, ok := latency[from][z.name]
			switch {
			case ok:
				row[i] = float64(d)
			case z.name == from:
				row[i] = 0
			default:
				row[i] = math.Inf(1)
			}
		}
		p.rows[from] = row
	}
	return p
}

type geoPicker struct {
	zones []geoZone
	rows  map[string][]float64 // origin zone → latency to each zone
	all   *p2cPicker
	rng   *rng
}

// maxTrackedZones is how many zones a pick tracks without allocating.
const maxTrackedZones = 64

func (p *geoPicker) distance(req *Request, row []float64, i int) float64 {
	if req.Coord != nil {
		if c := p.zones[i].coord; c != nil {
			return distanceKm(*req.Coord, *c)
		}
		return math.Inf(1)
	}
	return row[i]
}

func (p *geoPicker) pick(req Request, _ int64) *endpoint {
	var row []float64
	if req.Coord == nil {
		var ok bool
		if row, ok = p.rows[req.Zone]; !ok {
			return p.all.pick(req, 0)
		}
	}
	nz := len(p.zones)
	var triedSmall uint64
	var triedBig []bool
	if nz > maxTrackedZones {
		triedBig = make([]bool, nz)
	}
	tried := func(i int) bool {
		if triedBig != nil {
			return triedBig[i]
		}
		return triedSmall&(1<<uint(i)) != 0
	}
	for range nz {
		best, bestD := -1, math.Inf(1)
		for i := range nz {
			if tried(i) {
				continue
			}
			if d := p.distance(&req, row, i); best < 0 || d < bestD {
				best, bestD = i, d
			}
		}
		if e := p.zones[best].pick(p.rng); e != nil {
			return e
		}
		if triedBig != nil {
			triedBig[best] = true
		} else {
			triedSmall |= 1 << uint(best)
		}
	}
	return nil
}

// pick chooses the less loaded of two random backends of the zone that are
// below capacity, or nil if all of them are at capacity.
func (z *geoZone) pick(r *rng) *endpoint {
	n := len(z.eps)
	free := func(e *endpoint) bool { return e.b.Capacity == 0 || e.inflight() < int64(e.b.Capacity) }
	if n == 1 {
		if free(z.eps[0]) {
			return z.eps[0]
		}
		return nil
	}
	i, j := two(r, n)
	a, b := z.eps[i], z.eps[j]
	switch fa, fb := free(a), free(b); {
	case fa && fb: // a tie may go to either (see p2cPicker.pick)
		if float64(b.inflight()+1)*z.inv[j] < float64(a.inflight()+1)*z.inv[i] {
			return b
		}
		return a
	case fa:
		return a
	case fb:
		return b
	}
	for _, e := range z.eps {
		if free(e) {
			return e
		}
	}
	return nil
}
