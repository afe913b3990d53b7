package reconciler

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// TerminalError wraps an error that retrying the same inputs cannot fix.
type TerminalError struct{ Err error }

// Error implements error.
func (e *TerminalError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *TerminalError) Unwrap() error { return e.Err }

// Terminal marks err as terminal. Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &TerminalError{Err: err}
}

// IsTerminal reports whether err, or an error it wraps, is terminal. A
// SiteErrors is terminal only when every one of its errors is.
func IsTerminal(err error) bool {
	var se SiteErrors
	if errors.As(err, &se) {
		for _, e := range se {
			if !IsTerminal(e) {
				return false
			}
		}
		return len(se) > 0
	}
	var t *TerminalError
	return errors.As(err, &t)
}

// SiteErrors reports sites that did not converge while the others did. It
// is terminal only if every site's error is.
type SiteErrors map[string]error

// Error implements error.
func (e SiteErrors) Error() string {
	names := make([]string, 0, len(e))
	for n := range e {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("site %s: %v", n, e[n])
	}
	return fmt.Sprintf("%d site(s) did not converge: %s", len(e), strings.Join(parts, "; "))
}

// Unwrap returns the per-site errors, for errors.Is and errors.As.
func (e SiteErrors) Unwrap() []error {
	errs := make([]error, 0, len(e))
	for _, err := range e {
		errs = append(errs, err)
	}
	return errs
}
