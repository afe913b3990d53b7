package status

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

//go:embed page.tmpl
var pageSource string

// Page renders snapshots as the HTML status page.
type Page struct{ t *template.Template }

// NewPage parses the embedded page template.
func NewPage() (*Page, error) {
	t, err := template.New("page").Funcs(template.FuncMap{
		"short": ShortRev,
		"join":  strings.Join,
		"dur":   func(d time.Duration) string { return d.Round(time.Millisecond).String() },
		"days":  func(t *time.Time) string { return fmt.Sprintf("%dd", int(time.Until(*t).Hours()/24)) },
		"ready": func(sites []Site) int { return count(sites, func(s Site) bool { return s.Enabled && s.Ready }) },
		"enabled": func(sites []Site) int {
			return count(sites, func(s Site) bool { return s.Enabled })
		},
	}).Parse(pageSource)
	if err != nil {
		return nil, err
	}
	return &Page{t: t}, nil
}

// Write renders s as HTML to w.
func (p *Page) Write(w io.Writer, s Snapshot) error { return p.t.Execute(w, s) }

// WriteJSON writes s as indented JSON.
func WriteJSON(w io.Writer, s Snapshot) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// ShortRev shortens a revision for display.
func ShortRev(rev string) string {
	switch {
	case rev == "":
		return "—"
	case len(rev) > 12:
		return rev[:12]
	}
	return rev
}

func count(sites []Site, f func(Site) bool) int {
	n := 0
	for _, s := range sites {
		if f(s) {
			n++
		}
	}
	return n
}
