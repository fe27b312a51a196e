// Package chromium finds a headless Chromium for the examples' browser
// tests.
package chromium

import (
	"os"
	"os/exec"
	"testing"
)

// Find returns the path of a headless Chromium: SYSDESIGN_CHROMIUM, else
// the first of the usual names on PATH. Without one the test skips, unless
// SYSDESIGN_REQUIRE_CHROMIUM is set; purpose says what the browser is for.
func Find(t testing.TB, purpose string) string {
	t.Helper()
	if p := os.Getenv("SYSDESIGN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no headless Chromium on PATH " + purpose + " (apt-get install chromium, or set SYSDESIGN_CHROMIUM to its path)"
	if os.Getenv("SYSDESIGN_REQUIRE_CHROMIUM") != "" {
		t.Fatal(msg + "; SYSDESIGN_REQUIRE_CHROMIUM is set, so this fails instead of skipping")
	}
	t.Skip(msg + "; set SYSDESIGN_REQUIRE_CHROMIUM=1 to fail instead of skipping")
	return ""
}
