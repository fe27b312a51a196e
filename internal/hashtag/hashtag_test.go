package hashtag

import "testing"

func TestHas(t *testing.T) {
	for prefix, want := range map[string]bool{
		"orders:{s1}:": true,
		"{a}":          true,
		"{a}{b}":       true,
		"x{}{a}:":      false, // the first tag is empty: Redis hashes the whole key
		"orders:s1:":   false,
		"orders:{s1:":  false, // the close brace would come from the key's suffix
		"orders:}s1{:": false,
		"":             false,
	} {
		if got := Has(prefix); got != want {
			t.Errorf("Has(%q) = %v, want %v", prefix, got, want)
		}
	}
}
