package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The parse step turns the YAML text into specs: the values exactly as
// written, each with the line it was written on, checked for structure
// (known keys, no duplicates, right types) but not yet for content.

// A value as written is set when its key is present with a non-null
// value, and bad when that value was already reported as malformed (wrong
// type, alias, ...), so that content checks skip it instead of piling up
// follow-up errors.

// str is a scalar value as written.
type str struct {
	v        string
	line     int
	set, bad bool
}

// flag is a boolean value as written.
type flag struct {
	v        bool
	line     int
	set, bad bool
}

// strs is a list of scalar values as written.
type strs struct {
	items    []str
	line     int
	set, bad bool
}

// fileSpec is the whole desired-state file.
type fileSpec struct {
	defaults  defaultsSpec
	sites     []siteSpec
	sitesSeen bool
}

// defaultsSpec is the defaults mapping.
type defaultsSpec struct {
	tls, clientMaxBodySize        str
	httpsRedirect, http2, enabled flag
	includes                      strs
}

// siteSpec is one entry of the sites list.
type siteSpec struct {
	line                          int
	bad                           bool
	name                          str
	serverNames                   strs
	enabled, httpsRedirect, http2 flag
	tls, clientMaxBodySize        str
	includes                      strs
	locations                     []locationSpec
	locationsLine                 int
	locationsSet, locationsBad    bool
	redirect, raw                 str
}

// locationSpec is one entry of a site's locations list.
type locationSpec struct {
	line                       int
	bad                        bool
	path, proxyPass, root, ret str
	websocket                  flag
}

// yamlLineError matches the position prefix yaml.v3 puts on syntax errors.
var yamlLineError = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// yamlAnchorError matches yaml.v3's error for an alias without anchor.
var yamlAnchorError = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// parser builds specs from a YAML node tree, reporting to errs.
type parser struct {
	errs *errList
}

// parseFile decodes data and builds the file spec. ok is false when the
// document could not be read at all.
func (p *parser) parseFile(data []byte) (spec fileSpec, ok bool) {
	root, ok := p.decode(data)
	if !ok {
		return spec, false
	}
	if root.Kind != yaml.MappingNode {
		p.errs.add(root.Line, "the file must be a mapping with keys version, defaults and sites, not %s", describe(root))
		return spec, false
	}
	var version *yaml.Node
	p.mapping(root, []string{"version", "defaults", "sites"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "version":
			version = v
		case "defaults":
			spec.defaults = p.defaults(v)
		case "sites":
			spec.sitesSeen = true
			p.list("sites", v, func(item *yaml.Node) {
				spec.sites = append(spec.sites, p.site(item))
			})
		}
	})
	switch {
	case version != nil && !p.usable(version):
	case version == nil:
		p.errs.add(root.Line, `missing key "version" (must be 1)`)
	case version.Kind == yaml.ScalarNode && version.ShortTag() == "!!int" && version.Value == "1":
	case version.Kind == yaml.ScalarNode && version.ShortTag() == "!!int":
		p.errs.add(version.Line, "unsupported version %s (must be 1)", version.Value)
	default:
		p.errs.add(version.Line, "version must be the number 1, got %s", describe(version))
	}
	if !spec.sitesSeen {
		p.errs.add(root.Line, `missing key "sites"`)
	}
	return spec, true
}

// decode parses data as a single YAML document and returns its root node.
func (p *parser) decode(data []byte) (root *yaml.Node, ok bool) {
	if len(bytes.TrimSpace(data)) == 0 {
		p.errs.add(0, "file is empty")
		return nil, false
	}
	if !p.checkText(data) {
		return nil, false
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := safeDecode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errs.add(0, "file is empty")
		} else {
			p.yamlError(err, data)
		}
		return nil, false
	}
	var extra yaml.Node
	switch err := safeDecode(dec, &extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(err, data)
		return nil, false
	default:
		p.errs.add(extra.Line, "only one YAML document is allowed")
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.errs.add(0, "file is empty")
		return nil, false
	}
	root = doc.Content[0]
	if isNull(root) {
		p.errs.add(root.Line, "file is empty")
		return nil, false
	}
	return root, p.usable(root)
}

