package render

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/sitesync/sitesync/state"
	"github.com/sitesync/sitesync/templates"
)

// fuzzSite holds the values FuzzRenderSite writes into sites.yaml. An
// empty string leaves its key out (see fuzzYAML).
type fuzzSite struct {
	name, serverName, serverName2     string
	path, proxyPass, root, ret        string
	redirect, clientMaxBodySize, incl string
	tls, http2, websocket             bool
}

// fuzzRedirectSite is the name of the second site fuzzYAML declares when
// a redirect is given.
const fuzzRedirectSite = "fuzz-redirect"

// yamlQuote returns s as a YAML double-quoted scalar that decodes to s.
// Printable ASCII other than `"` and `\` is written as is and everything
// else as an escape (\xNN, \uXXXX or \UXXXXXXXX), so the document stays
// valid UTF-8 and free of the characters YAML forbids whatever s holds.
// Bytes that are not valid UTF-8 cannot be written in YAML at all; they
// become \xNN, which decodes to the code point U+00NN instead.
func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}

// fuzzYAML writes the desired-state file for in:
//
//   - defaults set clientMaxBodySize for every site;
//   - site in.name has in.serverName and in.serverName2, tls, http2 and
//     in.incl as its include, and a location for each of in.proxyPass (with
//     websocket), in.root and in.ret; the first of them gets in.path, the
//     others fixed paths;
//   - when in.redirect is set, a second site redirects with it, with the
//     same tls and http2 and httpsRedirect off.
//
// Empty strings leave their key (or location) out, so that the fuzzer can
// reach every combination; a site left without any location keeps one
// with just the path, which the validator rejects.
func fuzzYAML(in fuzzSite) string {
	var b strings.Builder
	kv := func(indent, key, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s%s: %s\n", indent, key, yamlQuote(v))
		}
	}
	tls := "none"
	if in.tls {
		tls = "letsencrypt"
	}
	b.WriteString("version: 1\n")
	if in.clientMaxBodySize != "" {
		b.WriteString("defaults:\n")
		kv("  ", "clientMaxBodySize", in.clientMaxBodySize)
	}
	b.WriteString("sites:\n")
	kv("  - ", "name", in.name)
	b.WriteString("    serverNames:\n")
	fmt.Fprintf(&b, "      - %s\n", yamlQuote(in.serverName))
	if in.serverName2 != "" {
		fmt.Fprintf(&b, "      - %s\n", yamlQuote(in.serverName2))
	}
	fmt.Fprintf(&b, "    tls: %s\n    http2: %t\n", tls, in.http2)
	if in.incl != "" {
		fmt.Fprintf(&b, "    includes:\n      - %s\n", yamlQuote(in.incl))
	}
	b.WriteString("    locations:\n")
	paths := []string{in.path, "/fuzz-second", "/fuzz-third"}
	n := 0
	for _, a := range []struct{ key, v string }{{"proxyPass", in.proxyPass}, {"root", in.root}, {"return", in.ret}} {
		if a.v == "" {
			continue
		}
		fmt.Fprintf(&b, "      - path: %s\n", yamlQuote(paths[n]))
		kv("        ", a.key, a.v)
		if a.key == "proxyPass" {
			fmt.Fprintf(&b, "        websocket: %t\n", in.websocket)
		}
		n++
	}
	if n == 0 {
		fmt.Fprintf(&b, "      - path: %s\n", yamlQuote(in.path))
	}
	if in.redirect != "" {
		fmt.Fprintf(&b, "  - name: %s\n    serverNames: [redirect.fuzz.test]\n", fuzzRedirectSite)
		fmt.Fprintf(&b, "    tls: %s\n    http2: %t\n    httpsRedirect: false\n", tls, in.http2)
		kv("    ", "redirect", in.redirect)
	}
	return b.String()
}

// fuzzOptions are the option sets FuzzRenderSite renders with: the
// defaults, loopback ports with the main site's certificate missing, and
// HTTP/2 as a directive.
func fuzzOptions(site string) []Options {
	o := baseOptions()
	o.HTTPPort, o.HTTPSPort, o.ListenAddress, o.DefaultServer = 8080, 8443, "::1", false
	o.NoTLS = map[string]bool{site: true}
	h2 := baseOptions()
	h2.HTTP2Directive = true
	return []Options{baseOptions(), o, h2}
}

