package state

import (
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in the desired state. File is the repository-relative
// path of the file the problem is in (usually the desired-state file) and
// Line its 1-based line, or 0 when the problem concerns the file as a whole.
type Error struct {
	// File is the slash-separated path of the file, relative to the
	// repository root ("" for problems outside any file, such as a
	// malformed filter pattern).
	File string
	// Line is the 1-based line, or 0 for the file as a whole.
	Line int
	// Msg describes the problem; it never contains a line break, as
	// values from the input are quoted.
	Msg string
}

// Error formats the problem as "file:line: message", "file: message" when
// Line is 0, "line N: message" when File is empty and just the message when
// both are unset.
func (e *Error) Error() string {
	switch {
	case e.File == "" && e.Line == 0:
		return e.Msg
	case e.File == "":
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	case e.Line == 0:
		return e.File + ": " + e.Msg
	default:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
}

// Errors is a list of problems, as returned by Load. Its Error method joins
// the individual messages with newlines.
type Errors []*Error

// Error joins the messages of all problems with newlines.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems so that errors.As and errors.Is
// can find a single *Error inside an Errors value.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// errList collects problems while loading. file is the desired-state file,
// which sorts before every other file.
type errList struct {
	file string
	list Errors
}

// add records a problem in the desired-state file.
func (l *errList) add(line int, format string, args ...any) {
	l.addIn(l.file, line, format, args...)
}

// addIn records a problem in an arbitrary file.
func (l *errList) addIn(file string, line int, format string, args ...any) {
	l.list = append(l.list, &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// sorted returns the problems ordered by file (problems without a file
// first, then the desired-state file, then the others by name) and line,
// keeping the order of detection for equal positions. It returns nil when
// there are none.
func (l *errList) sorted() Errors {
	if len(l.list) == 0 {
		return nil
	}
	rank := func(e *Error) int {
		switch e.File {
		case "":
			return 0
		case l.file:
			return 1
		}
		return 2
	}
	out := slices.Clone(l.list)
	slices.SortStableFunc(out, func(a, b *Error) int {
		if c := rank(a) - rank(b); c != 0 {
			return c
		}
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	return out
}
