package state

import (
	"fmt"
	"strings"
)

// ServerNames reads the server_name directives of a raw nginx configuration
// file. It tokenizes the file the way nginx does (comments start with '#'
// at the beginning of a word, words may be single- or double-quoted,
// backslash escapes the next character, statements end with ';', blocks
// are delimited by braces) and collects the arguments of every
// "server_name" statement, in any block.
//
// names holds the exact host names, lowercased as nginx does, in order of
// appearance and without duplicates. other holds, likewise deduplicated,
// every name that cannot be given a certificate: wildcards ("*.example.org",
// "www.example.*", ".example.org"), regular expressions ("~^www\d+"), the
// catch-all "_" and "", and names containing characters that are never
// part of a host name (such as "$hostname"). Names in names contain only
// printable ASCII characters other than whitespace and ; { } " ' \ $ #; they
// are not otherwise validated.
//
// err is an *Error with Line set and File empty when the file is not
// syntactically valid: an unterminated quoted string, an unbalanced brace or
// a statement missing its ';'.
func ServerNames(raw []byte) (names []string, other []string, err error) {
	t := tokenizer{src: raw, line: 1}
	type block struct {
		name string
		line int
	}
	var open []block
	seen := map[string]bool{}
	for {
		st, err := t.next()
		if err != nil {
			return nil, nil, err
		}
		switch st.kind {
		case stmtEOF:
			if len(open) > 0 {
				b := open[len(open)-1]
				return nil, nil, &Error{Line: b.line, Msg: fmt.Sprintf("block %q is never closed (missing \"}\")", b.name)}
			}
			return names, other, nil
		case stmtBlockStart:
			open = append(open, block{name: st.args[0], line: st.line})
		case stmtBlockEnd:
			if len(open) == 0 {
				return nil, nil, &Error{Line: st.line, Msg: `unexpected "}"`}
			}
			open = open[:len(open)-1]
		case stmtSimple:
			if st.args[0] != "server_name" {
				continue
			}
			for _, n := range st.args[1:] {
				exact := isExactServerName(n)
				if exact {
					n = strings.ToLower(n)
				}
				key := fmt.Sprint(exact, n)
				if seen[key] {
					continue
				}
				seen[key] = true
				if exact {
					names = append(names, n)
				} else {
					other = append(other, n)
				}
			}
		}
	}
}

// isExactServerName reports whether an nginx server_name argument is a
// plain name: not empty, not "_", not a regex or wildcard, and free of
// characters that are never part of a host name.
func isExactServerName(n string) bool {
	if n == "" || n == "_" || n[0] == '~' || n[0] == '.' || strings.Contains(n, "*") {
		return false
	}
	return firstUnsafe(n) < 0
}

// stmtKind says how a statement of an nginx configuration ended.
type stmtKind int

const (
	stmtEOF        stmtKind = iota // end of input, no statement
	stmtSimple                     // words terminated by ';'
	stmtBlockStart                 // words terminated by '{'
	stmtBlockEnd                   // a lone '}'
)

// stmt is one statement of an nginx configuration file.
type stmt struct {
	kind stmtKind
	args []string
	line int // line of the statement's first word (or of the '}')
}

// tokenizer splits an nginx configuration into statements. It follows
// ngx_conf_read_token: quotes and '#' are only special at the start of a
// word, '}' is only special between words, a closing quote must be
// followed by whitespace, ';', '{' or ')', and "${" inside a word does not
// start a block.
type tokenizer struct {
	src  []byte
	pos  int
	line int
}

// next returns the next statement.
func (t *tokenizer) next() (stmt, error) {
	var (
		args                        []string
		lastSpace                   = true
		needSpace, comment, escaped bool
		variable                    bool
		quote                       byte
		start, startLine, quoteLine int
	)
	startLine = t.line
	for {
		if t.pos >= len(t.src) {
			if quote != 0 {
				return stmt{}, &Error{Line: quoteLine, Msg: fmt.Sprintf("unterminated quoted string (missing %q)", quote)}
			}
			if len(args) > 0 || !lastSpace {
				return stmt{}, &Error{Line: t.line, Msg: `unexpected end of file, expecting ";" or "}"`}
			}
			return stmt{kind: stmtEOF, line: t.line}, nil
		}
		ch := t.src[t.pos]
		t.pos++
		if ch == '\n' {
			t.line++
			comment = false
		}
		if comment {
			continue
		}
		if escaped {
			escaped = false
			continue
		}
		if needSpace {
			switch ch {
			case ' ', '\t', '\r', '\n':
				lastSpace, needSpace = true, false
				continue
			case ';':
				return stmt{kind: stmtSimple, args: args, line: startLine}, nil
			case '{':
				return stmt{kind: stmtBlockStart, args: args, line: startLine}, nil
			case ')':
				lastSpace, needSpace = true, false
			default:
				return stmt{}, &Error{Line: t.line, Msg: fmt.Sprintf("unexpected %q after quoted string", ch)}
			}
		}
		if lastSpace {
			start = t.pos - 1
			switch ch {
			case ' ', '\t', '\r', '\n':
				continue
			case ';', '{':
				if len(args) == 0 {
					return stmt{}, &Error{Line: t.line, Msg: fmt.Sprintf("unexpected %q", ch)}
				}
				if ch == '{' {
					return stmt{kind: stmtBlockStart, args: args, line: startLine}, nil
				}
				return stmt{kind: stmtSimple, args: args, line: startLine}, nil
			case '}':
				if len(args) != 0 {
					return stmt{}, &Error{Line: t.line, Msg: `unexpected "}" (missing ";"?)`}
				}
				return stmt{kind: stmtBlockEnd, line: t.line}, nil
			case '#':
				comment = true
				continue
			}
			if len(args) == 0 {
				startLine = t.line
			}
			lastSpace = false
			switch ch {
			case '\\':
				escaped = true
			case '"', '\'':
				start++
				quote, quoteLine = ch, t.line
			case '$':
				variable = true
			}
			continue
		}
		if ch == '{' && variable {
			continue
		}
		variable = false
		switch {
		case ch == '\\':
			escaped = true
			continue
		case ch == '$':
			variable = true
			continue
		}
		found := false
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
				needSpace, found = true, true
			}
		case ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == ';' || ch == '{':
			lastSpace, found = true, true
		}
		if !found {
			continue
		}
		args = append(args, unescapeWord(t.src[start:t.pos-1]))
		switch ch {
		case ';':
			return stmt{kind: stmtSimple, args: args, line: startLine}, nil
		case '{':
			return stmt{kind: stmtBlockStart, args: args, line: startLine}, nil
		}
	}
}

// unescapeWord undoes nginx's escapes in a word: \" \' \\ stand for the
// character itself and \t \r \n for tab, carriage return and newline; any
// other backslash is kept.
func unescapeWord(w []byte) string {
	var b strings.Builder
	b.Grow(len(w))
	for i := 0; i < len(w); i++ {
		if w[i] == '\\' && i+1 < len(w) {
			switch w[i+1] {
			case '"', '\'', '\\':
				i++
			case 't':
				b.WriteByte('\t')
				i++
				continue
			case 'r':
				b.WriteByte('\r')
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			}
		}
		b.WriteByte(w[i])
	}
	return b.String()
}
