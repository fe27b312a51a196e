package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

func runLab(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"-no-progress"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// quick is one quick run of the whole lab, shared by the tests that read
// its output; TestMain removes its folder.
var quick struct {
	once                sync.Once
	dir, stdout, stderr string
	code                int
}

func TestMain(m *testing.M) {
	code := m.Run()
	if quick.dir != "" {
		os.RemoveAll(quick.dir)
	}
	if code == 0 {
		// Every experiment stops what it starts: no goroutine outlives the
		// run (Redis pools, Raft nodes, HTTP servers, the simulation kit).
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// quickReport runs every experiment in quick mode once and returns the
// report's folder and the tables printed.
func quickReport(t *testing.T) (dir, stdout string) {
	t.Helper()
	quick.once.Do(func() {
		d, err := os.MkdirTemp("", "tradeoffs-quick-")
		if err != nil {
			quick.code, quick.stderr = 1, err.Error()
			return
		}
		quick.dir = d
		quick.code, quick.stdout, quick.stderr = runLab(t, "-quick", "-out", d)
	})
	require.Equal(t, 0, quick.code, quick.stderr)
	return quick.dir, quick.stdout
}

// Every registered experiment runs in quick mode, prints its tables, and the
// report files exist with every experiment in them; every chart has a
// title, axis labels with their units and a named line per series.
func TestQuickRunProducesEveryExperiment(t *testing.T) {
	dir, stdout := quickReport(t)
	all := experiments()
	require.NoError(t, lab.Validate(all))
	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	require.NoError(t, err)
	var doc struct {
		Experiments []struct {
			Name            string
			Verdict, Reason string
			Tables          []lab.Table
			Charts          []lab.Chart
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.Len(t, doc.Experiments, len(all))
	// The text and the page open with the ledger, an entry per experiment.
	ledger, _, ok := strings.Cut(stdout, "\n== "+all[0].Name+":")
	require.True(t, ok)
	assert.True(t, strings.HasPrefix(ledger, "== ledger:"), "stdout opens with the ledger: %.80q", ledger)
	html := string(page)
	first := strings.Index(html, `<section id="`+all[0].Name+`">`)
	require.Positive(t, first)
	pageLedger := html[:first]
	assert.Contains(t, pageLedger, `<section id="ledger">`)
	assert.Equal(t, len(all), strings.Count(pageLedger, `<span class="verdict `), "a ledger row per experiment")
	charts := 0
	for i, e := range all {
		assert.Contains(t, stdout, "== "+e.Name+":", "stdout has %s", e.Name)
		assert.Contains(t, string(page), `id="`+e.Name+`"`, "report has %s", e.Name)
		got := doc.Experiments[i]
		assert.Equal(t, e.Name, got.Name)
		assert.Contains(t, []string{"agrees", "refutes", "nuance"}, got.Verdict, "%s has a verdict", e.Name)
		assert.NotEmpty(t, got.Reason, "%s says why", e.Name)
		assert.Regexp(t, `(?m)^   `+strings.ToUpper(got.Verdict)+` +`+regexp.QuoteMeta(e.Name)+` — `, ledger, "the ledger's entry for %s", e.Name)
		assert.Contains(t, pageLedger, `<a href="#`+e.Name+`">`, "the page's ledger links to %s", e.Name)
		require.NotEmpty(t, got.Tables, "%s has tables", e.Name)
		charts += len(got.Charts)
		for _, c := range got.Charts {
			assert.NoError(t, c.Validate(), "%s", e.Name)
		}
		for _, tb := range got.Tables {
			assert.NotEmpty(t, tb.Rows, "%s table %q has rows", e.Name, tb.Title)
			for _, r := range tb.Rows {
				assert.Len(t, r, len(tb.Columns), "%s table %q row width", e.Name, tb.Title)
			}
		}
	}
	assert.Equal(t, charts, strings.Count(string(page), `<figure class="chart"><img src="data:image/svg`), "every chart is an SVG image")
	assert.NotContains(t, string(page), "<script src", "the report loads nothing from outside")
}

// The same seed gives the same numbers; another seed gives other numbers.
func TestSameSeedSameNumbers(t *testing.T) {
	var virtual []string
	for _, e := range experiments() {
		if !e.WallClock {
			virtual = append(virtual, e.Name)
		}
	}
	only := strings.Join(virtual, ",")
	c1, a, _ := runLab(t, "-quick", "-seed", "7", "-only", only, "-out", t.TempDir())
	c2, b, _ := runLab(t, "-quick", "-seed", "7", "-only", only, "-out", t.TempDir())
	c3, c, _ := runLab(t, "-quick", "-seed", "8", "-only", "scaling", "-out", t.TempDir())
	require.Equal(t, []int{0, 0, 0}, []int{c1, c2, c3})
	assert.Equal(t, a, b)
	assert.NotEqual(t, strings.SplitN(a, "\n== ", 3)[1], strings.SplitN(c, "\n== ", 3)[1])
}

func TestBadInput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"unknown experiment", []string{"-only", "scaling,nosuch"}, `unknown experiment "nosuch"`},
		{"empty name", []string{"-only", "scaling,"}, "empty name"},
		{"negative seed", []string{"-seed", "-1"}, `invalid value "-1" for flag -seed`},
		{"unwritable out", []string{"-out", filepath.Join(file, "sub")}, "cannot write report"},
		{"stray argument", []string{"scaling"}, `unexpected argument "scaling"`},
		{"unknown flag", []string{"-fast"}, "flag provided but not defined: -fast"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runLab(t, append(tc.args, "-quick")...)
			assert.NotEqual(t, 0, code)
			assert.Contains(t, stderr, tc.msg)
			assert.NotContains(t, stdout, "==", "nothing ran")
			assert.NotContains(t, stderr, "panic")
		})
	}
	// Nothing was written where the run failed early.
	_, err := os.Stat(filepath.Join(file, "sub"))
	assert.Error(t, err)
}

func TestListAndHelp(t *testing.T) {
	code, stdout, _ := runLab(t, "-list")
	require.Equal(t, 0, code)
	for _, e := range experiments() {
		assert.Contains(t, stdout, e.Name)
	}
	code, _, stderr := runLab(t, "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, stderr, "-only")
}

// A cancelled run stops and writes no report.
func TestCancelledRunWritesNoReport(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"-quick", "-no-progress", "-out", dir}, &out, &errb)
	assert.Equal(t, 1, code)
	_, err := os.Stat(filepath.Join(dir, "index.html"))
	assert.True(t, os.IsNotExist(err))
}
