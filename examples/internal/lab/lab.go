// Package lab runs the trade-off lab's experiments: it selects them, gives
// each a seeded environment and a progress bar, prints their tables and
// writes the HTML report. The experiments themselves live in
// examples/tradeoffs.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/sysdesign-go/sysdesign/internal/sim"
)

// Errors for bad input to the lab, testable with errors.Is.
var (
	ErrUnknownExperiment = errors.New("lab: unknown experiment")
	ErrInvalidRegistry   = errors.New("lab: invalid experiment registry")
	ErrOutput            = errors.New("lab: cannot write report")
)

// Experiment is one trade-off the lab measures.
type Experiment struct {
	// Name is unique and lower-case, e.g. "scaling" or "lb-capacity".
	Name string
	// Group is the topic -only selects by: "scaling", "lb", "cache",
	// "shard", "consensus", "ratelimit", "resilience", ...
	Group string
	// Title is a one-line headline.
	Title string
	// Section is the section of the guide the experiment comes from.
	Section string
	// Guide quotes the sentence of the guide the experiment tests.
	Guide string
	// WallClock marks experiments that measure real time (a real Redis, real
	// goroutines): their numbers vary between runs even with one seed.
	WallClock bool
	// Run performs the experiment. It must honour ctx and draw all randomness
	// from env.
	Run func(ctx context.Context, env *Env) (*Result, error)
}

// Env is what an experiment gets from the lab.
type Env struct {
	// Seed is the run's seed; use [Env.Rand] for random streams.
	Seed uint64
	// Quick asks for a small run (seconds, not minutes), as tests use.
	Quick    bool
	progress func(total int64, desc string) *Progress
}

// Rand returns the random stream number stream of this run: the same seed
// and stream always give the same numbers.
func (e *Env) Rand(stream uint64) *rand.Rand { return sim.NewRand(e.Seed, stream) }

// Scale returns full, or quick when the run is a quick one.
func (e *Env) Scale(full, quick int) int {
	if e.Quick {
		return quick
	}
	return full
}

// Progress returns a progress bar on stderr for total steps of work.
func (e *Env) Progress(total int64, desc string) *Progress {
	if e.progress == nil {
		return &Progress{}
	}
	return e.progress(total, desc)
}

// Progress reports an experiment's progress. The zero value discards
// updates. It is safe for concurrent use.
type Progress struct{ bar *progressbar.ProgressBar }

// Add records n more steps done.
func (p *Progress) Add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// Done finishes the bar.
func (p *Progress) Done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// Result is what an experiment found.
type Result struct {
	// Verdict is what the numbers say of the claim the experiment tests
	// (its Guide quote), and Reason says why in one sentence built from the
	// measured numbers, so that both change when the numbers do. A run that
	// measured nothing (a skipped experiment) leaves Verdict zero and says
	// why in Reason.
	Verdict Verdict
	Reason  string
	Tables  []*Table
	Charts  []*Chart
	// Notes say what the numbers show, where they agree or disagree with the
	// guide or the published figures, and what was skipped and why.
	Notes []string
}

// Verdict is what an experiment's numbers say of a claim of the guide. The
// zero value means no verdict: the experiment measured nothing.
type Verdict int

// The verdicts.
const (
	// Agrees: the numbers bear the claim out.
	Agrees Verdict = iota + 1
	// Refutes: the numbers contradict the claim.
	Refutes
	// Nuance: the claim holds only in part, or only under conditions the
	// guide leaves unsaid.
	Nuance
)

// String returns "agrees", "refutes", "nuance", or "no verdict" for the
// zero value.
func (v Verdict) String() string {
	switch v {
	case Agrees:
		return "agrees"
	case Refutes:
		return "refutes"
	case Nuance:
		return "nuance"
	case 0:
		return "no verdict"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// MarshalText writes the verdict's name, as results.json shows it.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Judge returns the verdict for a claim: agrees when holds, otherwise
// otherwise, with the reason that the numbers give for each.
func Judge(holds bool, yes string, otherwise Verdict, no string) (Verdict, string) {
	if holds {
		return Agrees, yes
	}
	return otherwise, no
}

// Table is a titled grid of cells.
type Table struct {
	Title   string
	Columns []string
	Rows    [][]string
}

// NewTable returns a table with the given title and columns.
func NewTable(title string, columns ...string) *Table {
	return &Table{Title: title, Columns: columns}
}

// AddRow appends a row, formatting each cell with [Format].
func (t *Table) AddRow(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = Format(c)
	}
	t.Rows = append(t.Rows, row)
}

// Format renders a cell: durations rounded to three significant digits,
// floats to four, everything else with fmt.
func Format(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Duration:
		return roundDuration(x).String()
	case float64:
		return fmt.Sprintf("%.4g", x)
	case float32:
		return fmt.Sprintf("%.4g", x)
	default:
		return fmt.Sprint(v)
	}
}

