package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func exp(name, group string) Experiment {
	return Experiment{Name: name, Group: group, Title: "t", Section: "s", Guide: "g",
		Run: func(context.Context, *Env) (*Result, error) {
			tb := NewTable("tbl", "a", "b")
			tb.AddRow(1.23456, 1500*time.Microsecond)
			return &Result{Verdict: Agrees, Reason: "r of " + name, Tables: []*Table{tb}, Notes: []string{"note"}}, nil
		}}
}

func TestSelect(t *testing.T) {
	all := []Experiment{exp("lb-one", "lb"), exp("lb-two", "lb"), exp("cache-one", "cache"), exp("scaling", "scaling")}
	got, err := Select(all, "")
	require.NoError(t, err)
	assert.Len(t, got, 4)
	got, err = Select(all, "lb, scaling")
	require.NoError(t, err)
	assert.Equal(t, []string{"lb-one", "lb-two", "scaling"}, Names(got))
	got, err = Select(all, "cache-one")
	require.NoError(t, err)
	assert.Equal(t, []string{"cache-one"}, Names(got))
	_, err = Select(all, "lb,nope")
	require.ErrorIs(t, err, ErrUnknownExperiment)
	assert.Contains(t, err.Error(), `"nope"`)
	assert.Contains(t, err.Error(), "cache, cache-one, lb")
	_, err = Select(all, "lb,,cache")
	require.ErrorIs(t, err, ErrUnknownExperiment)
	assert.Equal(t, []string{"cache", "lb", "scaling"}, Groups(all))
}

func TestValidate(t *testing.T) {
	require.NoError(t, Validate([]Experiment{exp("a", "g"), exp("b-2", "g")}))
	bad := exp("x", "g")
	bad.Run = nil
	noGuide := exp("y", "g")
	noGuide.Guide = ""
	for name, reg := range map[string][]Experiment{
		"duplicate": {exp("a", "g"), exp("a", "g")},
		"bad name":  {exp("A b", "g")},
		"bad group": {exp("a", "")},
		"no run":    {bad},
		"no guide":  {noGuide},
	} {
		assert.ErrorIs(t, Validate(reg), ErrInvalidRegistry, name)
	}
}

func TestFormat(t *testing.T) {
	assert.Equal(t, "1.235", Format(1.23456))
	assert.Equal(t, "1.5ms", Format(1500*time.Microsecond))
	assert.Equal(t, "123ms", Format(123456789*time.Nanosecond))
	assert.Equal(t, "12.3ms", Format(12345678*time.Nanosecond))
	assert.Equal(t, "2.35s", Format(2345678901*time.Nanosecond))
	assert.Equal(t, "800ns", Format(800*time.Nanosecond))
	assert.Equal(t, "42", Format(42))
}

func TestWriteTableAligns(t *testing.T) {
	tb := NewTable("title", "name", "value")
	tb.AddRow("a", 1)
	tb.AddRow("longer", 12345)
	var buf bytes.Buffer
	WriteTable(&buf, tb)
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	require.Len(t, lines, 5)
	assert.Equal(t, "   title", lines[0])
	// right-aligned: every row ends at the same column
	w := len(lines[1])
	for _, l := range lines[2:] {
		assert.Len(t, l, w, "%q", l)
	}
}

func TestRunStopsAtFailureAndReportsIt(t *testing.T) {
	boom := errors.New("boom")
	failing := exp("fails", "g")
	failing.Run = func(context.Context, *Env) (*Result, error) { return nil, boom }
	var out bytes.Buffer
	outcomes, err := Run(context.Background(), []Experiment{exp("ok", "g"), failing, exp("never", "g")}, Options{Stdout: &out})
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), `"fails"`)
	assert.Len(t, outcomes, 2)
	assert.Contains(t, out.String(), "== ok:")
	assert.NotContains(t, out.String(), "never")

	nilResult := exp("nil", "g")
	nilResult.Run = func(context.Context, *Env) (*Result, error) { return nil, nil }
	_, err = Run(context.Background(), []Experiment{nilResult}, Options{})
	assert.ErrorContains(t, err, "no result")

	// Every result gives the reason for its verdict, and the verdict is
	// one of the three (or none, for a run that measured nothing).
	for name, res := range map[string]*Result{
		"no reason":   {Verdict: Agrees},
		"bad verdict": {Verdict: Nuance + 1, Reason: "r"},
	} {
		e := exp("v", "g")
		e.Run = func(context.Context, *Env) (*Result, error) { return res, nil }
		_, err = Run(context.Background(), []Experiment{e}, Options{})
		assert.Error(t, err, name)
	}
	skipped := exp("skipped", "g")
	skipped.Run = func(context.Context, *Env) (*Result, error) { return &Result{Reason: "not measured: no server"}, nil }
	out.Reset()
	_, err = Run(context.Background(), []Experiment{skipped}, Options{Stdout: &out})
	require.NoError(t, err)
	assert.Contains(t, out.String(), "NO VERDICT")
}

func TestVerdict(t *testing.T) {
	for v, want := range map[Verdict]string{0: "no verdict", Agrees: "agrees", Refutes: "refutes", Nuance: "nuance", 7: "Verdict(7)"} {
		assert.Equal(t, want, v.String())
		text, err := v.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, want, string(text))
	}
	v, why := Judge(true, "yes", Refutes, "no")
	assert.Equal(t, []any{Agrees, "yes"}, []any{v, why})
	v, why = Judge(false, "yes", Nuance, "no")
	assert.Equal(t, []any{Nuance, "no"}, []any{v, why})
}

