package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// guidePath finds GUIDE.md: GUIDE_MD if set, else ../shared/GUIDE.md beside
// the repository.
func guidePath() string {
	if p := os.Getenv("GUIDE_MD"); p != "" {
		return p
	}
	return filepath.Join("..", "..", "..", "shared", "GUIDE.md")
}

var notAlnum = regexp.MustCompile(`[^a-z0-9]+`)

func normalize(s string) string { return notAlnum.ReplaceAllString(strings.ToLower(s), "") }

// Every experiment quotes the guide: each fragment of its Guide text
// (fragments are separated by "...", "—" or ";") appears in GUIDE.md, up to
// punctuation, case and Markdown emphasis.
func TestExperimentsQuoteTheGuide(t *testing.T) {
	raw, err := os.ReadFile(guidePath())
	if err != nil {
		t.Skipf("GUIDE.md not found at %s (set GUIDE_MD): %v", guidePath(), err)
	}
	guide := normalize(string(raw))
	sep := regexp.MustCompile(`\s*(?:\.\.\.|…|;| — )\s*`)
	for _, e := range experiments() {
		for _, frag := range sep.Split(e.Guide, -1) {
			if strings.TrimSpace(frag) == "" {
				continue
			}
			if !strings.Contains(guide, normalize(frag)) {
				t.Errorf("experiment %s quotes %q, which is not in GUIDE.md", e.Name, frag)
			}
		}
	}
}
