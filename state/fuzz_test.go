package state

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as sites.yaml. Load must never
// panic, must report problems as one-line Errors, and whatever it accepts
// must satisfy checkInvariants.
func FuzzLoad(f *testing.F) {
	// Starting points besides the corpus in testdata/fuzz/FuzzLoad and
	// the hostile inputs.
	seeds := []string{
		fullExample,
		"version: 1\nsites: []\n",
		"version: 1\nsites:\n  - name: a\n    serverNames: [\"*.a.org\"]\n    tls: none\n    redirect: https://b.org\n",
		"version: 1\nsites:\n  - name: a\n    raw: sites/wild.conf\n",
		"version: 1\nsites:\n  - name: a\n    serverNames: [a.org]\n    locations:\n      - path: /\n        return: \"301 /x\"\n",
		"version: 1\nsites: &s [*s]\n",
		"version: 1\ndefaults: {includes: [a.conf], clientMaxBodySize: 1g}\nsites: [{name: a, serverNames: [a.org], redirect: 'http://[::1]:80/'}]\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	for _, tt := range hostileInputs() {
		f.Add([]byte(tt.src))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Load(testRepo(string(data), nil), "sites.yaml", Filter{Exclude: []string{"x*"}})
		if err != nil {
			if d != nil {
				t.Fatal("result returned along with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not a non-empty Errors: %#v", err)
			}
			for _, e := range errs {
				// Messages quote values, so hostile input cannot forge
				// extra lines in the output.
				if strings.ContainsAny(e.Msg, "\n\r") {
					t.Errorf("message with a line break: %q", e.Msg)
				}
				if e.File == "sites.yaml" && e.Line < 0 {
					t.Errorf("bad line in %q", e.Error())
				}
			}
			return
		}
		checkInvariants(t, d)
	})
}

// FuzzServerNames feeds arbitrary bytes to ServerNames: it must never
// panic, and the exact names it returns must be safe, lowercase and unique.
func FuzzServerNames(f *testing.F) {
	f.Add([]byte(legacyConf))
	f.Add([]byte("server { server_name a.org \"b c\" 'd;e' *.f.org ~^g$; }"))
	f.Add([]byte("server {\n  server_name \"unterminated;\n}\n"))
	f.Add([]byte("# server_name x;\nserver{server_name_in_redirect on;server_name y\\;z;}"))
	f.Add([]byte("s \"${a}\" { server_name a}b a\\\"b; }"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		names, other, err := ServerNames(raw)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || names != nil || other != nil {
				t.Fatalf("bad error result: %#v %q %q", err, names, other)
			}
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" || n == "_" || strings.ContainsAny(n, " \t\r\n\f\v;{}\"'\\$#*") ||
				n[0] == '~' || n[0] == '.' || n != strings.ToLower(n) {
				t.Errorf("unsafe or non-exact name %q", n)
			}
			for i := 0; i < len(n); i++ {
				if n[i] < 0x21 || n[i] > 0x7e {
					t.Errorf("name %q has byte %#x outside printable ASCII", n, n[i])
				}
			}
			if seen[n] {
				t.Errorf("duplicate name %q", n)
			}
			seen[n] = true
		}
	})
}

