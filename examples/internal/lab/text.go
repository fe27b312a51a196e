package lab

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
)

// GuideTitle is the title of the guide the experiments quote.
const GuideTitle = "System Design Round — Principal Engineer Interview Preparation"

// durationRE matches a Go duration as time.Duration.String prints it:
// "28.840034303s", "302.252031ms", "3m2.556s".
var durationRE = regexp.MustCompile(`\b(?:\d+h)?(?:\d+m)?\d+(?:\.\d+)?(?:ns|µs|us|ms|s)\b`)

// tidy rounds the durations in a note or a table's title to three
// significant digits, as [Format] does for table cells: "28.840034303s"
// reads "28.8s".
func tidy(s string) string {
	return durationRE.ReplaceAllStringFunc(s, func(m string) string {
		d, err := time.ParseDuration(m)
		if err != nil {
			return m
		}
		return roundDuration(d).String()
	})
}

// tidyNotes applies [tidy] to each note.
func tidyNotes(notes []string) []string {
	out := make([]string, len(notes))
	for i, n := range notes {
		out[i] = tidy(n)
	}
	return out
}

// WriteText prints the ledger of the outcomes that have a result
// ([WriteLedger]) and then each of them ([WriteOutcome]).
func WriteText(w io.Writer, outcomes []Outcome) {
	WriteLedger(w, outcomes)
	for _, o := range outcomes {
		if o.Result != nil {
			WriteOutcome(w, o)
		}
	}
}

// WriteLedger prints one entry per outcome that has a result: its verdict,
// the experiment, the guide's claim it tests and the reason, computed from
// the numbers, for the verdict.
func WriteLedger(w io.Writer, outcomes []Outcome) {
	n := 0
	for _, o := range outcomes {
		if o.Result != nil {
			n++
		}
	}
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "== ledger: what the numbers say of the claims of %s (%d experiments)\n", GuideTitle, n)
	for _, o := range outcomes {
		if o.Result == nil {
			continue
		}
		e := o.Experiment
		fmt.Fprintf(w, "\n   %-10s %s — %s: %q\n", strings.ToUpper(o.Result.Verdict.String()), e.Name, e.Section, e.Guide)
		fmt.Fprintf(w, "   %-10s %s\n", "", tidy(o.Result.Reason))
	}
}

// WriteOutcome prints an outcome: a header with the guide sentence and the
// verdict, each table aligned in columns, and the notes.
func WriteOutcome(w io.Writer, o Outcome) {
	e := o.Experiment
	fmt.Fprintf(w, "\n== %s: %s\n", e.Name, e.Title)
	fmt.Fprintf(w, "   %s, %s: %q\n", GuideTitle, e.Section, e.Guide)
	if o.Result == nil {
		return
	}
	fmt.Fprintf(w, "   Verdict: %s. %s\n", o.Result.Verdict, tidy(o.Result.Reason))
	for _, t := range o.Result.Tables {
		fmt.Fprintln(w)
		WriteTable(w, t)
	}
	if len(o.Result.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range tidyNotes(o.Result.Notes) {
			fmt.Fprintf(w, "   * %s\n", n)
		}
	}
}

// WriteTable prints one table with aligned, right-justified columns.
func WriteTable(w io.Writer, t *Table) {
	if t.Title != "" {
		fmt.Fprintf(w, "   %s\n", tidy(t.Title))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "   \t%s\t\n", strings.Join(t.Columns, "\t"))
	rule := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		rule[i] = strings.Repeat("-", len(c))
	}
	fmt.Fprintf(tw, "   \t%s\t\n", strings.Join(rule, "\t"))
	for _, r := range t.Rows {
		fmt.Fprintf(tw, "   \t%s\t\n", strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}
