package lab

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"time"
)

// PrepareOut makes sure dir exists and is writable, before any experiment
// runs, so a bad -out fails in a second rather than after minutes of work.
func PrepareOut(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: empty output directory", ErrOutput)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w to %q: %v", ErrOutput, dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("%w to %q: %v", ErrOutput, dir, err)
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return nil
}

// ReportMeta describes the run in the report's header.
type ReportMeta struct {
	Seed  uint64
	Quick bool
	When  time.Time
}

// WriteReport writes index.html (tables and SVG charts, no external
// assets; see [Chart] for how charts are drawn) and results.json to dir. Each file is written to a temporary name
// and renamed into place, so a failure never leaves a half-written report.
func WriteReport(dir string, meta ReportMeta, outcomes []Outcome) error {
	page, err := renderHTML(meta, outcomes)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOutput, err)
	}
	js, err := renderJSON(meta, outcomes)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOutput, err)
	}
	if err := PrepareOut(dir); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"index.html": page, "results.json": js} {
		if err := writeAtomic(filepath.Join(dir, name), data); err != nil {
			return fmt.Errorf("%w: %v", ErrOutput, err)
		}
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

type jsonExperiment struct {
	Name, Group, Title, Section, Guide string
	Verdict                            Verdict
	Reason                             string
	WallClock                          bool
	Seconds                            float64
	Tables                             []*Table
	Charts                             []*Chart
	Notes                              []string
}

func renderJSON(meta ReportMeta, outcomes []Outcome) ([]byte, error) {
	doc := struct {
		Seed        uint64
		Quick       bool
		Experiments []jsonExperiment
	}{Seed: meta.Seed, Quick: meta.Quick}
	for _, o := range outcomes {
		if o.Result == nil {
			continue
		}
		e := o.Experiment
		doc.Experiments = append(doc.Experiments, jsonExperiment{
			Name: e.Name, Group: e.Group, Title: e.Title, Section: e.Section, Guide: e.Guide,
			Verdict: o.Result.Verdict, Reason: tidy(o.Result.Reason),
			WallClock: e.WallClock, Seconds: o.Elapsed.Seconds(),
			Tables: o.Result.Tables, Charts: o.Result.Charts, Notes: tidyNotes(o.Result.Notes),
		})
	}
	return json.MarshalIndent(doc, "", "  ")
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{"tidy": tidy}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>sysdesign trade-off lab</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
blockquote{border-left:4px solid #8ab;margin:0;padding:.2em 1em;color:#445;background:#f4f8fa}
table{border-collapse:collapse;margin:1em 0;font-size:90%}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f0f0f0}
caption{text-align:left;font-weight:600;padding:.3em 0}
nav a{margin-right:1em}
.meta{color:#666;font-size:90%}
.chart{margin:1.5em 0}
.chart img{display:block;max-width:100%;height:auto}
table.ledger th,table.ledger td{text-align:left;vertical-align:top}
.verdict{font-weight:600;white-space:nowrap;padding:0 .4em;border-radius:3px}
.agrees{background:#dff0d8;color:#2b542c}
.refutes{background:#f2dede;color:#843534}
.nuance{background:#fcf8e3;color:#6d5312}
.none{background:#eee;color:#555}
</style></head><body>
<h1>sysdesign trade-off lab</h1>
<p class="meta">seed {{.Meta.Seed}}{{if .Meta.Quick}}, quick run{{end}}, {{len .Items}} experiments, generated {{.Meta.When.Format "2006-01-02 15:04 MST"}}</p>
<section id="ledger">
<h2>Ledger: what the numbers say of the guide's claims</h2>
<table class="ledger">
<tr><th>experiment</th><th>guide claim</th><th>verdict</th><th>why, from the numbers</th></tr>
{{range .Items}}<tr><td><a href="#{{.Name}}">{{.Name}}</a></td><td>{{.Section}}: “{{.Guide}}”</td><td><span class="verdict {{.VerdictClass}}">{{.Verdict}}</span></td><td>{{.Reason}}</td></tr>
{{end}}</table>
</section>
{{range .Items}}
<section id="{{.Name}}">
<h2>{{.Name}}: {{.Title}}</h2>
<blockquote><em>{{$.GuideTitle}}</em>, {{.Section}}: “{{.Guide}}”</blockquote>
<p class="finding"><span class="verdict {{.VerdictClass}}">{{.Verdict}}</span> {{.Reason}}</p>
{{if .WallClock}}<p class="meta">Measured on wall-clock time: numbers vary between runs.</p>{{end}}
{{range .Tables}}<table><caption>{{tidy .Title}}</caption>
<tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}
</table>{{end}}
{{range .Charts}}<figure class="chart"><img src="{{.Src}}" alt="{{.Title}}" title="{{.Title}}"></figure>{{end}}
{{if .Notes}}<ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p class="meta">ran in {{.Elapsed}}</p>
</section>
{{end}}
</body></html>
`))

type htmlChart struct {
	Title string
	// Src is the chart's SVG as a data URL: an <img> keeps each chart's
	// drawing apart from the page's and from the other charts'.
	Src template.URL
}

type htmlItem struct {
	Name, Title, Section, Guide string
	Verdict                     Verdict
	VerdictClass, Reason        string
	WallClock                   bool
	Tables                      []*Table
	Charts                      []htmlChart
	Notes                       []string
	Elapsed                     time.Duration
}

func renderHTML(meta ReportMeta, outcomes []Outcome) ([]byte, error) {
	var items []htmlItem
	for _, o := range outcomes {
		if o.Result == nil {
			continue
		}
		e := o.Experiment
		class := o.Result.Verdict.String()
		if o.Result.Verdict == 0 {
			class = "none"
		}
		it := htmlItem{Name: e.Name, Title: e.Title, Section: e.Section, Guide: e.Guide, WallClock: e.WallClock,
			Verdict: o.Result.Verdict, VerdictClass: class, Reason: tidy(o.Result.Reason),
			Tables: o.Result.Tables, Notes: tidyNotes(o.Result.Notes), Elapsed: o.Elapsed.Round(time.Millisecond)}
		for _, c := range o.Result.Charts {
			svg, err := RenderSVG(c)
			if err != nil {
				return nil, fmt.Errorf("chart %q of %s: %w", c.Title, e.Name, err)
			}
			// A base64 data URL: nothing in the SVG can break out of the
			// attribute.
			src := template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(svg)) //nolint:gosec
			it.Charts = append(it.Charts, htmlChart{Title: c.Title, Src: src})
		}
		items = append(items, it)
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, struct {
		GuideTitle string
		Meta       ReportMeta
		Items      []htmlItem
	}{GuideTitle, meta, items}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
