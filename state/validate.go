package state

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Patterns for values that reach the rendered configuration. Every one of
// them excludes whitespace, control characters and ; { } " ' \ $ #.
var (
	sizePattern     = regexp.MustCompile(`^[0-9]+[kKmMgG]?$`)
	locationPattern = regexp.MustCompile(`^/[A-Za-z0-9/._~%+:@,=-]*$`)
	statusPattern   = regexp.MustCompile(`^[2-5][0-9][0-9]$`)
)

// Limits on names.
const (
	maxSiteName   = 200
	maxServerName = 253
	maxLabel      = 63
)

// unsafeChars are the printable ASCII characters that nginx's configuration
// syntax gives a meaning to (besides whitespace, which is never allowed).
const unsafeChars = `;{}"'\$#`

// firstUnsafe returns the index of the first byte of s that must never
// appear in a value written into nginx configuration: anything outside
// printable ASCII (so whitespace, control characters, NUL and non-ASCII)
// and the characters in unsafeChars. It returns -1 when s is safe.
func firstUnsafe(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(unsafeChars, c) >= 0 {
			return i
		}
	}
	return -1
}

// charAt quotes the character starting at byte i of s for a message: the
// whole rune when s is valid UTF-8 there, the single byte otherwise.
func charAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("%q", s[i:i+1])
	}
	return fmt.Sprintf("%q", string(r))
}

// firstNotIn returns the index of the first byte of s for which ok is
// false, or -1.
func firstNotIn(s string, ok func(c byte) bool) int {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return i
		}
	}
	return -1
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isLower(c) || isUpper(c) || isDigit(c) }

// checkSiteName validates a site name: [a-z0-9]([a-z0-9.-]*[a-z0-9])?, at
// most 200 characters, no "..". It returns a message or "".
func checkSiteName(n string) string {
	if n == "" {
		return "site name is empty"
	}
	if len(n) > maxSiteName {
		return fmt.Sprintf("site name %q is longer than %d characters", n, maxSiteName)
	}
	if i := firstNotIn(n, func(c byte) bool { return isLower(c) || isDigit(c) || c == '.' || c == '-' }); i >= 0 {
		if isUpper(n[i]) {
			return fmt.Sprintf("site name %q must be lowercase", n)
		}
		return fmt.Sprintf("site name %q contains %s (use lowercase letters, digits, \".\" and \"-\")", n, charAt(n, i))
	}
	if strings.Contains(n, "..") {
		return fmt.Sprintf("site name %q must not contain \"..\"", n)
	}
	if !isAlnum(n[0]) || !isAlnum(n[len(n)-1]) {
		return fmt.Sprintf("site name %q must start and end with a letter or digit", n)
	}
	return ""
}

// checkServerName validates a host name for nginx's server_name and
// certbot: RFC 1123 labels of lowercase letters, digits and "-", 1-63
// characters each, at most 253 characters in all, no port. A leading "*."
// wildcard label is allowed only for sites without TLS.
func checkServerName(n string, tls TLSMode) string {
	if n == "" {
		return "server name is empty"
	}
	if i := firstUnsafe(n); i >= 0 {
		return fmt.Sprintf("server name %q contains %s", n, charAt(n, i))
	}
	host := n
	if rest, ok := strings.CutPrefix(n, "*."); ok {
		if tls != TLSNone {
			return fmt.Sprintf("server name %q is a wildcard; wildcards need tls: none", n)
		}
		host = rest
	}
	if len(n) > maxServerName {
		return fmt.Sprintf("server name %q is longer than %d characters", n, maxServerName)
	}
	if i := firstNotIn(host, func(c byte) bool { return isLower(c) || isDigit(c) || c == '.' || c == '-' }); i >= 0 {
		switch c := host[i]; {
		case isUpper(c):
			return fmt.Sprintf("server name %q must be lowercase", n)
		case c == ':':
			return fmt.Sprintf("server name %q must not include a port", n)
		case c == '*':
			return fmt.Sprintf("server name %q: \"*\" is only allowed as a leading \"*.\" label", n)
		default:
			return fmt.Sprintf("server name %q contains %s", n, charAt(host, i))
		}
	}
	for label := range strings.SplitSeq(host, ".") {
		switch {
		case label == "":
			return fmt.Sprintf("server name %q has an empty label", n)
		case len(label) > maxLabel:
			return fmt.Sprintf("server name %q has a label longer than %d characters", n, maxLabel)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Sprintf("server name %q has a label that starts or ends with \"-\"", n)
		}
	}
	return ""
}

