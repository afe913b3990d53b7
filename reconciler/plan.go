package reconciler

import (
	"slices"
	"strings"
)

// ActionKind says what an action does.
type ActionKind string

// The action kinds, in the order a pass applies them.
const (
	ActionIssue  ActionKind = "issue-certificate"
	ActionWrite  ActionKind = "write"
	ActionDelete ActionKind = "delete"
	ActionReload ActionKind = "reload"
)

// DriftKind names a difference between desired and observed state.
type DriftKind string

// The drift kinds. Their string values are metric label values.
const (
	DriftConfigMissing     DriftKind = "config_missing"
	DriftConfigChanged     DriftKind = "config_changed"
	DriftConfigOrphaned    DriftKind = "config_orphaned"
	DriftCertMissing       DriftKind = "cert_missing"
	DriftCertNamesMismatch DriftKind = "cert_names_mismatch"
	DriftCertExpiring      DriftKind = "cert_expiring"
)

// DriftKinds lists every drift kind.
var DriftKinds = []DriftKind{
	DriftConfigMissing, DriftConfigChanged, DriftConfigOrphaned,
	DriftCertMissing, DriftCertNamesMismatch, DriftCertExpiring,
}

// Dir names a managed directory in actions.
type Dir string

// The managed directories.
const (
	DirConf     Dir = "conf.d"
	DirSnippets Dir = "snippets"
)

// Action is one step of a plan.
type Action struct {
	Kind ActionKind
	// Site is the site the action belongs to ("" for shared files,
	// snippets and the reload).
	Site string
	// Dir and Name locate a file (write, delete).
	Dir  Dir
	Name string
	// Domains are the names a certificate must cover (issue).
	Domains []string
	// Force renews a certificate certbot would keep (issue).
	Force bool
	// Reason says why: a DriftKind for files and certificates, a sentence
	// for the reload.
	Reason string
	// Old and New are a file's current and desired bytes (Old nil when the
	// file does not exist, New nil for a delete).
	Old, New []byte
}

// Path returns "dir/name" for file actions, the certificate name for
// issues and "nginx" for the reload.
func (a Action) Path() string {
	switch a.Kind {
	case ActionWrite, ActionDelete:
		return string(a.Dir) + "/" + a.Name
	case ActionIssue:
		return a.Name
	}
	return "nginx"
}

// Plan is the ordered list of actions that converges the host.
type Plan []Action

// Empty reports whether the host is in sync.
func (p Plan) Empty() bool { return len(p) == 0 }

// Count returns how many actions of kind the plan holds.
func (p Plan) Count(kind ActionKind) int {
	n := 0
	for _, a := range p {
		if a.Kind == kind {
			n++
		}
	}
	return n
}

// sortPlan orders actions: certificates, writes, deletes, reload; within a
// kind by directory and name.
func sortPlan(p Plan) {
	rank := map[ActionKind]int{ActionIssue: 0, ActionWrite: 1, ActionDelete: 2, ActionReload: 3}
	slices.SortStableFunc(p, func(a, b Action) int {
		if d := rank[a.Kind] - rank[b.Kind]; d != 0 {
			return d
		}
		if c := strings.Compare(string(a.Dir), string(b.Dir)); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}
