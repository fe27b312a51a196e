package lab

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image/color"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// svgText is one <text> of a rendered chart: where it sits and how big it is.
type svgText struct {
	X, Y float64
	Size float64
	Text string
}

type svgDoc struct {
	Width, Height float64 // in CSS pixels
	Texts         []svgText
}

var fontSizeRE = regexp.MustCompile(`font-size:([0-9.]+)`)

// parseSVG reads the size and the texts of an SVG as a browser would place
// them (gonum/plot writes sizes in pt: 1pt is 4/3 px).
func parseSVG(t *testing.T, svg []byte) svgDoc {
	t.Helper()
	px := func(s string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "pt"), 64)
		require.NoError(t, err, "size %q", s)
		require.True(t, strings.HasSuffix(s, "pt"), "size %q in pt", s)
		return v * 4 / 3
	}
	attr := func(e xml.StartElement, name string) string {
		for _, a := range e.Attr {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	var out svgDoc
	var open *svgText
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "chart is well-formed SVG")
		switch e := tok.(type) {
		case xml.StartElement:
			switch e.Name.Local {
			case "svg":
				out.Width, out.Height = px(attr(e, "width")), px(attr(e, "height"))
			case "text":
				m := fontSizeRE.FindStringSubmatch(attr(e, "style"))
				require.NotNil(t, m, "text has a font size")
				tx := svgText{}
				tx.X, _ = strconv.ParseFloat(attr(e, "x"), 64)
				tx.Y, _ = strconv.ParseFloat(attr(e, "y"), 64)
				tx.Size, _ = strconv.ParseFloat(m[1], 64)
				open = &tx
			}
		case xml.CharData:
			if open != nil {
				open.Text += string(e)
			}
		case xml.EndElement:
			if e.Name.Local == "text" && open != nil {
				open.Text = strings.TrimSpace(open.Text)
				out.Texts = append(out.Texts, *open)
				open = nil
			}
		}
	}
	require.NotZero(t, out.Width, "svg has a width")
	return out
}

func (d svgDoc) find(text string) (svgText, bool) {
	for _, tx := range d.Texts {
		if tx.Text == text {
			return tx, true
		}
	}
	return svgText{}, false
}

func (d svgDoc) has(text string) bool { _, ok := d.find(text); return ok }

// A chart the way a reader needs it: wide, with readable text, its axis in
// a unit that keeps numbers short, ticks at log-spaced data on a log axis,
// and series that draw the same line named together as identical.
func TestRenderSVGIsReadable(t *testing.T) {
	c := &Chart{
		Title: "p99 latency vs cache size", XLabel: "cache size (entries)", YLabel: "p99 latency (ms)",
		Series: []Series{
			{Name: "lru", X: []float64{50, 500, 2500}, Y: []float64{900, 9000, 50000}},
			{Name: "fifo", X: []float64{50, 500, 2500}, Y: []float64{900, 9000, 50000}},
			{Name: "tinylfu", X: []float64{50, 500, 2500}, Y: []float64{100, 2000, 20000}},
		},
	}
	svg, err := RenderSVG(c)
	require.NoError(t, err)
	doc := parseSVG(t, svg)
	assert.GreaterOrEqual(t, doc.Width, 900.0, "chart width in px")
	assert.GreaterOrEqual(t, doc.Height, 450.0, "chart height in px")
	for _, tx := range doc.Texts {
		assert.GreaterOrEqual(t, tx.Size, 12.0, "font size of %q", tx.Text)
	}

	assert.True(t, doc.has(c.Title), "title drawn")
	assert.True(t, doc.has("cache size (entries)"), "x label drawn")
	assert.True(t, doc.has("p99 latency (s)"), "50,000 ms is shown in seconds")
	assert.False(t, doc.has("p99 latency (ms)"))
	assert.True(t, doc.has("50"), "y axis reaches 50 (s)")
	assert.False(t, doc.has("50000"), "no five-digit ms labels")

	// Ticks at the data, on a log axis: 500 sits nearer 2500 than 50 does
	// on a linear one, and there is no tick at 1500.
	var x []float64
	for _, v := range []string{"50", "500", "2500"} {
		tx, ok := doc.find(v)
		require.True(t, ok, "x tick at %s", v)
		x = append(x, tx.X)
	}
	assert.Greater(t, x[1]-x[0], x[2]-x[1], "log x axis: 50→500 is wider than 500→2500")
	assert.False(t, doc.has("1500"), "no tick between the data")

	assert.True(t, doc.has("lru = fifo (identical)"), "identical series named together in the legend")
	assert.True(t, doc.has("tinylfu"), "legend entry")
	assert.False(t, doc.has("fifo"), "an identical series gets no entry of its own")
}

