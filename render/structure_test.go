package render

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sitesync/sitesync/state"
	"github.com/sitesync/sitesync/templates"
)

// This file holds an nginx configuration parser written for tests only,
// independently of package state's own reader, and checkStructure, which
// uses it to prove that a rendered site file means exactly what the site
// says: the validated values may only ever fill in arguments, never add,
// remove or reshape directives.

// tokenKind says what a token of nginx configuration is.
type tokenKind int

const (
	tokWord  tokenKind = iota // a word or a quoted string
	tokSemi                   // ";"
	tokOpen                   // "{"
	tokClose                  // "}"
)

// token is one lexical element of nginx configuration.
type token struct {
	kind tokenKind
	// text is a word's value as nginx sees it: quotes removed and escapes
	// resolved.
	text string
	// raw is the token exactly as written, quotes included.
	raw string
	// quoted reports whether the word was a quoted string.
	quoted bool
	line   int
}

// directive is one nginx directive: its name, its arguments and, for a
// block directive, the directives inside the block.
type directive struct {
	name string
	args []string
	// words are the name and argument tokens as written.
	words   []token
	isBlock bool
	block   []*directive
	line    int
}

// String formats d's name and arguments on one line, each word quoted, for
// messages and comparisons.
func (d *directive) String() string {
	parts := make([]string, 0, 1+len(d.args))
	parts = append(parts, strconv.Quote(d.name))
	for _, a := range d.args {
		parts = append(parts, strconv.Quote(a))
	}
	s := strings.Join(parts, " ")
	if d.isBlock {
		s += " {...}"
	}
	return s
}

// syntaxError is a problem found while reading nginx configuration.
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// isSpace reports whether c separates nginx tokens.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// tokenize splits src into nginx tokens following the rules of nginx's own
// reader (ngx_conf_read_token):
//
//   - whitespace separates words; ";", "{" and "}" are tokens of their own
//     when they start a token, and ";" and "{" also end a word, while "}"
//     and "#" inside a word are ordinary characters;
//   - "#" at the start of a token begins a comment that runs to the end of
//     the line;
//   - a word may be quoted with " or ', the quote must be followed by
//     whitespace, ";" or "{", and a backslash escapes the next character
//     both inside and outside quotes;
//   - "{" right after "$" is part of the word (the ${name} form).
//
// It reports unterminated strings, a backslash at the end of the input and
// anything glued to a closing quote.
func tokenize(src []byte) ([]token, error) {
	var toks []token
	line := 1
	n := len(src)
	for i := 0; i < n; {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case isSpace(c):
			i++
		case c == '#':
			for i < n && src[i] != '\n' {
				i++
			}
		case c == ';':
			toks = append(toks, token{kind: tokSemi, raw: ";", line: line})
			i++
		case c == '{':
			toks = append(toks, token{kind: tokOpen, raw: "{", line: line})
			i++
		case c == '}':
			toks = append(toks, token{kind: tokClose, raw: "}", line: line})
			i++
		case c == '"' || c == '\'':
			start, startLine := i, line
			i++
			closed := false
			for i < n && !closed {
				switch src[i] {
				case '\\':
					if i+1 >= n {
						return nil, &syntaxError{startLine, "unterminated string"}
					}
					if src[i+1] == '\n' {
						line++
					}
					i += 2
				case c:
					closed = true
					i++
				case '\n':
					line++
					i++
				default:
					i++
				}
			}
			if !closed {
				return nil, &syntaxError{startLine, "unterminated string"}
			}
			raw := string(src[start:i])
			if i < n && !isSpace(src[i]) && src[i] != ';' && src[i] != '{' {
				return nil, &syntaxError{line, fmt.Sprintf("unexpected %q after quoted string %s", src[i], raw)}
			}
			toks = append(toks, token{kind: tokWord, text: unescape(raw[1 : len(raw)-1]), raw: raw, quoted: true, line: startLine})
		default:
			start, startLine := i, line
			variable := false
		word:
			for i < n {
				ch := src[i]
				if ch == '{' && variable {
					i++
					continue
				}
				variable = false
				switch {
				case ch == '\\':
					if i+1 >= n {
						return nil, &syntaxError{line, "unterminated escape at end of input"}
					}
					if src[i+1] == '\n' {
						line++
					}
					i += 2
				case ch == '$':
					variable = true
					i++
				case isSpace(ch) || ch == ';' || ch == '{':
					break word
				default:
					i++
				}
			}
			raw := string(src[start:i])
			toks = append(toks, token{kind: tokWord, text: unescape(raw), raw: raw, line: startLine})
		}
	}
	return toks, nil
}