// checkInvariants verifies, independently of the validation code, that a
// successfully loaded model only holds values that are safe to write into
// nginx configuration unquoted, and is structurally sound.
func checkInvariants(t *testing.T, d *Desired) {
	t.Helper()
	safe := func(what, s string) {
		t.Helper()
		if s == "" {
			t.Errorf("%s is empty", what)
			return
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < 0x21 || c > 0x7e {
				t.Errorf("%s %q: byte %#x outside printable ASCII", what, s, c)
				return
			}
			switch c {
			case ';', '{', '}', '"', '\'', '\\', '$', '#':
				t.Errorf("%s %q contains %q", what, s, c)
				return
			}
		}
	}
	for name, body := range d.Snippets {
		safe("snippet name", name)
		if strings.Contains(name, "/") || strings.Contains(name, "..") || body == nil {
			t.Errorf("bad snippet %q", name)
		}
	}
	for _, s := range d.Skipped {
		safe("skipped site name", s.Name)
	}
	names := map[string]bool{}
	for _, s := range d.Sites {
		safe("site name", s.Name)
		if s.TLS != TLSNone && s.TLS != TLSLetsEncrypt {
			t.Errorf("site %q: tls %q", s.Name, s.TLS)
		}
		if s.HTTPSRedirect && s.TLS == TLSNone {
			t.Errorf("site %q: httpsRedirect without tls", s.Name)
		}
		kinds := 0
		for _, set := range []bool{s.Locations != nil, s.Redirect != "", s.RawPath != ""} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			t.Errorf("site %q: %d of locations/redirect/raw set", s.Name, kinds)
		}
		if s.RawPath == "" && len(s.ServerNames) == 0 {
			t.Errorf("site %q: no server names", s.Name)
		}
		for _, n := range s.ServerNames {
			safe("server name", n)
			if strings.Contains(n, ":") || n != strings.ToLower(n) {
				t.Errorf("server name %q has a port or uppercase", n)
			}
			if strings.Contains(n, "*") && (s.TLS != TLSNone || !strings.HasPrefix(n, "*.") || strings.Count(n, "*") != 1) {
				t.Errorf("site %q: bad wildcard %q", s.Name, n)
			}
			if names[n] {
				t.Errorf("server name %q used twice", n)
			}
			names[n] = true
		}
		for _, inc := range s.Includes {
			safe("include", inc)
			if strings.Contains(inc, "/") || strings.Contains(inc, "..") {
				t.Errorf("include %q", inc)
			}
		}
		if s.ClientMaxBodySize != "" {
			safe("clientMaxBodySize", s.ClientMaxBodySize)
		}
		if s.Redirect != "" {
			safe("redirect", s.Redirect)
			if !strings.HasPrefix(s.Redirect, "http://") && !strings.HasPrefix(s.Redirect, "https://") {
				t.Errorf("redirect %q", s.Redirect)
			}
		}
		if s.RawPath != "" {
			safe("raw path", s.RawPath)
			if strings.HasPrefix(s.RawPath, "/") || strings.Contains(s.RawPath, "..") {
				t.Errorf("raw path %q", s.RawPath)
			}
		}
		for _, l := range s.Locations {
			safe("location path", l.Path)
			if !strings.HasPrefix(l.Path, "/") {
				t.Errorf("location path %q", l.Path)
			}
			actions := 0
			if l.ProxyPass != "" {
				actions++
				safe("proxyPass", l.ProxyPass)
			}
			if l.Root != "" {
				actions++
				safe("root", l.Root)
			}
			if l.Return != "" {
				actions++
				parts := strings.Split(l.Return, " ")
				if len(parts) > 2 {
					t.Errorf("return %q has more than one space", l.Return)
				}
				for _, p := range parts {
					safe("return", p)
				}
			}
			if actions != 1 || (l.WebSocket && l.ProxyPass == "") {
				t.Errorf("location %+v", l)
			}
		}
	}
	// Every string field anywhere in a site must have been looked at
	// above; catch fields added to the model later without a check here.
	siteFields := []string{"Name", "ServerNames", "TLS", "HTTPSRedirect", "HTTP2", "ClientMaxBodySize",
		"Includes", "Locations", "Redirect", "RawPath", "Raw", "Line"}
	if n := reflect.TypeFor[Site]().NumField(); n != len(siteFields) {
		t.Errorf("Site has %d fields, checkInvariants knows %d: extend it", n, len(siteFields))
	}
	if n := reflect.TypeFor[Location]().NumField(); n != 5 {
		t.Errorf("Location has %d fields, checkInvariants knows 5: extend it", n)
	}
}

// TestSafeInvariantOnExamples runs the fuzz invariant on the known-good
// inputs.
func TestSafeInvariantOnExamples(t *testing.T) {
	d, err := Load(testRepo(fullExample, nil), "sites.yaml", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, d)
}