// checkURL validates an absolute http or https URL (proxyPass, redirect,
// the target of return). what names the value in messages.
func checkURL(what, s string) string {
	if s == "" {
		return what + " is empty"
	}
	if i := firstUnsafe(s); i >= 0 {
		return fmt.Sprintf("%s %q contains %s", what, s, charAt(s, i))
	}
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Sprintf("%s %q must be an http:// or https:// URL", what, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("%s %q is not a valid URL", what, s)
	}
	if u.User != nil {
		return fmt.Sprintf("%s %q must not contain user info", what, s)
	}
	if u.Hostname() == "" || strings.ContainsAny(u.Hostname(), "[]") {
		return fmt.Sprintf("%s %q has no host", what, s)
	}
	if strings.HasSuffix(u.Host, ":") {
		return fmt.Sprintf("%s %q has an empty port", what, s)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return fmt.Sprintf("%s %q has port %q; want 1-65535", what, s, port)
		}
	}
	return ""
}

// checkLocationPath validates a location prefix: "/" followed by
// characters from [A-Za-z0-9/._~%+:@,=-].
func checkLocationPath(what, p string) string {
	if p == "" {
		return what + " is empty"
	}
	if p[0] != '/' {
		return fmt.Sprintf("%s %q must start with \"/\"", what, p)
	}
	if !locationPattern.MatchString(p) {
		i := firstNotIn(p, func(c byte) bool { return isAlnum(c) || strings.IndexByte("/._~%+:@,=-", c) >= 0 })
		return fmt.Sprintf("%s %q contains %s", what, p, charAt(p, i))
	}
	return ""
}

// checkRoot validates a location's root: an absolute, clean path of
// characters from [A-Za-z0-9/._-].
func checkRoot(p string) string {
	if p == "" {
		return "root is empty"
	}
	if p[0] != '/' {
		return fmt.Sprintf("root %q must be an absolute path", p)
	}
	if i := firstNotIn(p, func(c byte) bool { return isAlnum(c) || strings.IndexByte("/._-", c) >= 0 }); i >= 0 {
		return fmt.Sprintf("root %q contains %s", p, charAt(p, i))
	}
	if strings.Contains("/"+p+"/", "/../") {
		return fmt.Sprintf("root %q must not contain \"..\"", p)
	}
	if c := filepath.Clean(p); c != p {
		return fmt.Sprintf("root %q is not a clean path (write %q)", p, c)
	}
	return ""
}

// checkReturn validates a location's return value: "<code>" or
// "<code> <target>", code 200-599, target an absolute http(s) URL or a path.
func checkReturn(s string) string {
	code, target, hasTarget := strings.Cut(s, " ")
	if !statusPattern.MatchString(code) {
		return fmt.Sprintf("return %q must start with a status code from 200 to 599", s)
	}
	if !hasTarget {
		return ""
	}
	if strings.HasPrefix(target, "/") {
		return checkLocationPath("return path", target)
	}
	return checkURL("return URL", target)
}