// unescape resolves the escapes nginx resolves in a word: \" \' \\ stand
// for the character, \t \r \n for tab, carriage return and newline; any
// other backslash is kept as written.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
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
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseConfig parses nginx configuration into a tree of directives. It
// reports unbalanced braces, unterminated strings and stray tokens: a ";"
// or "{" without a directive name, a "}" inside an unterminated directive,
// and a directive cut off by the end of the input.
func parseConfig(src []byte) ([]*directive, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	p := &configParser{toks: toks}
	return p.block(nil)
}

// configParser turns a token stream into directives.
type configParser struct {
	toks []token
	pos  int
}

// block parses directives up to the "}" closing open, or up to the end of
// the input when open is nil (the top level).
func (p *configParser) block(open *token) ([]*directive, error) {
	var out []*directive
	var words []token
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		p.pos++
		switch t.kind {
		case tokWord:
			words = append(words, t)
		case tokSemi, tokOpen:
			if len(words) == 0 {
				return nil, &syntaxError{t.line, fmt.Sprintf("unexpected %q", t.raw)}
			}
			d := newDirective(words)
			words = nil
			out = append(out, d)
			if t.kind == tokOpen {
				d.isBlock = true
				children, err := p.block(&t)
				if err != nil {
					return nil, err
				}
				d.block = children
			}
		case tokClose:
			if len(words) > 0 {
				return nil, &syntaxError{t.line, fmt.Sprintf("unexpected \"}\" in unterminated directive %q", words[0].text)}
			}
			if open == nil {
				return nil, &syntaxError{t.line, `unexpected "}" (unbalanced braces)`}
			}
			return out, nil
		}
	}
	if len(words) > 0 {
		return nil, &syntaxError{words[0].line, fmt.Sprintf(`unexpected end of input in directive %q, expecting ";" or "{"`, words[0].text)}
	}
	if open != nil {
		return nil, &syntaxError{open.line, `unexpected end of input, expecting "}" for the "{" here (unbalanced braces)`}
	}
	return out, nil
}

// newDirective makes a directive of its name and argument tokens.
func newDirective(words []token) *directive {
	d := &directive{name: words[0].text, words: words, line: words[0].line}
	for _, w := range words[1:] {
		d.args = append(d.args, w.text)
	}
	return d
}

// templateVariables are the nginx variables the embedded templates use.
// Any other variable in a rendered site file came from a value.
var templateVariables = map[string]bool{
	"host":                        true,
	"request_uri":                 true,
	"remote_addr":                 true,
	"proxy_add_x_forwarded_for":   true,
	"scheme":                      true,
	"http_upgrade":                true,
	"sitesync_connection_upgrade": true,
	"uri":                         true,
}

// variables returns the names of the nginx variables ($name or ${name})
// referenced in s; a "$" not followed by a name yields "".
func variables(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		rest := s[i+1:]
		if strings.HasPrefix(rest, "{") {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				out = append(out, "")
				continue
			}
			out = append(out, rest[1:end])
			i += end + 1
			continue
		}
		j := 0
		for j < len(rest) && (rest[j] == '_' || isAlnumByte(rest[j])) {
			j++
		}
		out = append(out, rest[:j])
		i += j
	}
	return out
}

