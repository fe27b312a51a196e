package lab

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints an outcome: a header with the guide sentence, each table
// aligned in columns, and the notes.
func WriteText(w io.Writer, o Outcome) {
	e := o.Experiment
	fmt.Fprintf(w, "\n== %s: %s\n", e.Name, e.Title)
	fmt.Fprintf(w, "   GUIDE.md, %s: %q\n", e.Section, e.Guide)
	if o.Result == nil {
		return
	}
	for _, t := range o.Result.Tables {
		fmt.Fprintln(w)
		WriteTable(w, t)
	}
	if len(o.Result.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range o.Result.Notes {
			fmt.Fprintf(w, "   * %s\n", n)
		}
	}
}

// WriteTable prints one table with aligned, right-justified columns.
func WriteTable(w io.Writer, t *Table) {
	if t.Title != "" {
		fmt.Fprintf(w, "   %s\n", t.Title)
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
