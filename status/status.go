package status

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sitesync/sitesync/loop"
	"github.com/sitesync/sitesync/reconciler"
)

// maxPasses is how many recent passes a snapshot keeps.
const maxPasses = 20

// Snapshot is the state of one host.
type Snapshot struct {
	Host        string    `json:"host"`
	GeneratedAt time.Time `json:"generated_at"`
	// DesiredRevision is what the last pass fetched; AppliedRevision what
	// the last successful pass applied.
	DesiredRevision string   `json:"desired_revision"`
	AppliedRevision string   `json:"applied_revision"`
	Sites           []Site   `json:"sites"`
	Passes          []Pass   `json:"passes"`
	Unmanaged       []string `json:"unmanaged"`
	// Running is true while a pass is in progress.
	Running bool `json:"running"`
}

// Site is one site's row.
type Site struct {
	Name        string   `json:"name"`
	Enabled     bool     `json:"enabled"`
	ServerNames []string `json:"server_names"`
	TLS         string   `json:"tls"`
	Ready       bool     `json:"ready"`
	// Reason says why the site is not ready, or why it is not deployed.
	Reason string   `json:"reason,omitempty"`
	Drift  []string `json:"drift,omitempty"`
	// CertExpiry is when the site's certificate expires (nil: none).
	CertExpiry *time.Time `json:"cert_expiry,omitempty"`
	// LastChange is the revision of the last pass that changed the site's
	// file on this host ("" if not seen since start).
	LastChange string `json:"last_change,omitempty"`
}

// Pass is one pass's row.
type Pass struct {
	ID       string        `json:"id"`
	Triggers []string      `json:"triggers"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Revision string        `json:"revision"`
	Outcome  string        `json:"outcome"`
	Changes  string        `json:"changes"`
	Error    string        `json:"error,omitempty"`
}

// Tracker holds the latest snapshot.
type Tracker struct {
	mu         sync.Mutex
	snap       Snapshot
	lastChange map[string]string
	running    func() bool
	now        func() time.Time
}

// NewTracker returns a tracker for host. running, if set, says whether a
// pass is in progress.
func NewTracker(host string, running func() bool) *Tracker {
	return &Tracker{snap: Snapshot{Host: host}, lastChange: map[string]string{}, running: running, now: time.Now}
}

// Snapshot returns a copy of the current snapshot.
func (t *Tracker) Snapshot() Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.snap
	s.Sites = slices.Clone(s.Sites)
	s.Passes = slices.Clone(s.Passes)
	s.Unmanaged = slices.Clone(s.Unmanaged)
	s.GeneratedAt = t.now()
	if t.running != nil {
		s.Running = t.running()
	}
	return s
}

// ObservePass updates the snapshot with a finished pass.
func (t *Tracker) ObservePass(p loop.Pass) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.snap = FromResult(t.snap, p.Result, p.Err, sources(p), t.lastChange)
}

func sources(p loop.Pass) []string {
	var out []string
	for _, s := range p.Sources() {
		out = append(out, string(s))
	}
	return out
}

// FromResult folds one pass into prev and returns the new snapshot.
// lastChange (site → revision) is updated in place; it may be nil.
func FromResult(prev Snapshot, res *reconciler.Result, err error, triggers []string, lastChange map[string]string) Snapshot {
	s := prev
	if res == nil {
		return s
	}
	pass := Pass{ID: res.ID, Triggers: triggers, Started: res.Started, Duration: res.Finished.Sub(res.Started),
		Revision: res.Revision, Outcome: Outcome(res, err), Changes: Changes(res)}
	if err != nil {
		pass.Error = err.Error()
	}
	s.Passes = append([]Pass{pass}, prev.Passes...)
	if len(s.Passes) > maxPasses {
		s.Passes = s.Passes[:maxPasses]
	}
	if res.Revision != "" {
		s.DesiredRevision = res.Revision
		if err == nil {
			s.AppliedRevision = res.Revision
		}
	}
	if res.Sites == nil && err != nil {
		return s // failed before parsing: keep the last known sites
	}
	if lastChange != nil && res.Written+res.Deleted > 0 {
		for _, a := range res.Plan {
			if a.Site != "" && (a.Kind == reconciler.ActionWrite || a.Kind == reconciler.ActionDelete) {
				lastChange[a.Site] = res.Revision
			}
		}
	}
	s.Unmanaged = res.Unmanaged
	s.Sites = nil
	for _, st := range reconciler.SiteStatuses(res, err) {
		row := Site{Name: st.Name, Enabled: true, ServerNames: st.ServerNames, TLS: string(st.TLS), Ready: st.Ready, Reason: st.Reason, LastChange: lastChange[st.Name]}
		for _, d := range st.Drift {
			row.Drift = append(row.Drift, string(d))
		}
		if !st.CertNotAfter.IsZero() {
			exp := st.CertNotAfter
			row.CertExpiry = &exp
		}
		s.Sites = append(s.Sites, row)
	}
	for _, sk := range res.Skipped {
		s.Sites = append(s.Sites, Site{Name: sk.Name, Reason: "not deployed here: " + sk.Reason})
	}
	return s
}

// Outcome names a pass's outcome: success, noop, partial or error.
func Outcome(res *reconciler.Result, err error) string {
	var se reconciler.SiteErrors
	switch {
	case err == nil && res.Changed():
		return "success"
	case err == nil:
		return "noop"
	case errors.As(err, &se):
		return "partial"
	}
	return "error"
}

// Changes summarises what a pass did, e.g. "3 written, 1 deleted, reloaded".
func Changes(res *reconciler.Result) string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+what)
		}
	}
	add(res.Written, "written")
	add(res.Deleted, "deleted")
	add(res.Issued, "issued")
	add(res.IssueFailed, "issue failed")
	if res.Reloaded {
		parts = append(parts, "reloaded")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
