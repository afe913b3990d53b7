package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints s as the aligned table of `sitesync status`. With
// color, ready and not-ready states are coloured (only for terminals).
func WriteTable(w io.Writer, s Snapshot, color bool) error {
	paint := func(code, text string) string {
		if !color {
			return text
		}
		return "\x1b[" + code + "m" + text + "\x1b[0m"
	}
	fmt.Fprintf(w, "host %s  desired %s  applied %s  %d/%d sites ready\n\n", s.Host, ShortRev(s.DesiredRevision), ShortRev(s.AppliedRevision),
		count(s.Sites, func(x Site) bool { return x.Enabled && x.Ready }), count(s.Sites, func(x Site) bool { return x.Enabled }))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tSTATE\tTLS\tCERT EXPIRES\tDRIFT\tLAST CHANGE\tSERVER NAMES")
	for _, site := range s.Sites {
		state := paint("32", "ready")
		switch {
		case !site.Enabled:
			state = "off"
		case !site.Ready:
			state = paint("31", "NOT READY")
		}
		exp := "-"
		if site.CertExpiry != nil {
			exp = site.CertExpiry.UTC().Format("2006-01-02")
		}
		drift := strings.Join(site.Drift, ",")
		if drift == "" {
			drift = "-"
		}
		tls := site.TLS
		if tls == "" {
			tls = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", site.Name, state, tls, exp, drift, ShortRev(site.LastChange), strings.Join(site.ServerNames, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, site := range s.Sites {
		if site.Enabled && !site.Ready {
			fmt.Fprintf(w, "\n%s is not ready: %s\n", site.Name, site.Reason)
		}
	}
	if len(s.Passes) > 0 {
		p := s.Passes[0]
		fmt.Fprintf(w, "\nlast pass %s at %s (%s, %s): %s, %s\n", p.ID, p.Started.UTC().Format(time.RFC3339), strings.Join(p.Triggers, "+"), p.Duration.Round(time.Millisecond), p.Outcome, p.Changes)
		if p.Error != "" {
			fmt.Fprintf(w, "error: %s\n", p.Error)
		}
	}
	return nil
}