// checkSnippetName validates a snippet file name as used in includes and
// in the snippets/ directory: ^[A-Za-z0-9][A-Za-z0-9._-]*$ without "..".
// what names the value in messages.
func checkSnippetName(what, n string) string {
	if n == "" {
		return what + " is empty"
	}
	if strings.Contains(n, "..") {
		return fmt.Sprintf("%s %q must not contain \"..\"", what, n)
	}
	if i := firstNotIn(n, func(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' }); i >= 0 {
		return fmt.Sprintf("%s %q contains %s", what, n, charAt(n, i))
	}
	if !isAlnum(n[0]) {
		return fmt.Sprintf("%s %q must start with a letter or digit", what, n)
	}
	return ""
}

// checkRawPath validates the repository path of a raw file: relative,
// slash-separated, characters from [A-Za-z0-9._/-], no "..", and a valid
// io/fs path (no empty, "." or trailing elements).
func checkRawPath(p string) string {
	if p == "" {
		return "raw path is empty"
	}
	if p[0] == '/' {
		return fmt.Sprintf("raw path %q must be relative to the repository root", p)
	}
	if strings.Contains(p, "..") {
		return fmt.Sprintf("raw path %q must not contain \"..\"", p)
	}
	if i := firstNotIn(p, func(c byte) bool { return isAlnum(c) || strings.IndexByte("/._-", c) >= 0 }); i >= 0 {
		return fmt.Sprintf("raw path %q contains %s", p, charAt(p, i))
	}
	if c := filepath.Clean(p); c != p || p == "." {
		return fmt.Sprintf("raw path %q is not a clean path", p)
	}
	return ""
}

// checkTLS validates a tls value.
func checkTLS(s string) (TLSMode, string) {
	switch m := TLSMode(s); m {
	case TLSNone, TLSLetsEncrypt:
		return m, ""
	}
	return "", fmt.Sprintf("tls must be %q or %q, got %q", TLSLetsEncrypt, TLSNone, s)
}

// checkSize validates an nginx size such as client_max_body_size.
func checkSize(s string) string {
	if !sizePattern.MatchString(s) {
		return fmt.Sprintf("clientMaxBodySize %q must be a number with an optional k, m or g suffix, like 10m", s)
	}
	return ""
}

// defaults are the resolved defaults that sites inherit.
type defaults struct {
	tls                           TLSMode
	httpsRedirect, http2, enabled bool
	clientMaxBodySize             string
	includes                      []string
}

// resolveDefaults validates the defaults mapping and merges it over the
// built-in defaults. Invalid values are reported here, once, and ignored.
func (l *loader) resolveDefaults(d defaultsSpec) defaults {
	out := defaults{tls: TLSNone, httpsRedirect: true, enabled: true}
	if d.tls.set && !d.tls.bad {
		if m, msg := checkTLS(d.tls.v); msg != "" {
			l.errs.add(d.tls.line, "%s", msg)
		} else {
			out.tls = m
		}
	}
	if d.httpsRedirect.set && !d.httpsRedirect.bad {
		out.httpsRedirect = d.httpsRedirect.v
	}
	if d.http2.set && !d.http2.bad {
		out.http2 = d.http2.v
	}
	if d.enabled.set && !d.enabled.bad {
		out.enabled = d.enabled.v
	}
	if d.clientMaxBodySize.set && !d.clientMaxBodySize.bad {
		if msg := checkSize(d.clientMaxBodySize.v); msg != "" {
			l.errs.add(d.clientMaxBodySize.line, "%s", msg)
		} else {
			out.clientMaxBodySize = d.clientMaxBodySize.v
		}
	}
	out.includes = l.includes(nil, d.includes)
	return out
}

// includes validates list and appends its names to base, skipping
// duplicates.
func (l *loader) includes(base []string, list strs) []string {
	out := base
	for _, it := range list.items {
		if msg := checkSnippetName("include", it.v); msg != "" {
			l.errs.add(it.line, "%s", msg)
			continue
		}
		if !contains(out, it.v) {
			out = append(out, it.v)
		}
	}
	return out
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// resolvedSite is a site after validation, with what the cross-site checks
// need to know.
type resolvedSite struct {
	site      Site
	enabled   bool
	nameLines []int // line of each entry of site.ServerNames
}

// resolveSite validates one site and applies the defaults.
func (l *loader) resolveSite(s siteSpec, def defaults) resolvedSite {
	r := resolvedSite{enabled: def.enabled}
	site := &r.site
	site.Line = s.line

	label := "site"
	switch {
	case !s.name.set:
		l.errs.add(s.line, "site has no name")
	case s.name.bad:
	default:
		if msg := checkSiteName(s.name.v); msg != "" {
			l.errs.add(s.name.line, "%s", msg)
		}
		site.Name = s.name.v
		label = fmt.Sprintf("site %q", s.name.v)
	}

	if s.enabled.set && !s.enabled.bad {
		r.enabled = s.enabled.v
	}
	site.TLS = def.tls
	if s.tls.set && !s.tls.bad {
		if m, msg := checkTLS(s.tls.v); msg != "" {
			l.errs.add(s.tls.line, "%s", msg)
		} else {
			site.TLS = m
		}
	}
	site.HTTPSRedirect = def.httpsRedirect
	if s.httpsRedirect.set && !s.httpsRedirect.bad {
		site.HTTPSRedirect = s.httpsRedirect.v
	}
	if site.TLS == TLSNone {
		site.HTTPSRedirect = false
	}
	site.HTTP2 = def.http2
	if s.http2.set && !s.http2.bad {
		site.HTTP2 = s.http2.v
	}
	site.ClientMaxBodySize = def.clientMaxBodySize
	if s.clientMaxBodySize.set && !s.clientMaxBodySize.bad {
		if msg := checkSize(s.clientMaxBodySize.v); msg != "" {
			l.errs.add(s.clientMaxBodySize.line, "%s", msg)
		} else {
			site.ClientMaxBodySize = s.clientMaxBodySize.v
		}
	}
	site.Includes = l.includes(append([]string(nil), def.includes...), s.includes)
	if len(site.Includes) == 0 {
		site.Includes = nil
	}

	// Exactly one of locations, redirect and raw.
	type kind struct {
		key  string
		line int
	}
	var kinds []kind
	if s.locationsSet {
		kinds = append(kinds, kind{"locations", s.locationsLine})
	}
	if s.redirect.set {
		kinds = append(kinds, kind{"redirect", s.redirect.line})
	}
	if s.raw.set {
		kinds = append(kinds, kind{"raw", s.raw.line})
	}
	switch len(kinds) {
	case 0:
		l.errs.add(s.line, "%s needs one of locations, redirect or raw", label)
	case 1:
	default:
		slices.SortStableFunc(kinds, func(a, b kind) int { return a.line - b.line })
		for _, k := range kinds[1:] {
			l.errs.add(k.line, "%s sets both %s and %s; use exactly one", label, kinds[0].key, k.key)
		}
	}

	if s.raw.set {
		if s.serverNames.set {
			l.errs.add(s.serverNames.line, "raw sites take their names from the file; remove serverNames")
		}
		if !s.raw.bad {
			l.loadRaw(&r, s.raw)
		}
	} else {
		l.serverNames(&r, s, label)
	}

	if s.locationsSet {
		l.locations(site, s)
	}
	if s.redirect.set && !s.redirect.bad {
		if msg := checkURL("redirect", s.redirect.v); msg != "" {
			l.errs.add(s.redirect.line, "%s", msg)
		}
		site.Redirect = s.redirect.v
	}
	return r
}

// serverNames validates a non-raw site's serverNames list.
func (l *loader) serverNames(r *resolvedSite, s siteSpec, label string) {
	if !s.serverNames.set {
		l.errs.add(s.line, "%s has no serverNames", label)
		return
	}
	if len(s.serverNames.items) == 0 {
		if !s.serverNames.bad {
			l.errs.add(s.serverNames.line, "serverNames must not be empty")
		}
		return
	}
	first := map[string]int{}
	for _, it := range s.serverNames.items {
		if msg := checkServerName(it.v, r.site.TLS); msg != "" {
			l.errs.add(it.line, "%s", msg)
			continue
		}
		if line, dup := first[it.v]; dup {
			l.errs.add(it.line, "duplicate server name %q (first at line %d)", it.v, line)
			continue
		}
		first[it.v] = it.line
		r.site.ServerNames = append(r.site.ServerNames, it.v)
		r.nameLines = append(r.nameLines, it.line)
	}
}

// locations validates a site's locations list.
func (l *loader) locations(site *Site, s siteSpec) {
	if len(s.locations) == 0 {
		if !s.locationsBad {
			l.errs.add(s.locationsLine, "locations must not be empty")
		}
		return
	}
	first := map[string]int{}
	for _, ls := range s.locations {
		if ls.bad {
			continue
		}
		loc := l.location(ls)
		if ls.path.set && !ls.path.bad {
			if line, dup := first[loc.Path]; dup {
				l.errs.add(ls.path.line, "duplicate location path %q (first at line %d)", loc.Path, line)
			} else {
				first[loc.Path] = ls.path.line
			}
		}
		site.Locations = append(site.Locations, loc)
	}
}

// location validates one location.
func (l *loader) location(ls locationSpec) Location {
	var loc Location
	label := "location"
	switch {
	case !ls.path.set:
		l.errs.add(ls.line, "location has no path")
	case ls.path.bad:
	default:
		if msg := checkLocationPath("location path", ls.path.v); msg != "" {
			l.errs.add(ls.path.line, "%s", msg)
		}
		loc.Path = ls.path.v
		label = fmt.Sprintf("location %q", ls.path.v)
	}

	type action struct {
		key  string
		line int
	}
	var actions []action
	if ls.proxyPass.set {
		actions = append(actions, action{"proxyPass", ls.proxyPass.line})
		if msg := checkURL("proxyPass", ls.proxyPass.v); msg != "" && !ls.proxyPass.bad {
			l.errs.add(ls.proxyPass.line, "%s", msg)
		}
		loc.ProxyPass = ls.proxyPass.v
	}
	if ls.root.set {
		actions = append(actions, action{"root", ls.root.line})
		if msg := checkRoot(ls.root.v); msg != "" && !ls.root.bad {
			l.errs.add(ls.root.line, "%s", msg)
		}
		loc.Root = ls.root.v
	}
	if ls.ret.set {
		actions = append(actions, action{"return", ls.ret.line})
		if msg := checkReturn(ls.ret.v); msg != "" && !ls.ret.bad {
			l.errs.add(ls.ret.line, "%s", msg)
		}
		loc.Return = ls.ret.v
	}
	switch len(actions) {
	case 0:
		l.errs.add(ls.line, "%s needs one of proxyPass, root or return", label)
	case 1:
	default:
		slices.SortStableFunc(actions, func(a, b action) int { return a.line - b.line })
		for _, a := range actions[1:] {
			l.errs.add(a.line, "%s sets both %s and %s; use exactly one", label, actions[0].key, a.key)
		}
	}
	if ls.websocket.set && !ls.websocket.bad {
		if ls.websocket.v && !ls.proxyPass.set {
			l.errs.add(ls.websocket.line, "websocket needs proxyPass")
		}
		loc.WebSocket = ls.websocket.v && ls.proxyPass.set
	}
	return loc
}
