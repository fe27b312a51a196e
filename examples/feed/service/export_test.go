package service

import "github.com/sysdesign-go/sysdesign/resilience"

// RoutePatterns returns the patterns the service's mux serves.
func RoutePatterns(s *Service) []string {
	var out []string
	for _, r := range s.routeTable() {
		out = append(out, r.pattern)
	}
	return out
}

// SearchBulkhead returns the bulkhead searches run in.
func SearchBulkhead(s *Service) *resilience.Bulkhead { return s.searchBH }