// isAlnumByte reports whether c is an ASCII letter or digit.
func isAlnumByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Directives allowed in a rendered server block and in its locations.
var (
	serverDirectives   = []string{"listen", "server_name", "client_max_body_size", "include", "ssl_certificate", "ssl_certificate_key", "http2", "location"}
	locationDirectives = []string{"root", "default_type", "try_files", "proxy_pass", "proxy_set_header", "proxy_http_version", "proxy_read_timeout", "return"}
)

// acmeLocation is the argument list of the ACME challenge location.
var acmeLocation = []string{"^~", "/.well-known/acme-challenge/"}

// structureChecker collects the problems checkStructure finds.
type structureChecker struct {
	site state.Site
	opts Options
	errs []error
}

// errorf records a problem, once.
func (c *structureChecker) errorf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	for _, e := range c.errs {
		if e.Error() == err.Error() {
			return
		}
	}
	c.errs = append(c.errs, err)
}

// fromSite returns v, a value taken from the site, after making sure nginx
// would take it literally: a "$" in it would be expanded as a variable.
func (c *structureChecker) fromSite(what, v string) string {
	if strings.Contains(v, "$") {
		c.errorf("%s %q holds a \"$\", which nginx would expand as a variable", what, v)
	}
	return v
}

// element returns v, a value taken from the site that the templates append
// to a directory, after making sure nginx would read it as one file in that
// directory: no "/", not "." or "..", and no glob characters (include
// expands them).
func (c *structureChecker) element(what, v string) string {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/*?[") {
		c.errorf("%s %q is not a single file name", what, v)
	}
	return c.fromSite(what, v)
}

// checkStructure parses the rendered, non-raw site file data and verifies
// that it is exactly what site means, whatever its values are:
//
//   - the file starts with an intact marker line for the site;
//   - it is valid nginx syntax in a plain subset: no quoted strings, no
//     backslash escapes, only printable ASCII, and no variables other than
//     the ones the templates use;
//   - its top level holds only server blocks, one, or two when the site
//     gets TLS (letsencrypt and not in opts.NoTLS);
//   - the servers hold only listen, server_name, client_max_body_size,
//     include, ssl_certificate, ssl_certificate_key and location directives,
//     each as often as the site calls for and with exactly the arguments
//     the site and opts give;
//   - the locations are the ACME challenge location (port-80 server only)
//     followed by the HTTPS redirect, the site redirect or one location per
//     site location, in order, each holding exactly the expected directives
//     (in any order) from root, default_type, try_files, proxy_pass,
//     proxy_set_header, proxy_http_version, proxy_read_timeout and return.
//
// Values from the site must arrive unchanged as whole arguments. All
// problems are returned together; line numbers in them count from the
// line after the marker.
func checkStructure(t *testing.T, site state.Site, opts Options, data []byte) error {
	t.Helper()
	c := &structureChecker{site: site, opts: opts}
	h, ok := ParseHeader(data)
	switch {
	case !ok:
		return errors.New("no marker line")
	case h.Kind != KindSite || h.Name != site.Name:
		c.errorf("marker names %s %q, want site %q", h.Kind, h.Name, site.Name)
	case !Intact(data):
		c.errorf("marker checksum does not match the body")
	}
	_, body, _ := bytes.Cut(data, []byte{'\n'})
	top, err := parseConfig(body)
	if err != nil {
		return errors.Join(append(c.errs, fmt.Errorf("not valid nginx syntax: %w", err))...)
	}
	c.plain(top)

	tls := site.TLS == state.TLSLetsEncrypt && !opts.NoTLS[site.Name]
	var servers []*directive
	for _, d := range top {
		if d.name != "server" || len(d.args) != 0 || !d.isBlock {
			c.errorf("line %d: unexpected top-level directive %s", d.line, d)
			continue
		}
		servers = append(servers, d)
	}
	want := 1
	if tls {
		want = 2
	}
	if len(servers) != want {
		c.errorf("%d server blocks, want %d", len(servers), want)
	}
	for i, s := range servers {
		if i < want {
			c.server(s, i == 1, tls)
		}
	}
	return errors.Join(c.errs...)
}

// plain checks every word under dirs: printable ASCII only, unquoted,
// without escapes, and referencing only the templates' variables.
func (c *structureChecker) plain(dirs []*directive) {
	for _, d := range dirs {
		for _, w := range d.words {
			if w.quoted || w.raw != w.text || strings.Contains(w.raw, `\`) {
				c.errorf("line %d: quoted or escaped word %s in directive %q", w.line, w.raw, d.name)
			}
			for i := 0; i < len(w.raw); i++ {
				if b := w.raw[i]; b <= ' ' || b >= 0x7f {
					c.errorf("line %d: word %q in directive %q has byte %#02x outside printable ASCII", w.line, w.raw, d.name, b)
					break
				}
			}
			for _, v := range variables(w.text) {
				if !templateVariables[v] {
					c.errorf("line %d: word %q in directive %q uses variable %q, which the templates do not", w.line, w.text, d.name, "$"+v)
				}
			}
		}
		c.plain(d.block)
	}
}

// listenArg is the listen address nginx should bind for port.
func listenArg(addr string, port int) string {
	p := strconv.Itoa(port)
	switch {
	case addr == "":
		return p
	case strings.Contains(addr, ":") && !strings.HasPrefix(addr, "["):
		return "[" + addr + "]:" + p
	}
	return addr + ":" + p
}

// server checks one server block: https says whether it is the TLS server,
// tls whether the site has one.
func (c *structureChecker) server(s *directive, https, tls bool) {
	site, o := c.site, c.opts
	where := fmt.Sprintf("server at line %d", s.line)

	// Expected simple directives, in any order (includes in order).
	want := map[string][]string{}
	if https {
		listen := []string{listenArg(o.ListenAddress, o.HTTPSPort), "ssl"}
		switch {
		case site.HTTP2 && o.HTTP2Directive:
			want["http2"] = []string{"on"}
		case site.HTTP2:
			listen = append(listen, "http2")
		}
		want["listen"] = listen
		live := o.LiveDir + "/" + c.element("site name", site.Name) + "/"
		want["ssl_certificate"] = []string{live + "fullchain.pem"}
		want["ssl_certificate_key"] = []string{live + "privkey.pem"}
	} else {
		want["listen"] = []string{listenArg(o.ListenAddress, o.HTTPPort)}
	}
	names := make([]string, len(site.ServerNames))
	for i, n := range site.ServerNames {
		names[i] = c.fromSite("server name", n)
		// nginx reads "~..." as a regular expression and ".x" or a "*"
		// anywhere but a leading "*." label as a wildcard.
		if strings.HasPrefix(n, "~") || strings.HasPrefix(n, ".") || strings.Contains(strings.TrimPrefix(n, "*."), "*") {
			c.errorf("server name %q is not an exact or leading-wildcard name to nginx", n)
		}
	}
	want["server_name"] = names
	if site.ClientMaxBodySize != "" {
		want["client_max_body_size"] = []string{c.fromSite("clientMaxBodySize", site.ClientMaxBodySize)}
	}
	var wantIncludes []string
	for _, inc := range site.Includes {
		wantIncludes = append(wantIncludes, o.SnippetsDir+"/"+c.element("include", inc))
	}

	seen := map[string]int{}
	var includes []string
	var locations []*directive
	for _, d := range s.block {
		if !slices.Contains(serverDirectives, d.name) {
			c.errorf("%s: line %d: directive %s is not allowed in a server block", where, d.line, d)
			continue
		}
		if d.name == "location" {
			if !d.isBlock {
				c.errorf("%s: line %d: location %s without a block", where, d.line, d)
				continue
			}
			locations = append(locations, d)
			continue
		}
		if d.isBlock {
			c.errorf("%s: line %d: directive %s has a block", where, d.line, d)
			continue
		}
		if d.name == "include" {
			if len(d.args) != 1 {
				c.errorf("%s: line %d: include %q needs exactly one argument", where, d.line, d.args)
				continue
			}
			includes = append(includes, d.args[0])
			continue
		}
		seen[d.name]++
		w, ok := want[d.name]
		switch {
		case !ok:
			c.errorf("%s: line %d: unexpected directive %s", where, d.line, d)
		case seen[d.name] > 1:
			c.errorf("%s: line %d: directive %s repeated", where, d.line, d)
		case !slices.Equal(d.args, w):
			c.errorf("%s: line %d: %s has arguments %q, want %q", where, d.line, d.name, d.args, w)
		}
	}
	for name := range want {
		if seen[name] == 0 {
			c.errorf("%s: directive %s is missing", where, name)
		}
	}
	if !slices.Equal(includes, wantIncludes) {
		c.errorf("%s: includes %q, want %q", where, includes, wantIncludes)
	}
	c.locations(where, locations, c.wantLocations(https, tls))
}

// wantLocation is an expected location block: its arguments and its
// directives, each formatted with directive.String.
type wantLocation struct {
	args []string
	body []string
}

// directiveLine formats an expected simple directive like directive.String.
func directiveLine(name string, args ...string) string {
	return (&directive{name: name, args: args}).String()
}

// wantLocations returns the locations the server should contain.
func (c *structureChecker) wantLocations(https, tls bool) []wantLocation {
	site, o := c.site, c.opts
	var out []wantLocation
	if !https {
		out = append(out, wantLocation{args: acmeLocation, body: []string{
			directiveLine("root", o.Webroot),
			directiveLine("default_type", "text/plain"),
			directiveLine("try_files", "$uri", "=404"),
		}})
		if tls && site.HTTPSRedirect {
			base := "https://$host"
			if o.HTTPSPort != 443 {
				base += ":" + strconv.Itoa(o.HTTPSPort)
			}
			return append(out, wantLocation{args: []string{"/"}, body: []string{directiveLine("return", "301", base+"$request_uri")}})
		}
	}
	if site.Redirect != "" {
		target := strings.TrimSuffix(c.fromSite("redirect", site.Redirect), "/")
		return append(out, wantLocation{args: []string{"/"}, body: []string{directiveLine("return", "301", target+"$request_uri")}})
	}
	for _, l := range site.Locations {
		w := wantLocation{args: []string{c.fromSite("location path", l.Path)}}
		// A first character other than "/" would be a modifier to nginx
		// (=, ~, ~*, ^~) or name a named location (@).
		if !strings.HasPrefix(l.Path, "/") {
			c.errorf("location path %q does not start with \"/\"", l.Path)
		}
		switch {
		case l.ProxyPass != "":
			w.body = []string{
				directiveLine("proxy_pass", c.fromSite("proxyPass", l.ProxyPass)),
				directiveLine("proxy_set_header", "Host", "$host"),
				directiveLine("proxy_set_header", "X-Real-IP", "$remote_addr"),
				directiveLine("proxy_set_header", "X-Forwarded-For", "$proxy_add_x_forwarded_for"),
				directiveLine("proxy_set_header", "X-Forwarded-Proto", "$scheme"),
			}
			if l.WebSocket {
				w.body = append(w.body,
					directiveLine("proxy_http_version", "1.1"),
					directiveLine("proxy_set_header", "Upgrade", "$http_upgrade"),
					directiveLine("proxy_set_header", "Connection", "$sitesync_connection_upgrade"),
					directiveLine("proxy_read_timeout", "1h"),
				)
			}
		case l.Root != "":
			w.body = []string{directiveLine("root", c.fromSite("root", l.Root))}
		default:
			w.body = []string{directiveLine("return", strings.Split(c.fromSite("return", l.Return), " ")...)}
		}
		out = append(out, w)
	}
	return out
}

// locations compares a server's location blocks with the expected ones,
// in order.
func (c *structureChecker) locations(where string, got []*directive, want []wantLocation) {
	if len(got) != len(want) {
		var args [][]string
		for _, g := range got {
			args = append(args, g.args)
		}
		c.errorf("%s: %d locations %q, want %d", where, len(got), args, len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if !slices.Equal(g.args, w.args) {
			c.errorf("%s: line %d: location %q, want location %q", where, g.line, g.args, w.args)
			continue
		}
		var body []string
		for _, d := range g.block {
			if !slices.Contains(locationDirectives, d.name) || d.isBlock {
				c.errorf("%s: line %d: directive %s is not allowed in location %q", where, d.line, d, g.args)
			}
			body = append(body, d.String())
		}
		slices.Sort(body)
		wantBody := slices.Sorted(slices.Values(w.body))
		if !slices.Equal(body, wantBody) {
			c.errorf("%s: line %d: location %q holds\n\t%s\nwant\n\t%s", where, g.line, g.args,
				strings.Join(body, "\n\t"), strings.Join(wantBody, "\n\t"))
		}
	}
}

// goldenOptions returns the option sets TestGolden renders with.
func goldenOptions() map[string]Options {
	o := baseOptions()
	o.HTTPPort, o.HTTPSPort, o.ListenAddress, o.DefaultServer = 8080, 8443, "127.0.0.1", false
	o.NoTLS = map[string]bool{"app": true}
	v6 := baseOptions()
	v6.ListenAddress = "::1"
	return map[string]Options{"default": baseOptions(), "loopback-notls": o, "ipv6": v6}
}

func TestParseConfig(t *testing.T) {
	src := `# comment ; { }
a b "c d" 'e\'f' g\;h i}j k#l "m\\n\"" ${x}y;
outer x {
    inner;  # trailing comment }
    "quoted name" "" {}
}
`
	dirs, err := parseConfig([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func(prefix string, ds []*directive)
	walk = func(prefix string, ds []*directive) {
		for _, d := range ds {
			got = append(got, prefix+d.String())
			walk(prefix+"  ", d.block)
		}
	}
	walk("", dirs)
	want := []string{
		`"a" "b" "c d" "e'f" "g\\;h" "i}j" "k#l" "m\\n\"" "${x}y"`,
		`"outer" "x" {...}`,
		`  "inner"`,
		`  "quoted name" "" {...}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("parsed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if dirs[0].line != 2 || dirs[1].line != 3 || dirs[1].block[1].line != 5 {
		t.Errorf("lines %d %d %d, want 2 3 5", dirs[0].line, dirs[1].line, dirs[1].block[1].line)
	}

	for _, bad := range []struct{ src, msg string }{
		{"a {", "unbalanced"},
		{"a { b; } }", "unbalanced"},
		{"}", "unbalanced"},
		{"a { b }", `unexpected "}"`},
		{`a "b;`, "unterminated string"},
		{`a 'b\';`, "unterminated string"},
		{`a b\`, "unterminated escape"},
		{"a b", "unexpected end of input"},
		{";", `unexpected ";"`},
		{"a; ;", `unexpected ";"`},
		{"{ a; }", `unexpected "{"`},
		{`a "b"c;`, "after quoted string"},
		{`a "b"};`, "after quoted string"},
		{`a "b"#c;`, "after quoted string"},
		{"a # b;\n", "unexpected end of input"},
	} {
		if _, err := parseConfig([]byte(bad.src)); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("parseConfig(%q) = %v, want error containing %q", bad.src, err, bad.msg)
		}
	}
}

func TestVariables(t *testing.T) {
	for s, want := range map[string][]string{
		"":                          nil,
		"https://$host$request_uri": {"host", "request_uri"},
		"${a}b$c_d-$":               {"a", "c_d", ""},
		"x${unterminated":           {""},
		"$1":                        {"1"},
	} {
		if got := variables(s); !slices.Equal(got, want) {
			t.Errorf("variables(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestCheckStructureGolden proves checkStructure accepts correct output:
// every non-raw golden site under every golden option set.
func TestCheckStructureGolden(t *testing.T) {
	tmpl, err := templates.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range goldenOptions() {
		out, err := Render(goldenDesired(), tmpl, opts)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, s := range goldenDesired().Sites {
			if s.Raw != nil {
				continue
			}
			checked++
			if err := checkStructure(t, s, opts, out.Conf[SiteFile(s.Name)].Data); err != nil {
				t.Errorf("%s: site %s: %v\n%s", name, s.Name, err, out.Conf[SiteFile(s.Name)].Data)
			}
		}
		if checked != 4 {
			t.Fatalf("checked %d sites, want 4", checked)
		}
	}
}

// TestCheckStructureRejectsInjection renders golden sites with values the
// validator would refuse, as if it had let them through, and expects
// checkStructure to notice every one.
func TestCheckStructureRejectsInjection(t *testing.T) {
	tmpl, err := templates.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	app := func() state.Site { return goldenDesired().Sites[0] }
	moved := func() state.Site { return goldenDesired().Sites[2] }
	cases := []struct {
		name string
		site state.Site
		edit func(*state.Site)
		want string // part of the expected error
	}{
		{"server_name splice", app(), func(s *state.Site) { s.ServerNames[0] = "app.example.org; return 301 https://evil.example" }, `directive "return"`},
		{"server_name closes the server", app(), func(s *state.Site) { s.ServerNames[1] = "a.test;}server{listen 81;server_name evil.test" }, "server blocks"},
		{"server_name newline", app(), func(s *state.Site) { s.ServerNames[1] = "a.test\nb.test" }, "server_name has arguments"},
		{"server_name comment", app(), func(s *state.Site) { s.ServerNames[1] = "a.test #" }, "server_name has arguments"},
		{"server_name quoted", app(), func(s *state.Site) { s.ServerNames[1] = `"a.test"` }, "quoted or escaped"},
		{"server_name escape", app(), func(s *state.Site) { s.ServerNames[1] = `a\;b` }, "quoted or escaped"},
		{"server_name variable", app(), func(s *state.Site) { s.ServerNames[1] = "$host" }, "expand as a variable"},
		{"server_name homoglyph", app(), func(s *state.Site) { s.ServerNames[1] = "\u0430pp.example.org" }, "outside printable ASCII"},
		{"client_max_body_size splice", app(), func(s *state.Site) { s.ClientMaxBodySize = "10m;evil" }, `directive "evil"`},
		{"include splice", app(), func(s *state.Site) { s.Includes[0] = "x.conf;include /etc/passwd" }, "includes"},
		{"include traversal", app(), func(s *state.Site) { s.Includes[0] = "../../passwd" }, "not a single file name"},
		{"include glob", app(), func(s *state.Site) { s.Includes[0] = "*" }, "not a single file name"},
		{"server_name regex", app(), func(s *state.Site) { s.ServerNames[1] = "~.*" }, "not an exact"},
		{"location modifier", app(), func(s *state.Site) { s.Locations[2].Path = "~*.php" }, "does not start"},
		{"location path block", app(), func(s *state.Site) { s.Locations[2].Path = "/x { return 200; } location /y" }, "locations"},
		{"location path space", app(), func(s *state.Site) { s.Locations[2].Path = "~ ^/x" }, "location"},
		{"proxy_pass variable", app(), func(s *state.Site) { s.Locations[0].ProxyPass = "http://x/$request_uri" }, "expand as a variable"},
		{"proxy_pass unknown variable", app(), func(s *state.Site) { s.Locations[0].ProxyPass = "http://$http_x_target" }, `variable "$http_x_target"`},
		{"root splice", app(), func(s *state.Site) { s.Locations[2].Root = "/srv/app;autoindex on" }, `"autoindex"`},
		{"return splice", app(), func(s *state.Site) { s.Locations[3].Return = "301 https://x; } location /admin { return 200" }, "locations"},
		{"return two spaces", app(), func(s *state.Site) { s.Locations[3].Return = "301  https://x" }, "holds"},
		{"redirect comment", moved(), func(s *state.Site) { s.Redirect = "https://x #" }, "syntax"},
		{"redirect closes the location", moved(), func(s *state.Site) { s.Redirect = "https://x;}location /a{return 200;" }, ""},
		{"site name traversal", moved(), func(s *state.Site) { s.Name = "../../../tmp/x" }, "ssl_certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.site
			tc.edit(&s)
			data, err := Site(tmpl, s, baseOptions())
			if err != nil {
				t.Fatal(err)
			}
			err = checkStructure(t, s, baseOptions(), data)
			if err == nil {
				t.Fatalf("accepted:\n%s", data)
			}
			t.Logf("rejected: %v", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestCheckStructureRejectsEdits hand-edits correct output and expects
// checkStructure to notice every edit.
func TestCheckStructureRejectsEdits(t *testing.T) {
	tmpl, err := templates.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	app := goldenDesired().Sites[0]
	good, err := Site(tmpl, app, baseOptions())
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := bytes.Cut(good, []byte{'\n'})
	replace := func(old, new string) func(string) string {
		return func(b string) string {
			if !strings.Contains(b, old) {
				t.Fatalf("golden body lacks %q", old)
			}
			return strings.Replace(b, old, new, 1)
		}
	}
	cases := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"extra server directive", replace("    client_max_body_size", "    return 301 https://evil;\n    client_max_body_size"), `"return"`},
		{"third server", func(b string) string { return b + "server {\n    listen 80;\n}\n" }, "3 server blocks"},
		{"extra location", replace("    location /static/ {", "    location /admin { root /; }\n    location /static/ {"), "locations"},
		{"unknown variable", replace("Host $host;", "Host $http_x_evil;"), `"$http_x_evil"`},
		{"unbalanced", func(b string) string { return strings.TrimSuffix(b, "}\n") }, "unbalanced"},
		{"unterminated string", func(b string) string { return b + "server_name \"x;\n" }, "unterminated string"},
		{"stray semicolon", replace("    listen 80;", "    listen 80;;"), `unexpected ";"`},
		{"missing acme", replace("^~ /.well-known/acme-challenge/", "/.well-known/"), "location"},
		{"nested block", replace("proxy_pass http://127.0.0.1:8080;", "proxy_pass http://127.0.0.1:8080; if ($host) { return 404; }"), `"if"`},
		{"top-level directive", func(b string) string { return "include /etc/nginx/evil.conf;\n" + b }, "top-level"},
		{"wrong listen", replace("listen 443 ssl http2;", "listen 443 ssl;"), "listen"},
		{"http2 both ways", replace("listen 443 ssl http2;", "listen 443 ssl http2;\n    http2 on;"), `unexpected directive "http2"`},
		{"missing server_name", replace("    server_name app.example.org www.app.example.org;\n", ""), "server_name is missing"},
		{"quoted argument", replace("root /srv/app;", `root "/srv/app";`), "quoted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := WithMarker(KindSite, app.Name, []byte(tc.edit(string(body))))
			err := checkStructure(t, app, baseOptions(), data)
			if err == nil {
				t.Fatalf("accepted:\n%s", data)
			}
			t.Logf("rejected: %v", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}

	// The marker is checked too.
	tampered := bytes.Replace(good, []byte("20m"), []byte("21m"), 1)
	if err := checkStructure(t, app, baseOptions(), tampered); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("tampered body: %v, want a checksum error", err)
	}
	if err := checkStructure(t, app, baseOptions(), body); err == nil || !strings.Contains(err.Error(), "marker") {
		t.Errorf("no marker: %v, want a marker error", err)
	}
	other := app
	other.Name = "other"
	if err := checkStructure(t, other, baseOptions(), good); err == nil || !strings.Contains(err.Error(), "marker names") {
		t.Errorf("wrong site: %v, want a marker error", err)
	}
}
