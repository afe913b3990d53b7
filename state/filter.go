package state

import (
	"fmt"
	"path"
)

// Filter chooses which sites this host deploys. Include and Exclude hold
// glob patterns in path.Match syntax that are matched against site names.
// An empty Include selects every site; a site matching any Exclude pattern
// is never selected, even when it also matches an Include pattern.
type Filter struct {
	// Include selects the sites to deploy; empty means all.
	Include []string
	// Exclude removes sites from the selection.
	Exclude []string
}

// Validate reports the first malformed pattern, if any, so that a host's
// configuration can be checked before any repository is loaded.
func (f Filter) Validate() error {
	if errs := f.problems(); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// problems returns one Error (without file or line) per malformed pattern.
func (f Filter) problems() Errors {
	var errs Errors
	check := func(kind string, patterns []string) {
		for _, p := range patterns {
			// path.Match checks the whole pattern even when the name
			// does not match, so an empty name is enough.
			if _, err := path.Match(p, ""); err != nil {
				errs = append(errs, &Error{Msg: fmt.Sprintf("filter: invalid %s pattern %q: %v", kind, p, err)})
			}
		}
	}
	check("include", f.Include)
	check("exclude", f.Exclude)
	return errs
}

// Match reports whether the site called name is deployed on this host.
// Malformed patterns never match; use Validate to detect them.
func (f Filter) Match(name string) bool {
	if matchAny(f.Exclude, name) {
		return false
	}
	return len(f.Include) == 0 || matchAny(f.Include, name)
}

// matchAny reports whether any of patterns matches name.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, name); err == nil && ok {
			return true
		}
	}
	return false
}