// safeDecode runs dec.Decode, turning a panic inside the YAML library into
// an error so that hostile input cannot crash the caller.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: internal error: %v", r)
		}
	}()
	return dec.Decode(n)
}

// checkText reports invalid UTF-8 and the characters YAML does not allow
// (control characters other than tab, newline and carriage return), with
// their line: yaml.v3 reports those without a position.
func (p *parser) checkText(data []byte) bool {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			p.errs.add(line, "invalid UTF-8 (byte %#02x)", data[i])
			return false
		case r == '\n':
			line++
		case r == '\t' || r == '\r' || r == 0x85 || r == 0xfeff:
		case r < 0x20 || (r >= 0x7f && r < 0xa0) || r == 0xfffe || r == 0xffff:
			p.errs.add(line, "control character %q is not allowed", r)
			return false
		}
		i += size
	}
	return true
}

// yamlError records a syntax error reported by yaml.v3 in file:line form.
// yaml.v3 leaves out the line when it is the first one, and for a few
// errors found after parsing, such as an alias to an unknown anchor.
func (p *parser) yamlError(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
		if line, err := strconv.Atoi(m[1]); err == nil {
			p.errs.add(line, "invalid YAML: %s", m[2])
			return
		}
	}
	line := 1
	if m := yamlAnchorError.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line += bytes.Count(data[:i], []byte("\n"))
		}
	}
	p.errs.add(line, "invalid YAML: %s", msg)
}

// usable reports whether n can be read as a value, reporting aliases and
// explicit tags the format does not use.
func (p *parser) usable(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		p.errs.add(n.Line, "aliases (*%s) are not supported", n.Value)
		return false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!map", "!!seq":
		return true
	}
	p.errs.add(n.Line, "unsupported YAML tag %q", n.Tag)
	return false
}

// isNull reports whether n is an explicit or implicit null.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of a node for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "the boolean " + n.Value
	case "!!int", "!!float":
		return "the number " + n.Value
	}
	return strconv.Quote(n.Value)
}

// mapping walks the pairs of a mapping node, reporting non-mappings,
// duplicate keys and keys not in known, and calls fn for the others. The
// values passed to fn are not checked; the readers (str, flag, ...) do
// that. It returns false when n is not a usable mapping.
func (p *parser) mapping(n *yaml.Node, known []string, fn func(key string, k, v *yaml.Node)) bool {
	if !p.usable(n) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		p.errs.add(n.Line, "expected a mapping, got %s", describe(n))
		return false
	}
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errs.add(k.Line, "keys must be plain strings, got %s", describe(k))
			continue
		}
		key := k.Value
		if line, dup := first[key]; dup {
			p.errs.add(k.Line, "duplicate key %q (first at line %d)", key, line)
			continue
		}
		first[key] = k.Line
		if !isKnown(known, key) {
			p.errs.add(k.Line, "unknown key %q%s", key, suggest(known, key))
			continue
		}
		fn(key, k, v)
	}
	return true
}

// isKnown reports whether key is one of known.
func isKnown(known []string, key string) bool {
	for _, k := range known {
		if k == key {
			return true
		}
	}
	return false
}

// suggest returns a hint naming the known key that differs from key only in
// case (or in a "-" or "_" separator), or "".
func suggest(known []string, key string) string {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
	}
	for _, k := range known {
		if norm(k) == norm(key) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

// list walks a sequence node, calling fn for each item. A null value is an
// empty list. It returns false when n is not a usable list.
func (p *parser) list(key string, n *yaml.Node, fn func(item *yaml.Node)) bool {
	if !p.usable(n) {
		return false
	}
	if isNull(n) {
		return true
	}
	if n.Kind != yaml.SequenceNode {
		p.errs.add(n.Line, "%s: expected a list, got %s", key, describe(n))
		return false
	}
	for _, item := range n.Content {
		fn(item)
	}
	return true
}

// str reads a scalar as a string. Numbers and dates are taken as written;
// booleans, lists and mappings are errors. A null leaves the value unset.
func (p *parser) str(key string, n *yaml.Node) str {
	bad := str{line: n.Line, set: true, bad: true}
	if !p.usable(n) {
		return bad
	}
	if isNull(n) {
		return str{line: n.Line}
	}
	if n.Kind != yaml.ScalarNode {
		p.errs.add(n.Line, "%s: expected a string, got %s", key, describe(n))
		return bad
	}
	if n.ShortTag() == "!!bool" {
		p.errs.add(n.Line, "%s: expected a string, got %s (quote it if you mean the string)", key, describe(n))
		return bad
	}
	return str{v: n.Value, line: n.Line, set: true}
}

// flag reads a boolean. A null leaves the value unset.
func (p *parser) flag(key string, n *yaml.Node) flag {
	bad := flag{line: n.Line, set: true, bad: true}
	if !p.usable(n) {
		return bad
	}
	if isNull(n) {
		return flag{line: n.Line}
	}
	if n.Kind != yaml.ScalarNode {
		p.errs.add(n.Line, "%s: expected true or false, got %s", key, describe(n))
		return bad
	}
	var b bool
	if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.errs.add(n.Line, "%s: %q is not a boolean (use true or false)", key, n.Value)
		return bad
	}
	return flag{v: b, line: n.Line, set: true}
}