// The text output opens with the ledger: one entry per experiment, with its
// verdict, the claim it tests and the reason, before the first table.
func TestWriteTextOpensWithLedger(t *testing.T) {
	a, b := exp("a-one", "a"), exp("b-two", "b")
	b.Run = func(context.Context, *Env) (*Result, error) {
		return &Result{Verdict: Refutes, Reason: "took 28.840034303s", Tables: []*Table{NewTable("t", "c")}}, nil
	}
	var out bytes.Buffer
	outcomes, err := Run(context.Background(), []Experiment{a, b}, Options{Stdout: &out})
	require.NoError(t, err)
	require.Len(t, outcomes, 2)
	s := out.String()
	require.True(t, strings.HasPrefix(s, "== ledger:"), "%.80q", s)
	ledger, rest, ok := strings.Cut(s, "\n== a-one:")
	require.True(t, ok, "the sections follow the ledger")
	assert.Contains(t, ledger, "(2 experiments)")
	assert.Regexp(t, `AGREES\s+a-one — s: "g"\n\s+r of a-one\n`, ledger)
	assert.Regexp(t, `REFUTES\s+b-two — s: "g"\n\s+took 28.8s\n`, ledger, "durations in reasons are rounded")
	assert.Contains(t, rest, "Verdict: agrees. r of a-one")
	assert.Contains(t, rest, "== b-two:")
}

func TestEnv(t *testing.T) {
	e := &Env{Seed: 3}
	assert.Equal(t, e.Rand(1).Uint64(), (&Env{Seed: 3}).Rand(1).Uint64())
	assert.NotEqual(t, e.Rand(1).Uint64(), e.Rand(2).Uint64())
	assert.Equal(t, 100, e.Scale(100, 10))
	e.Quick = true
	assert.Equal(t, 10, e.Scale(100, 10))
	p := e.Progress(10, "x") // no bar configured: a no-op
	p.Add(3)
	p.Done()
}

func TestReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	res := &Result{
		Verdict: Nuance, Reason: "only <half>",
		Tables: []*Table{{Title: "T<1>", Columns: []string{"x"}, Rows: [][]string{{"<b>"}}}},
		Charts: []*Chart{{Title: "c", XLabel: "x (count)", YLabel: "y (ms)", LogY: true, Series: []Series{{Name: "s", X: []float64{1, 2, 3}, Y: []float64{0, 10, 100}}}}},
		Notes:  []string{"n"},
	}
	o := Outcome{Experiment: exp("e", "g"), Result: res, Elapsed: time.Second}
	require.NoError(t, WriteReport(dir, ReportMeta{Seed: 9, When: time.Unix(0, 0).UTC()}, []Outcome{o}))
	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	require.NoError(t, err)
	s := string(page)
	assert.Contains(t, s, "&lt;b&gt;", "table cells are escaped")
	assert.Contains(t, s, "seed 9")
	assert.Contains(t, s, "<em>"+GuideTitle+"</em>, s:", "the guide is named by its title")
	assert.NotContains(t, s, "GUIDE.md")
	// The page opens with the ledger: a row per experiment linking to its
	// section, with the claim, the verdict and the reason.
	ledger, section := strings.Index(s, `<section id="ledger">`), strings.Index(s, `<section id="e">`)
	require.True(t, ledger >= 0 && section > ledger, "ledger at %d, section at %d", ledger, section)
	assert.Contains(t, s[ledger:section], `<td><a href="#e">e</a></td><td>s: “g”</td><td><span class="verdict nuance">nuance</span></td><td>only &lt;half&gt;</td>`)
	assert.Contains(t, s[section:], `<span class="verdict nuance">nuance</span> only &lt;half&gt;`, "the verdict stands beside the figures")
	js, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	assert.Contains(t, string(js), `"Verdict": "nuance"`)
	assert.Contains(t, string(js), `"Reason": "only \u003chalf\u003e"`)
	// Each chart is an image of its own: an SVG data URL whose drawing has
	// the title, both axis labels and a legend entry per series.
	imgs := imgRE.FindAllStringSubmatch(s, -1)
	require.Len(t, imgs, 1)
	assert.Equal(t, "c", imgs[0][2], "alt text is the title")
	svg, err := base64.StdEncoding.DecodeString(html.UnescapeString(imgs[0][1]))
	require.NoError(t, err)
	doc := parseSVG(t, svg)
	for _, want := range []string{"c", "x (count)", "y (ms)", "s"} {
		assert.True(t, doc.has(want), "chart draws %q", want)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"index.html", "results.json"}, names, "no temporary files left")

	bad := &Result{Tables: res.Tables, Charts: []*Chart{{Series: []Series{{Name: "s", X: []float64{1}, Y: nil}}}}}
	err = WriteReport(t.TempDir(), ReportMeta{}, []Outcome{{Experiment: exp("e", "g"), Result: bad}})
	assert.ErrorIs(t, err, ErrOutput)
}

var imgRE = regexp.MustCompile(`<img src="data:image/svg&#43;xml;base64,([^"]+)" alt="([^"]*)"`)

func TestPrepareOut(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	assert.ErrorIs(t, PrepareOut(filepath.Join(file, "x")), ErrOutput)
	assert.ErrorIs(t, PrepareOut(""), ErrOutput)
	assert.NoError(t, PrepareOut(filepath.Join(t.TempDir(), "a", "b")))
}
