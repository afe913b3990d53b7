package reconciler

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/aymanbagabas/go-udiff"
)

// WritePlan prints the plan of res to w: one line per action naming the
// site it belongs to and why, then, when diffs is set, a unified diff of
// every file change. This is what `sitesync plan` shows.
func WritePlan(w io.Writer, res *Result, diffs bool) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "revision %s: %d site(s), %d skipped, %d unmanaged file(s)\n",
		shortRev(res.Revision), len(res.Sites), len(res.Skipped), len(res.Unmanaged))
	for _, n := range res.Notes {
		fmt.Fprintf(ew, "note: %s\n", n)
	}
	if res.Plan.Empty() {
		fmt.Fprintln(ew, "in sync: nothing to do")
		return ew.err
	}
	fmt.Fprintf(ew, "%d action(s):\n", len(res.Plan))
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	for _, a := range res.Plan {
		site := a.Site
		if site == "" {
			site = "-"
		}
		target := a.Path()
		if a.Kind == ActionIssue {
			target = strings.Join(a.Domains, ",")
		}
		fmt.Fprintf(tw, "  %s\t%s\tsite %s\t(%s)\n", a.Kind, target, site, a.Reason)
	}
	tw.Flush()
	if diffs {
		for _, a := range res.Plan {
			if a.Kind != ActionWrite && a.Kind != ActionDelete {
				continue
			}
			from, to := "a/"+a.Path(), "b/"+a.Path()
			if a.Old == nil {
				from = "/dev/null"
			}
			if a.New == nil {
				to = "/dev/null"
			}
			fmt.Fprint(ew, "\n"+udiff.Unified(from, to, string(a.Old), string(a.New)))
		}
	}
	return ew.err
}

func shortRev(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	if rev == "" {
		return "(none)"
	}
	return rev
}

// errWriter remembers the first write error so printing code can stay
// linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}