// strs reads a list of strings. A null is an empty list that counts as
// set. Malformed entries are reported and make the whole list bad.
func (p *parser) strs(key string, n *yaml.Node) strs {
	out := strs{line: n.Line, set: true}
	ok := p.list(key, n, func(item *yaml.Node) {
		s := p.str(key, item)
		switch {
		case s.bad:
			out.bad = true
		case !s.set:
			p.errs.add(item.Line, "%s: empty entry", key)
			out.bad = true
		default:
			out.items = append(out.items, s)
		}
	})
	if !ok {
		out.bad = true
	}
	return out
}

// defaults reads the defaults mapping.
func (p *parser) defaults(n *yaml.Node) defaultsSpec {
	var d defaultsSpec
	if isNull(n) {
		return d
	}
	known := []string{"tls", "httpsRedirect", "http2", "clientMaxBodySize", "includes", "enabled"}
	p.mapping(n, known, func(key string, _, v *yaml.Node) {
		switch key {
		case "tls":
			d.tls = p.str(key, v)
		case "httpsRedirect":
			d.httpsRedirect = p.flag(key, v)
		case "http2":
			d.http2 = p.flag(key, v)
		case "clientMaxBodySize":
			d.clientMaxBodySize = p.str(key, v)
		case "includes":
			d.includes = p.strs(key, v)
		case "enabled":
			d.enabled = p.flag(key, v)
		}
	})
	return d
}

// site reads one entry of the sites list.
func (p *parser) site(n *yaml.Node) siteSpec {
	s := siteSpec{line: n.Line}
	known := []string{"name", "serverNames", "enabled", "tls", "httpsRedirect", "http2",
		"clientMaxBodySize", "includes", "locations", "redirect", "raw"}
	s.bad = !p.mapping(n, known, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			s.name = p.str(key, v)
		case "serverNames":
			s.serverNames = p.strs(key, v)
			s.serverNames.line = k.Line
		case "enabled":
			s.enabled = p.flag(key, v)
		case "tls":
			s.tls = p.str(key, v)
		case "httpsRedirect":
			s.httpsRedirect = p.flag(key, v)
		case "http2":
			s.http2 = p.flag(key, v)
		case "clientMaxBodySize":
			s.clientMaxBodySize = p.str(key, v)
		case "includes":
			s.includes = p.strs(key, v)
		case "locations":
			s.locationsSet, s.locationsLine = true, k.Line
			s.locationsBad = !p.list(key, v, func(item *yaml.Node) {
				s.locations = append(s.locations, p.location(item))
			})
		case "redirect":
			s.redirect = p.str(key, v)
		case "raw":
			s.raw = p.str(key, v)
		}
	})
	return s
}

// location reads one entry of a site's locations list.
func (p *parser) location(n *yaml.Node) locationSpec {
	l := locationSpec{line: n.Line}
	known := []string{"path", "proxyPass", "root", "return", "websocket"}
	l.bad = !p.mapping(n, known, func(key string, _, v *yaml.Node) {
		switch key {
		case "path":
			l.path = p.str(key, v)
		case "proxyPass":
			l.proxyPass = p.str(key, v)
		case "root":
			l.root = p.str(key, v)
		case "return":
			l.ret = p.str(key, v)
		case "websocket":
			l.websocket = p.flag(key, v)
		}
	})
	return l
}
