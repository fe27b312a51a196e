package main

import (
	"context"
	"encoding/json"
	"html"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/chromium"
)

// headless runs Chromium on a local page with the given extra flags and
// returns what it prints on stdout.
func headless(t *testing.T, bin, page string, flags ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
	}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, "file://"+page)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "chromium %v: %s", flags, stderr.String())
	return out
}

// probe, added before </body> of a copy of the report, writes what the
// browser made of the page into the DOM, which --dump-dom prints.
const probe = `<script>
addEventListener("load", () => {
  const charts = [...document.querySelectorAll("figure.chart")].map(f => {
    const img = f.querySelector("img");
    return {alt: img ? img.alt : "", loaded: !!img && img.complete && img.naturalWidth > 0,
            width: img ? img.naturalWidth : 0, height: img ? img.naturalHeight : 0};
  });
  const pre = document.createElement("pre");
  pre.id = "probe";
  const first = document.querySelector("section");
  pre.textContent = JSON.stringify({sections: document.querySelectorAll("section").length, charts,
    first: first ? first.id : "", ledgerRows: document.querySelectorAll("#ledger tr a").length});
  document.body.appendChild(pre);
});
</script>`

var probeRE = regexp.MustCompile(`(?s)<pre id="probe">(.*?)</pre>`)

// The quick run's report, as headless Chromium shows it: it opens with
// the ledger of verdicts, a row per experiment, every section is there,
// every chart image loads at its full width, and a screenshot of the page
// is the size asked for and not blank.
func TestReportRendersInChromium(t *testing.T) {
	bin := chromium.Find(t, "to look at the report")
	dir, _ := quickReport(t)
	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	var doc struct {
		Experiments []struct{ Charts []struct{ Title string } }
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	var titles []string
	for _, e := range doc.Experiments {
		for _, c := range e.Charts {
			titles = append(titles, c.Title)
		}
	}
	require.NotEmpty(t, titles, "the quick run draws charts")

	probed := filepath.Join(t.TempDir(), "probe.html")
	require.NoError(t, os.WriteFile(probed, []byte(strings.Replace(string(page), "</body>", probe+"</body>", 1)), 0o644))
	dom := headless(t, bin, probed, "--virtual-time-budget=10000", "--dump-dom")
	m := probeRE.FindSubmatch(dom)
	require.NotNil(t, m, "the probe ran (page loaded); DOM starts %.300q", dom)
	var got struct {
		Sections   int
		First      string
		LedgerRows int
		Charts     []struct {
			Alt           string
			Loaded        bool
			Width, Height int
		}
	}
	require.NoError(t, json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &got))
	assert.Equal(t, len(experiments())+1, got.Sections, "the ledger and one section per experiment")
	assert.Equal(t, "ledger", got.First, "the page opens with the ledger")
	assert.Equal(t, len(experiments()), got.LedgerRows, "a ledger row per experiment")
	require.Len(t, got.Charts, len(titles), "one image per chart")
	for i, c := range got.Charts {
		assert.Equal(t, titles[i], c.Alt, "chart %d", i)
		assert.True(t, c.Loaded, "chart %q loads", c.Alt)
		assert.GreaterOrEqual(t, c.Width, 900, "chart %q width (px)", c.Alt)
		assert.GreaterOrEqual(t, c.Height, 450, "chart %q height (px)", c.Alt)
	}

	const w, h = 1280, 2400
	shot := filepath.Join(t.TempDir(), "report.png")
	headless(t, bin, filepath.Join(dir, "index.html"), "--screenshot="+shot, "--window-size=1280,2400")
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, w, h), img.Bounds(), "screenshot size")
	inked, colours := 0, map[[3]uint32]bool{}
	for y := 0; y < h; y += 2 {
		for x := 0; x < w; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
			if r < 0xf000 || g < 0xf000 || b < 0xf000 {
				inked++
			}
		}
	}
	assert.Greater(t, inked, w*h/4/100, "more than 1% of the page is drawn on")
	assert.Greater(t, len(colours), 64, "text, tables and coloured chart lines, not a blank or one-colour page")
}