// checkModel verifies that the loaded model holds exactly the values
// written: neither the YAML quoting nor the validator may alter a value
// that it accepts.
func checkModel(t *testing.T, in fuzzSite, d *state.Desired) {
	t.Helper()
	want := 1
	if in.redirect != "" {
		want = 2
	}
	if len(d.Sites) != want {
		t.Fatalf("loaded %d sites, want %d", len(d.Sites), want)
	}
	s := d.Sites[0]
	names := []string{in.serverName}
	if in.serverName2 != "" {
		names = append(names, in.serverName2)
	}
	var incl []string
	if in.incl != "" {
		incl = []string{in.incl}
	}
	var got, exp []string
	for _, l := range s.Locations {
		got = append(got, l.ProxyPass, l.Root, l.Return)
		if l.WebSocket && !in.websocket {
			t.Errorf("location %q has websocket on", l.Path)
		}
	}
	if in.proxyPass != "" {
		exp = append(exp, in.proxyPass, "", "")
	}
	if in.root != "" {
		exp = append(exp, "", in.root, "")
	}
	if in.ret != "" {
		exp = append(exp, "", "", in.ret)
	}
	switch {
	case s.Name != in.name:
		t.Errorf("site name %q, wrote %q", s.Name, in.name)
	case !slices.Equal(s.ServerNames, names):
		t.Errorf("server names %q, wrote %q", s.ServerNames, names)
	case !slices.Equal(s.Includes, incl):
		t.Errorf("includes %q, wrote %q", s.Includes, incl)
	case s.ClientMaxBodySize != in.clientMaxBodySize:
		t.Errorf("clientMaxBodySize %q, wrote %q", s.ClientMaxBodySize, in.clientMaxBodySize)
	case len(s.Locations) == 0 || s.Locations[0].Path != in.path:
		t.Errorf("locations %+v, first path written %q", s.Locations, in.path)
	case !slices.Equal(got, exp):
		t.Errorf("location actions %q, wrote %q", got, exp)
	}
	if want == 2 && d.Sites[1].Redirect != in.redirect {
		t.Errorf("redirect %q, wrote %q", d.Sites[1].Redirect, in.redirect)
	}
}

// FuzzRenderSite writes fuzzed values into a sites.yaml, and for every
// file the validator accepts, renders each site and proves with
// checkStructure that the values did not change the meaning of the
// configuration: the validator is the only thing between these values and
// unquoted nginx syntax.
func FuzzRenderSite(f *testing.F) {
	good := fuzzSite{
		name: "app", serverName: "app.example.org", serverName2: "www.app.example.org",
		path: "/", proxyPass: "http://127.0.0.1:8080", root: "/srv/app",
		ret: "301 https://app.example.org/new", redirect: "https://new.example.org/",
		clientMaxBodySize: "20m", incl: "gzip.conf", tls: true, http2: true, websocket: true,
	}
	seeds := []fuzzSite{
		good,
		{name: "plain", serverName: "plain.example.org", path: "/static/", root: "/srv/plain"},
		{name: "wild", serverName: "*.wild.test", path: "/api", proxyPass: "https://[::1]:8443/v1/", ret: "404", redirect: "http://x.test", clientMaxBodySize: "1G", incl: "h_1.conf"},
		{name: "ret", serverName: "0.example", path: "/a:b@c,d=e~f%20+g", ret: "302 /elsewhere", tls: true},
	}
	edit := func(change func(*fuzzSite)) {
		s := good
		change(&s)
		seeds = append(seeds, s)
	}
	// Classic injection attempts, one value at a time.
	for _, v := range []string{
		"a.test;return 301 x", "a.test}server{", "a.test} server {", `"`, "'", "$host", "${host}",
		"a.test\nreturn 301 x", "a.test\r\n", "a.test #", "#", `\`, `a\;b`, "a.test\x00", "\t",
		"\u0430pp.example.org", "\uff41.test", "a.test\u2028", "a.test\u00a0", "a.test\xff", "~.*", ".example.org",
		"a.example.org:8080", "A.example.org", "*.a.test",
	} {
		edit(func(s *fuzzSite) { s.serverName = v })
	}
	for _, v := range []string{"/x;}", "/x }", "/x{", "/#", "/x y", "/$uri", "~ /x", "=/x", "@x", "/x\n}", `/x\`} {
		edit(func(s *fuzzSite) { s.path = v })
	}
	for _, v := range []string{"http://x/$request_uri", "http://x;}", `http://x/\`, "http://x #", "http://user@x", "unix:/run/x.sock", "http://x/'", "http://x/\"", "http://x/{"} {
		edit(func(s *fuzzSite) { s.proxyPass = v })
	}
	for _, v := range []string{"/srv/x;autoindex on", "/srv/../etc", "/srv/x/", "/srv/$host", "/srv/x }", "/"} {
		edit(func(s *fuzzSite) { s.root = v })
	}
	for _, v := range []string{"301 https://x; return 200", "301  https://x", "200 $host", "301 /x;}", "301 https://x #", "301", "301 https://x 302", "200 text"} {
		edit(func(s *fuzzSite) { s.ret = v })
	}
	for _, v := range []string{"https://x #", "https://x/';", "https://x/\r\n", "https://x/$host", "https://x/;}location /a{return 200;", "https://x/#frag"} {
		edit(func(s *fuzzSite) { s.redirect = v })
	}
	for _, v := range []string{"10m;evil", "10m\n", "10m }", "10 m", "-1"} {
		edit(func(s *fuzzSite) { s.clientMaxBodySize = v })
	}
	for _, v := range []string{"a.conf;include /etc/passwd", "../x", "*", "a/b", ".hidden", "a b"} {
		edit(func(s *fuzzSite) { s.incl = v })
	}
	for _, v := range []string{"../x", "a b", "a\x00b", "a;b", "App", "a/b", "_x"} {
		edit(func(s *fuzzSite) { s.name = v })
	}
	for _, s := range seeds {
		f.Add(s.name, s.serverName, s.serverName2, s.path, s.proxyPass, s.root, s.ret, s.redirect,
			s.clientMaxBodySize, s.incl, s.tls, s.http2, s.websocket)
	}

	tmpl, err := templates.Load(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, serverName, serverName2, path, proxyPass, root, ret, redirect,
		clientMaxBodySize, incl string, tls, http2, websocket bool) {
		in := fuzzSite{name, serverName, serverName2, path, proxyPass, root, ret, redirect,
			clientMaxBodySize, incl, tls, http2, websocket}
		src := fuzzYAML(in)
		d, err := state.Load(fstest.MapFS{"sites.yaml": {Data: []byte(src)}}, "sites.yaml", state.Filter{})
		if err != nil {
			return // rejected: nothing reaches a template
		}
		checkModel(t, in, d)
		for _, opts := range fuzzOptions(name) {
			out, err := Render(d, tmpl, opts)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if len(out.Conf) != len(d.Sites)+1 {
				t.Errorf("%d conf.d files for %d sites", len(out.Conf), len(d.Sites))
			}
			for _, s := range d.Sites {
				file, ok := out.Conf[SiteFile(s.Name)]
				if !ok || strings.ContainsAny(SiteFile(s.Name), "/\\") {
					t.Errorf("site %q: no plain conf.d file %q", s.Name, SiteFile(s.Name))
					continue
				}
				if err := checkStructure(t, s, opts, file.Data); err != nil {
					t.Errorf("site %q changes the structure of its file:\n%v\nsites.yaml:\n%s\nrendered:\n%s", s.Name, err, src, file.Data)
				}
			}
		}
	})
}