func roundDuration(d time.Duration) time.Duration {
	for _, unit := range []time.Duration{time.Second, time.Millisecond, time.Microsecond} {
		if d >= unit {
			// three significant digits relative to the unit
			step := unit / 100
			if d >= 100*unit {
				step = unit
			} else if d >= 10*unit {
				step = unit / 10
			}
			return d.Round(step)
		}
	}
	return d
}

// Outcome is one experiment's result or error.
type Outcome struct {
	Experiment Experiment
	Result     *Result
	Err        error
	Elapsed    time.Duration
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Validate checks a registry: names unique and well-formed, every field set.
func Validate(all []Experiment) error {
	seen := map[string]bool{}
	for i, e := range all {
		switch {
		case !nameRE.MatchString(e.Name):
			return fmt.Errorf("%w: experiment %d has name %q (want lower-case letters, digits, dashes)", ErrInvalidRegistry, i, e.Name)
		case seen[e.Name]:
			return fmt.Errorf("%w: experiment name %q registered twice", ErrInvalidRegistry, e.Name)
		case !nameRE.MatchString(e.Group):
			return fmt.Errorf("%w: experiment %q has group %q", ErrInvalidRegistry, e.Name, e.Group)
		case e.Title == "" || e.Guide == "" || e.Section == "":
			return fmt.Errorf("%w: experiment %q needs a title, a guide section and the guide sentence it tests", ErrInvalidRegistry, e.Name)
		case e.Run == nil:
			return fmt.Errorf("%w: experiment %q has no Run function", ErrInvalidRegistry, e.Name)
		}
		seen[e.Name] = true
	}
	return nil
}

// Select returns the experiments named by only, a comma-separated list of
// group or experiment names; an empty list selects all. An unknown name is
// an error wrapping [ErrUnknownExperiment] that lists the valid names.
func Select(all []Experiment, only string) ([]Experiment, error) {
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	want := map[string]bool{}
	var order []string
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			return nil, fmt.Errorf("%w: empty name in -only %q", ErrUnknownExperiment, only)
		}
		want[n] = true
		order = append(order, n)
	}
	known := map[string]bool{}
	for _, e := range all {
		known[e.Name], known[e.Group] = true, true
	}
	for _, n := range order {
		if !known[n] {
			names := make([]string, 0, len(known))
			for k := range known {
				names = append(names, k)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownExperiment, n, strings.Join(names, ", "))
		}
	}
	var out []Experiment
	for _, e := range all {
		if want[e.Name] || want[e.Group] {
			out = append(out, e)
		}
	}
	return out, nil
}

// Options configure [Run].
type Options struct {
	Seed  uint64
	Quick bool
	// Stdout receives the tables; nil discards them.
	Stdout io.Writer
	// Stderr receives progress bars and timing; nil discards them.
	Stderr io.Writer
}

// Run runs each experiment in order, reporting each one's time on
// opts.Stderr as it ends, and then prints to opts.Stdout the ledger of
// verdicts followed by every result's tables ([WriteText]). It stops at the
// first experiment that fails or when ctx is cancelled, prints what it has,
// and returns the outcomes so far and the error. A result must carry a
// reason for its verdict.
func Run(ctx context.Context, exps []Experiment, opts Options) ([]Outcome, error) {
	stdout, stderr := orDiscard(opts.Stdout), orDiscard(opts.Stderr)
	env := &Env{Seed: opts.Seed, Quick: opts.Quick}
	if opts.Stderr != nil {
		env.progress = func(total int64, desc string) *Progress {
			return &Progress{bar: progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription(desc),
				progressbar.OptionShowCount(),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)}
		}
	}
	var out []Outcome
	for _, e := range exps {
		if err := ctx.Err(); err != nil {
			WriteText(stdout, out)
			return out, err
		}
		start := time.Now()
		res, err := e.Run(ctx, env)
		o := Outcome{Experiment: e, Result: res, Err: err, Elapsed: time.Since(start)}
		switch {
		case err != nil:
		case res == nil:
			o.Err = fmt.Errorf("lab: experiment %q returned no result", e.Name)
		case res.Verdict < 0 || res.Verdict > Nuance:
			o.Err = fmt.Errorf("lab: experiment %q returned %v", e.Name, res.Verdict)
		case strings.TrimSpace(res.Reason) == "":
			o.Err = fmt.Errorf("lab: experiment %q gave no reason for its verdict (%v)", e.Name, res.Verdict)
		}
		out = append(out, o)
		if o.Err != nil {
			WriteText(stdout, out)
			return out, fmt.Errorf("lab: experiment %q: %w", e.Name, o.Err)
		}
		fmt.Fprintf(stderr, "lab: %s done in %v\n", e.Name, o.Elapsed.Round(time.Millisecond))
	}
	WriteText(stdout, out)
	return out, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Names returns the experiments' names, in order.
func Names(exps []Experiment) []string {
	out := make([]string, len(exps))
	for i, e := range exps {
		out[i] = e.Name
	}
	return out
}

// Groups returns the distinct groups, sorted.
func Groups(exps []Experiment) []string {
	var g []string
	for _, e := range exps {
		if !slices.Contains(g, e.Group) {
			g = append(g, e.Group)
		}
	}
	sort.Strings(g)
	return g
}
