package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"
)

// output is the -o flag: table, json or jsonl.
type output struct{ format string }

func outputFlag(fs *pflag.FlagSet) *output {
	o := &output{}
	fs.StringVarP(&o.format, "output", "o", "table", "output format: table, json or jsonl")
	return o
}

func (o *output) validate() error {
	switch o.format {
	case "table", "json", "jsonl":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table, json or jsonl", o.format)
}

// print writes rows (a slice) or one value. table renders header+cells.
func (o *output) print(w io.Writer, value any, rows []any, header []string, cells func(i int) []string) error {
	switch o.format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(value)
	case "jsonl":
		enc := json.NewEncoder(w)
		if rows == nil {
			return enc.Encode(value)
		}
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	n := len(rows)
	if rows == nil {
		n = 1
	}
	for i := 0; i < n; i++ {
		fmt.Fprintln(tw, strings.Join(cells(i), "\t"))
	}
	return tw.Flush()
}

func toAny[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}