// TestYAMLQuote checks that yamlQuote's output decodes to the value, for
// every byte alone and a mix of awkward strings.
func TestYAMLQuote(t *testing.T) {
	values := []string{"", `"`, `\`, `\"`, "a b", " lead", "trail ", "#x", ": x", "- x", "'", "\u0085", "\u2028",
		"\ufeff", "\ufffd", "\ufffe", "\uffff", "\U0001f600", "\u0430", "\x7f", "{a: b}", "[a]", "*a", "&a", "!t", "%"}
	for c := range 256 {
		values = append(values, string(rune(c)), "x"+string([]byte{byte(c)})+"y")
	}
	for _, v := range values {
		q := yamlQuote(v)
		if !utf8.ValidString(q) {
			t.Errorf("yamlQuote(%q) = %q is not UTF-8", v, q)
		}
		var doc struct{ K string }
		if err := yaml.Unmarshal([]byte("k: "+q+"\n"), &doc); err != nil {
			t.Errorf("yamlQuote(%q) = %s: %v", v, q, err)
			continue
		}
		want := v
		if !utf8.ValidString(v) {
			// Each invalid byte becomes the code point of the same value.
			var b strings.Builder
			for i := 0; i < len(v); {
				r, size := utf8.DecodeRuneInString(v[i:])
				if r == utf8.RuneError && size == 1 {
					r = rune(v[i])
				}
				b.WriteRune(r)
				i += size
			}
			want = b.String()
		}
		if doc.K != want {
			t.Errorf("yamlQuote(%q) = %s decodes to %q", v, q, doc.K)
		}
	}
}

// TestFuzzYAMLLoads checks that the fuzz harness's file for sane values
// loads, so that the fuzzer starts from files the validator accepts.
func TestFuzzYAMLLoads(t *testing.T) {
	for _, in := range []fuzzSite{
		{name: "app", serverName: "app.example.org", serverName2: "www.app.example.org", path: "/", proxyPass: "http://127.0.0.1:8080",
			root: "/srv/app", ret: "301 https://app.example.org/new", redirect: "https://new.example.org/", clientMaxBodySize: "20m",
			incl: "gzip.conf", tls: true, http2: true, websocket: true},
		{name: "plain", serverName: "*.plain.test", path: "/x", ret: "404"},
	} {
		src := fuzzYAML(in)
		d, err := state.Load(fstest.MapFS{"sites.yaml": {Data: []byte(src)}}, "sites.yaml", state.Filter{})
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		checkModel(t, in, d)
	}
}