// Twelve series: no two drawn alike, and a theory line keeps the colour of
// the measurement it models.
func TestLinesAreToldApart(t *testing.T) {
	c := &Chart{}
	for i := range 12 {
		c.Series = append(c.Series, Series{Name: fmt.Sprintf("s%d", i), X: []float64{0, 1}, Y: []float64{float64(i), float64(i)}})
	}
	c.Series = append(c.Series,
		Series{Name: "p99", X: []float64{0, 1}, Y: []float64{5, 6}},
		Series{Name: "p99 (theory)", X: []float64{0, 1}, Y: []float64{5, 7}, Dashed: true},
		Series{Name: "bound", X: []float64{0, 1}, Y: []float64{9, 9}, Dashed: true})
	ls := lines(c)
	require.Len(t, ls, 15)
	type style struct {
		color  color.Color
		marker string
		dashes string
	}
	seen := map[style]string{}
	for _, l := range ls {
		s := style{l.color, fmt.Sprintf("%T", l.marker), fmt.Sprint(l.dashes)}
		if other, dup := seen[s]; dup {
			t.Errorf("%s and %s are drawn alike", other, l.name)
		}
		seen[s] = l.name
	}
	assert.Equal(t, ls[12].color, ls[13].color, "theory line in its measurement's colour")
	assert.NotEmpty(t, ls[13].dashes, "theory line dashed")
	assert.NotEqual(t, ls[13].color, ls[14].color, "a reference line that models nothing gets its own colour")
}

func TestChartValidate(t *testing.T) {
	good := func() *Chart {
		return &Chart{Title: "t", XLabel: "load (× capacity)", YLabel: "moved (× the ideal 1/(n+1))",
			Series: []Series{{Name: "a", X: []float64{1}, Y: []float64{2}}}}
	}
	require.NoError(t, good().Validate())
	for name, mutate := range map[string]func(*Chart){
		"no title":        func(c *Chart) { c.Title = " " },
		"x without unit":  func(c *Chart) { c.XLabel = "load" },
		"y without unit":  func(c *Chart) { c.YLabel = "latency ()" },
		"unit only":       func(c *Chart) { c.YLabel = "(ms)" },
		"no series":       func(c *Chart) { c.Series = nil },
		"unnamed series":  func(c *Chart) { c.Series[0].Name = "" },
		"duplicate names": func(c *Chart) { c.Series = append(c.Series, c.Series[0]) },
		"ragged series":   func(c *Chart) { c.Series[0].Y = nil },
	} {
		c := good()
		mutate(c)
		err := c.Validate()
		assert.ErrorIs(t, err, ErrInvalidChart, name)
	}
	err := (&Chart{Title: "latency", XLabel: "load", YLabel: "p99 (ms)", Series: good().Series}).Validate()
	assert.ErrorContains(t, err, `"latency"`, "the error names the chart")
	assert.ErrorContains(t, err, `"load"`, "and the label")
}

func TestAxisUnit(t *testing.T) {
	for _, tc := range []struct {
		label  string
		values []float64
		want   string
		factor float64
	}{
		{"p99 (ms)", []float64{30, 50000}, "p99 (s)", 1e-3},
		{"p99 (ms)", []float64{30, 999}, "p99 (ms)", 1},
		{"p99 (ms)", []float64{0.004, 0.5}, "p99 (µs)", 1e3},
		{"time (s)", []float64{0.01, 0.4}, "time (ms)", 1e3},
		{"time (s)", []float64{0.01, 182}, "time (s)", 1},
		{"wait (us)", []float64{2e6}, "wait (s)", 1e-6},
		{"hit ratio (%)", []float64{0.001, 99}, "hit ratio (%)", 1},
		{"p99 (ms)", []float64{0, 0}, "p99 (ms)", 1},
	} {
		got, f := axisUnit(tc.label, tc.values)
		assert.Equal(t, tc.want, got, "%s %v", tc.label, tc.values)
		assert.InDelta(t, tc.factor, f, tc.factor*1e-9, "%s %v", tc.label, tc.values)
	}
}

func TestLogSpaced(t *testing.T) {
	for _, xs := range [][]float64{{50, 500, 2500}, {1, 10, 100, 1000}, {4, 16, 64}, {0.5, 1, 2, 5}} {
		assert.True(t, logSpaced(xs), "%v", xs)
	}
	for _, xs := range [][]float64{{10, 50, 100}, {1, 3, 5}, {50, 250}, {0, 10, 100}, {0.5, 0.6, 0.7, 0.8, 0.9, 0.95}} {
		assert.False(t, logSpaced(xs), "%v", xs)
	}
}

func TestTidyNotes(t *testing.T) {
	got := tidyNotes([]string{
		"p99 reaches 28.840034303s and 302.252031ms (timeout 300ms); none ends at 3m2.556s; p99.9 916.455423ms",
		"no durations: 2 s, 1.23456 of them, 5.7%",
	})
	assert.Equal(t, []string{
		"p99 reaches 28.8s and 302ms (timeout 300ms); none ends at 3m3s; p99.9 916ms",
		"no durations: 2 s, 1.23456 of them, 5.7%",
	}, got)
	tb := NewTable("204 requests over 1.001382323s")
	var buf strings.Builder
	WriteTable(&buf, tb)
	assert.Contains(t, buf.String(), "204 requests over 1s\n", "table titles too")
	page, err := renderHTML(ReportMeta{}, []Outcome{{Experiment: exp("e", "g"), Result: &Result{Tables: []*Table{tb}}}})
	require.NoError(t, err)
	assert.Contains(t, string(page), "<caption>204 requests over 1s</caption>")
}
