package state

import (
	"strings"
	"testing"
)

// hdr starts a desired-state file whose first site begins on line 3.
const hdr = "version: 1\nsites:\n"

// siteWith returns a one-site file (site "a" on line 3, serverNames on
// line 4) whose last lines are body.
func siteWith(body string) string {
	return hdr + "  - name: a\n    serverNames: [a.example.org]\n" + body
}

// withName returns a one-site file whose site name (line 3) is name.
func withName(name string) string {
	return hdr + "  - name: " + name + "\n    serverNames: [a.example.org]\n    redirect: https://b.example.org\n"
}

// withServerName returns a one-site file whose only server name (line 4)
// is the YAML scalar n.
func withServerName(n string) string {
	return hdr + "  - name: a\n    serverNames:\n      - " + n + "\n    redirect: https://b.example.org\n"
}

// withLocation returns a one-site file whose only location (line 6) has
// the given extra lines after its path.
func withLocation(extra string) string {
	return siteWith("    locations:\n      - path: /\n" + extra)
}

// hostileCase is a bad desired-state file and the exact errors it must
// produce, one "file:line: message" per line, sorted.
type hostileCase struct {
	name string
	src  string
	want string
}

// hostileInputs returns the table of hostile inputs.
func hostileInputs() []hostileCase {
	return []hostileCase{
		// Structure.
		{"empty file", "", `sites.yaml: file is empty`},
		{"only comments", "# nothing here\n", `sites.yaml: file is empty`},
		{"not a mapping", "- version: 1\n", `sites.yaml:1: the file must be a mapping with keys version, defaults and sites, not a list`},
		{"scalar document", "hello\n", `sites.yaml:1: the file must be a mapping with keys version, defaults and sites, not "hello"`},
		{"yaml syntax", "version: 1\nsites: [\n", `sites.yaml:2: invalid YAML: did not find expected node content`},
		{"tab indentation", "version: 1\nsites:\n\t- name: a\n", `sites.yaml:3: invalid YAML: found character that cannot start any token`},
		{"syntax error on line 1", "version: [1\n", `sites.yaml:1: invalid YAML: did not find expected ',' or ']'`},
		{"control character", "version: 1\nsites: []\n# \x1b[31m\n", `sites.yaml:3: control character '\x1b' is not allowed`},
		{"NUL byte", "version: 1\nsites: [\x00]\n", `sites.yaml:2: control character '\x00' is not allowed`},
		{"invalid UTF-8", "version: 1\n\nsites: [\xff]\n", `sites.yaml:3: invalid UTF-8 (byte 0xff)`},
		{"two documents", "version: 1\nsites: []\n---\nversion: 1\n", `sites.yaml:3: only one YAML document is allowed`},
		{"alias", "version: 1\ndefaults:\n  includes: &inc [a.conf]\nsites:\n  - name: a\n    serverNames: [a.example.org]\n    includes: *inc\n    redirect: https://b.example.org\n",
			`sites.yaml:7: aliases (*inc) are not supported`},
		{"custom tag", withName("!evil a"), `sites.yaml:3: unsupported YAML tag "!evil"`},
		{"binary tag", withServerName("!!binary YWJj"), `sites.yaml:5: unsupported YAML tag "!!binary"`},
		{"alias as site", "version: 1\nsites:\n  - &s {name: a, serverNames: [a.org], redirect: https://b.org}\n  - *s\n", `sites.yaml:4: aliases (*s) are not supported`},
		{"alias as sites", "version: 1\ndefaults: &d {}\nsites: *d\n", `sites.yaml:3: aliases (*d) are not supported`},
		{"alias as version", "version: *v\n", `sites.yaml:1: invalid YAML: unknown anchor 'v' referenced`},
		{"self-referencing alias", "version: 1\nsites: &s [*s]\n", `sites.yaml:2: aliases (*s) are not supported`},
		{"version missing", "sites: []\n", `sites.yaml:1: missing key "version" (must be 1)`},
		{"version 2", "version: 2\nsites: []\n", `sites.yaml:1: unsupported version 2 (must be 1)`},
		{"version string", "version: \"1\"\nsites: []\n", `sites.yaml:1: version must be the number 1, got "1"`},
		{"sites missing", "version: 1\n", `sites.yaml:1: missing key "sites"`},
		{"sites not a list", "version: 1\nsites: {a: 1}\n", `sites.yaml:2: sites: expected a list, got a mapping`},

		// Unknown and duplicate keys.
		{"unknown top-level key", "version: 1\nsites: []\nsite: []\n", `sites.yaml:3: unknown key "site"`},
		{"unknown defaults key", "version: 1\ndefaults:\n  tls: none\n  gzip: true\nsites: []\n", `sites.yaml:4: unknown key "gzip"`},
		{"unknown site key", siteWith("    redirect: https://b.example.org\n    colour: red\n"), `sites.yaml:6: unknown key "colour"`},
		{"unknown location key", withLocation("        proxypass: http://127.0.0.1\n"),
			"sites.yaml:6: location \"/\" needs one of proxyPass, root or return\nsites.yaml:7: unknown key \"proxypass\" (did you mean \"proxyPass\"?)"},
		{"snake case key", siteWith("    redirect: https://b.example.org\n    client_max_body_size: 1m\n"),
			`sites.yaml:6: unknown key "client_max_body_size" (did you mean "clientMaxBodySize"?)`},
		{"duplicate key", hdr + "  - name: a\n    name: b\n    serverNames: [a.example.org]\n    redirect: https://b.example.org\n",
			`sites.yaml:4: duplicate key "name" (first at line 3)`},
		{"duplicate top-level key", "version: 1\nsites: []\nversion: 1\n", `sites.yaml:3: duplicate key "version" (first at line 1)`},

		// Site names.
		{"duplicate site name", hdr + "  - name: a\n    serverNames: [a.example.org]\n    redirect: https://x.example.org\n  - name: a\n    serverNames: [b.example.org]\n    redirect: https://x.example.org\n",
			`sites.yaml:6: duplicate site name "a" (first at line 3)`},
		{"name with slash", withName("a/b"), `sites.yaml:3: site name "a/b" contains "/" (use lowercase letters, digits, "." and "-")`},
		{"name with dotdot", withName("a..b"), `sites.yaml:3: site name "a..b" must not contain ".."`},
		{"name is dotdot", withName(".."), `sites.yaml:3: site name ".." must not contain ".."`},
		{"name with space", withName(`"a b"`), `sites.yaml:3: site name "a b" contains " " (use lowercase letters, digits, "." and "-")`},
		{"name uppercase", withName("Blog"), `sites.yaml:3: site name "Blog" must be lowercase`},
		{"name empty", withName(`""`), `sites.yaml:3: site name is empty`},
		{"name null", withName(""), "sites.yaml:3: site has no name"},
		{"name leading dash", withName("-a"), `sites.yaml:3: site name "-a" must start and end with a letter or digit`},
		{"name underscore", withName("_default"), `sites.yaml:3: site name "_default" contains "_" (use lowercase letters, digits, "." and "-")`},
		{"name too long", withName(strings.Repeat("a", 201)), `sites.yaml:3: site name "` + strings.Repeat("a", 201) + `" is longer than 200 characters`},
		{"name list", withName("[a]"), `sites.yaml:3: name: expected a string, got a list`},
		{"missing name", hdr + "  - serverNames: [a.example.org]\n    redirect: https://b.example.org\n", `sites.yaml:3: site has no name`},

		// Server names.
		{"server name semicolon", withServerName(`"a;b.org"`), `sites.yaml:5: server name "a;b.org" contains ";"`},
		{"server name open brace", withServerName(`"a{b.org"`), `sites.yaml:5: server name "a{b.org" contains "{"`},
		{"server name close brace", withServerName(`"a}b.org"`), `sites.yaml:5: server name "a}b.org" contains "}"`},
		{"server name double quote", withServerName(`'a"b.org'`), `sites.yaml:5: server name "a\"b.org" contains "\""`},
		{"server name single quote", withServerName(`"a'b.org"`), `sites.yaml:5: server name "a'b.org" contains "'"`},
		{"server name dollar", withServerName(`"$host"`), `sites.yaml:5: server name "$host" contains "$"`},
		{"server name hash", withServerName(`"a#b.org"`), `sites.yaml:5: server name "a#b.org" contains "#"`},
		{"server name backslash", withServerName(`'a\b.org'`), `sites.yaml:5: server name "a\\b.org" contains "\\"`},
		{"server name newline", withServerName(`"a.org\nb.org"`), `sites.yaml:5: server name "a.org\nb.org" contains "\n"`},
		{"server name NUL", withServerName(`"a\0.org"`), `sites.yaml:5: server name "a\x00.org" contains "\x00"`},
		{"server name space", withServerName(`"a b.org"`), `sites.yaml:5: server name "a b.org" contains " "`},
		{"server name tab", withServerName(`"a\tb.org"`), `sites.yaml:5: server name "a\tb.org" contains "\t"`},
		{"server name non-ascii", withServerName(`bücher.de`), `sites.yaml:5: server name "bücher.de" contains "ü"`},
		{"server name uppercase", withServerName(`A.example.org`), `sites.yaml:5: server name "A.example.org" must be lowercase`},
		{"server name port", withServerName(`a.example.org:8080`), `sites.yaml:5: server name "a.example.org:8080" must not include a port`},
		{"server name slash", withServerName(`a.org/x`), `sites.yaml:5: server name "a.org/x" contains "/"`},
		{"server name underscore", withServerName(`_`), `sites.yaml:5: server name "_" contains "_"`},
		{"server name long label", withServerName(strings.Repeat("x", 64) + ".org"), `sites.yaml:5: server name "` + strings.Repeat("x", 64) + `.org" has a label longer than 63 characters`},
		{"server name too long", withServerName(strings.Repeat("abcdefghi.", 25) + "test"), `sites.yaml:5: server name "` + strings.Repeat("abcdefghi.", 25) + `test" is longer than 253 characters`},
		{"server name empty label", withServerName(`a..org`), `sites.yaml:5: server name "a..org" has an empty label`},
		{"server name trailing dot", withServerName(`a.org.`), `sites.yaml:5: server name "a.org." has an empty label`},
		{"server name hyphen label", withServerName(`-a.org`), `sites.yaml:5: server name "-a.org" has a label that starts or ends with "-"`},
		{"server name empty", withServerName(`""`), `sites.yaml:5: server name is empty`},
		{"server name inner wildcard", withServerName(`a.*.org`), `sites.yaml:5: server name "a.*.org": "*" is only allowed as a leading "*." label`},
		{"server name regex", withServerName(`"~^a.*$"`), `sites.yaml:5: server name "~^a.*$" contains "$"`},
		{"wildcard with tls", hdr + "  - name: a\n    tls: letsencrypt\n    serverNames: [\"*.a.org\"]\n    redirect: https://b.example.org\n",
			`sites.yaml:5: server name "*.a.org" is a wildcard; wildcards need tls: none`},
		{"wildcard with default tls", "version: 1\ndefaults: {tls: letsencrypt}\nsites:\n  - name: a\n    serverNames: [\"*.a.org\"]\n    redirect: https://b.example.org\n",
			`sites.yaml:5: server name "*.a.org" is a wildcard; wildcards need tls: none`},
		{"duplicate server name in site", hdr + "  - name: a\n    serverNames: [a.org, b.org, a.org]\n    redirect: https://b.example.org\n",
			`sites.yaml:4: duplicate server name "a.org" (first at line 4)`},
		{"server name in two sites", hdr + "  - name: a\n    serverNames: [a.example.org]\n    redirect: https://x.example.org\n  - name: b\n    serverNames:\n      - b.example.org\n      - a.example.org\n    redirect: https://x.example.org\n",
			`sites.yaml:9: server name "a.example.org" is also used by site "a" (line 4)`},
		{"server name in raw and plain site", hdr + "  - name: a\n    serverNames: [legacy.example.org]\n    redirect: https://x.example.org\n  - name: b\n    raw: sites/legacy.conf\n",
			`sites.yaml:7: server name "legacy.example.org" is also used by site "a" (line 4)`},
		{"server names missing", hdr + "  - name: a\n    redirect: https://b.example.org\n", `sites.yaml:3: site "a" has no serverNames`},
		{"server names empty", hdr + "  - name: a\n    serverNames: []\n    redirect: https://b.example.org\n", `sites.yaml:4: serverNames must not be empty`},
		{"server names scalar", hdr + "  - name: a\n    serverNames: a.org\n    redirect: https://b.example.org\n", `sites.yaml:4: serverNames: expected a list, got "a.org"`},
		{"server names entry mapping", hdr + "  - name: a\n    serverNames: [{a: b}]\n    redirect: https://b.example.org\n", `sites.yaml:4: serverNames: expected a string, got a mapping`},

		// Raw sites.
		{"raw escaping", hdr + "  - name: a\n    raw: ../x\n", `sites.yaml:4: raw path "../x" must not contain ".."`},
		{"raw escaping inside", hdr + "  - name: a\n    raw: sites/../../x\n", `sites.yaml:4: raw path "sites/../../x" must not contain ".."`},
		{"raw absolute", hdr + "  - name: a\n    raw: /etc/passwd\n", `sites.yaml:4: raw path "/etc/passwd" must be relative to the repository root`},
		{"raw symlink", hdr + "  - name: a\n    raw: sites/link.conf\n", `sites.yaml:4: raw file "sites/link.conf" is a symbolic link; symbolic links are not followed`},
		{"raw missing", hdr + "  - name: a\n    raw: sites/nope.conf\n", `sites.yaml:4: raw file "sites/nope.conf" does not exist`},
		{"raw directory", hdr + "  - name: a\n    raw: sites/dir\n", `sites.yaml:4: raw file "sites/dir" is a directory`},
		{"raw unclean", hdr + "  - name: a\n    raw: ./sites/legacy.conf\n", `sites.yaml:4: raw path "./sites/legacy.conf" is not a clean path`},
		{"raw odd chars", hdr + "  - name: a\n    raw: \"sites/a b.conf\"\n", `sites.yaml:4: raw path "sites/a b.conf" contains " "`},
		{"raw with server names", hdr + "  - name: a\n    serverNames: [a.example.org]\n    raw: sites/legacy.conf\n",
			`sites.yaml:4: raw sites take their names from the file; remove serverNames`},
		{"raw wildcard with tls", hdr + "  - name: a\n    tls: letsencrypt\n    raw: sites/wild.conf\n",
			"sites.yaml:5: raw file \"sites/wild.conf\": server name \"*.example.net\" cannot get a certificate; wildcards and regular expressions need tls: none\n" +
				"sites.yaml:5: raw file \"sites/wild.conf\": server name \"~^w[0-9]+\\\\.example\\\\.net$\" cannot get a certificate; wildcards and regular expressions need tls: none"},
		{"raw bad syntax", hdr + "  - name: a\n    raw: sites/broken.conf\n",
			"sites.yaml:4: raw file \"sites/broken.conf\" is not valid nginx syntax\nsites/broken.conf:2: unterminated quoted string (missing '\"')"},

		// Exactly one of locations, redirect, raw.
		{"locations and redirect", siteWith("    locations:\n      - path: /\n        root: /srv\n    redirect: https://b.example.org\n"),
			`sites.yaml:8: site "a" sets both locations and redirect; use exactly one`},
		{"redirect and raw", hdr + "  - name: a\n    raw: sites/legacy.conf\n    redirect: https://b.example.org\n",
			`sites.yaml:5: site "a" sets both raw and redirect; use exactly one`},
		{"none of locations redirect raw", siteWith("    tls: none\n"), `sites.yaml:3: site "a" needs one of locations, redirect or raw`},
		{"empty locations", siteWith("    locations: []\n"), `sites.yaml:5: locations must not be empty`},

		// Locations.
		{"location without path", siteWith("    locations:\n      - root: /srv\n"), `sites.yaml:6: location has no path`},
		{"location path relative", siteWith("    locations:\n      - path: foo\n        root: /srv\n"), `sites.yaml:6: location path "foo" must start with "/"`},
		{"location path space", siteWith("    locations:\n      - path: \"/a b\"\n        root: /srv\n"), `sites.yaml:6: location path "/a b" contains " "`},
		{"location path brace", siteWith("    locations:\n      - path: \"/a{b\"\n        root: /srv\n"), `sites.yaml:6: location path "/a{b" contains "{"`},
		{"location path regex", siteWith("    locations:\n      - path: \"~ \\\\.php$\"\n        root: /srv\n"), `sites.yaml:6: location path "~ \\.php$" must start with "/"`},
		{"duplicate location path", siteWith("    locations:\n      - path: /a\n        root: /srv\n      - path: /a\n        root: /srv\n"),
			`sites.yaml:8: duplicate location path "/a" (first at line 6)`},
		{"two actions", withLocation("        root: /srv\n        proxyPass: http://127.0.0.1\n"),
			`sites.yaml:8: location "/" sets both root and proxyPass; use exactly one`},
		{"no action", withLocation(""), `sites.yaml:6: location "/" needs one of proxyPass, root or return`},
		{"proxyPass ftp", withLocation("        proxyPass: ftp://x\n"), `sites.yaml:7: proxyPass "ftp://x" must be an http:// or https:// URL`},
		{"proxyPass port 0", withLocation("        proxyPass: http://127.0.0.1:0\n"), `sites.yaml:7: proxyPass "http://127.0.0.1:0" has port "0"; want 1-65535`},
		{"proxyPass port too big", withLocation("        proxyPass: http://127.0.0.1:70000\n"), `sites.yaml:7: proxyPass "http://127.0.0.1:70000" has port "70000"; want 1-65535`},
		{"proxyPass empty port", withLocation("        proxyPass: \"http://x:/\"\n"), `sites.yaml:7: proxyPass "http://x:/" has an empty port`},
		{"proxyPass bracket host", withLocation("        proxyPass: \"http://]\"\n"), `sites.yaml:7: proxyPass "http://]" has no host`},
		{"proxyPass injection", withLocation("        proxyPass: \"http://x; evil\"\n"), `sites.yaml:7: proxyPass "http://x; evil" contains ";"`},
		{"proxyPass block injection", withLocation("        proxyPass: \"http://x;}server{listen 81;\"\n"), `sites.yaml:7: proxyPass "http://x;}server{listen 81;" contains ";"`},
		{"proxyPass javascript", withLocation("        proxyPass: javascript:alert(1)\n"), `sites.yaml:7: proxyPass "javascript:alert(1)" must be an http:// or https:// URL`},
		{"proxyPass userinfo", withLocation("        proxyPass: http://user:pw@backend\n"), `sites.yaml:7: proxyPass "http://user:pw@backend" must not contain user info`},
		{"proxyPass no host", withLocation("        proxyPass: http:///x\n"), `sites.yaml:7: proxyPass "http:///x" has no host`},
		{"proxyPass variable", withLocation("        proxyPass: http://$backend\n"), `sites.yaml:7: proxyPass "http://$backend" contains "$"`},
		{"proxyPass bad port", withLocation("        proxyPass: http://x:port\n"), `sites.yaml:7: proxyPass "http://x:port" is not a valid URL`},
		{"proxyPass uppercase scheme", withLocation("        proxyPass: HTTP://x\n"), `sites.yaml:7: proxyPass "HTTP://x" must be an http:// or https:// URL`},
		{"websocket without proxyPass", withLocation("        root: /srv\n        websocket: true\n"), `sites.yaml:8: websocket needs proxyPass`},
		{"root relative", withLocation("        root: srv/www\n"), `sites.yaml:7: root "srv/www" must be an absolute path`},
		{"root dotdot", withLocation("        root: /srv/../etc\n"), `sites.yaml:7: root "/srv/../etc" must not contain ".."`},
		{"root unclean", withLocation("        root: /srv//www/\n"), `sites.yaml:7: root "/srv//www/" is not a clean path (write "/srv/www")`},
		{"root semicolon", withLocation("        root: \"/srv;\"\n"), `sites.yaml:7: root "/srv;" contains ";"`},
		{"return bad code", withLocation("        return: 999\n"), `sites.yaml:7: return "999" must start with a status code from 200 to 599`},
		{"return 100", withLocation("        return: \"100 /x\"\n"), `sites.yaml:7: return "100 /x" must start with a status code from 200 to 599`},
		{"return text", withLocation("        return: abc\n"), `sites.yaml:7: return "abc" must start with a status code from 200 to 599`},
		{"return bad url", withLocation("        return: \"301 ftp://x\"\n"), `sites.yaml:7: return URL "ftp://x" must be an http:// or https:// URL`},
		{"return injection", withLocation("        return: \"200 /ok; root /\"\n"), `sites.yaml:7: return path "/ok; root /" contains ";"`},
		{"return double space", withLocation("        return: \"301  https://x\"\n"), `sites.yaml:7: return URL " https://x" contains " "`},

		// Redirect.
		{"redirect relative", siteWith("    redirect: /elsewhere\n"), `sites.yaml:5: redirect "/elsewhere" must be an http:// or https:// URL`},
		{"redirect variable", siteWith("    redirect: https://x.org/$1\n"), `sites.yaml:5: redirect "https://x.org/$1" contains "$"`},
		{"redirect newline", siteWith("    redirect: \"https://x.org\\n\"\n"), `sites.yaml:5: redirect "https://x.org\n" contains "\n"`},

		// Types and other values.
		{"enabled yes please", siteWith("    enabled: \"yes please\"\n    redirect: https://b.example.org\n"), `sites.yaml:5: enabled: "yes please" is not a boolean (use true or false)`},
		{"enabled yes", siteWith("    enabled: yes\n    redirect: https://b.example.org\n"), `sites.yaml:5: enabled: "yes" is not a boolean (use true or false)`},
		{"http2 number", siteWith("    http2: 1\n    redirect: https://b.example.org\n"), `sites.yaml:5: http2: "1" is not a boolean (use true or false)`},
		{"websocket list", withLocation("        proxyPass: http://x\n        websocket: [true]\n"), `sites.yaml:8: websocket: expected true or false, got a list`},
		{"tls boolean", siteWith("    tls: true\n    redirect: https://b.example.org\n"), `sites.yaml:5: tls: expected a string, got the boolean true (quote it if you mean the string)`},
		{"tls unknown", siteWith("    tls: selfsigned\n    redirect: https://b.example.org\n"), `sites.yaml:5: tls must be "letsencrypt" or "none", got "selfsigned"`},
		{"defaults tls unknown", "version: 1\ndefaults:\n  tls: acme\nsites: []\n", `sites.yaml:3: tls must be "letsencrypt" or "none", got "acme"`},
		{"defaults not mapping", "version: 1\ndefaults: [tls]\nsites: []\n", `sites.yaml:2: expected a mapping, got a list`},
		{"site not mapping", hdr + "  - a.example.org\n", `sites.yaml:3: expected a mapping, got "a.example.org"`},
		{"body size", siteWith("    clientMaxBodySize: 10mb\n    redirect: https://b.example.org\n"), `sites.yaml:5: clientMaxBodySize "10mb" must be a number with an optional k, m or g suffix, like 10m`},
		{"body size injection", siteWith("    clientMaxBodySize: \"1m; x\"\n    redirect: https://b.example.org\n"), `sites.yaml:5: clientMaxBodySize "1m; x" must be a number with an optional k, m or g suffix, like 10m`},
		{"include dotdot", siteWith("    includes: [../x]\n    redirect: https://b.example.org\n"), `sites.yaml:5: include "../x" must not contain ".."`},
		{"include space", siteWith("    includes: [\"a b\"]\n    redirect: https://b.example.org\n"), `sites.yaml:5: include "a b" contains " "`},
		{"include slash", siteWith("    includes: [/etc/nginx/x.conf]\n    redirect: https://b.example.org\n"), `sites.yaml:5: include "/etc/nginx/x.conf" contains "/"`},
		{"include semicolon", siteWith("    includes: [\"x.conf;\"]\n    redirect: https://b.example.org\n"), `sites.yaml:5: include "x.conf;" contains ";"`},
		{"include hidden", siteWith("    includes: [.x]\n    redirect: https://b.example.org\n"), `sites.yaml:5: include ".x" must start with a letter or digit`},
		{"defaults include", "version: 1\ndefaults:\n  includes: [\"a\\nb\"]\nsites: []\n", `sites.yaml:3: include "a\nb" contains "\n"`},
		{"include null entry", siteWith("    includes: [~]\n    redirect: https://b.example.org\n"), `sites.yaml:5: includes: empty entry`},

		// Errors in disabled and filtered sites are still reported, and
		// everything is reported at once, sorted by line.
		{"disabled site still validated", hdr + "  - name: a\n    enabled: false\n    serverNames: [\"a;b\"]\n    redirect: https://b.example.org\n",
			`sites.yaml:5: server name "a;b" contains ";"`},
		{"many errors sorted", hdr + "  - name: B\n    serverNames: [\"x y\"]\n    redirect: ftp://z\n  - name: b\n    serverNames: [b.org]\n    locations:\n      - path: x\n        root: y\n",
			"sites.yaml:3: site name \"B\" must be lowercase\n" +
				"sites.yaml:4: server name \"x y\" contains \" \"\n" +
				"sites.yaml:5: redirect \"ftp://z\" must be an http:// or https:// URL\n" +
				"sites.yaml:9: location path \"x\" must start with \"/\"\n" +
				"sites.yaml:10: root \"y\" must be an absolute path"},
	}
}

func TestHostileInputs(t *testing.T) {
	for _, tt := range hostileInputs() {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Load(testRepo(tt.src, nil), "sites.yaml", Filter{Exclude: []string{"a"}})
			if err == nil {
				t.Fatalf("no error; got %#v", d)
			}
			if d != nil {
				t.Errorf("got a result along with errors")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("input:\n%s\ngot:\n%s\nwant:\n%s", tt.src, got, tt.want)
			}
		})
	}
}

func TestFilterPatternErrors(t *testing.T) {
	src := "version: 1\nsites:\n  - name: A\n    serverNames: [a.org]\n    redirect: https://b.org\n"
	_, err := Load(testRepo(src, nil), "sites.yaml", Filter{Include: []string{"[a-"}, Exclude: []string{"ok*", "x\\"}})
	want := "filter: invalid include pattern \"[a-\": syntax error in pattern\n" +
		"filter: invalid exclude pattern \"x\\\\\": syntax error in pattern\n" +
		"sites.yaml:3: site name \"A\" must be lowercase"
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}
