package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

const fullExample = `version: 1
defaults:
  tls: letsencrypt
  http2: true
  clientMaxBodySize: 10m
  includes: [security-headers.conf]
sites:
  - name: blog
    serverNames: [blog.example.org, www.blog.example.org]
    clientMaxBodySize: 20m
    includes: [gzip.conf, security-headers.conf]
    locations:
      - path: /
        proxyPass: http://127.0.0.1:8080
        websocket: true
      - path: /static/
        root: /srv/blog/static
      - path: /old
        return: "301 https://blog.example.org/new"
      - path: /gone
        return: 410
  - name: old-site
    serverNames: [old.example.org]
    httpsRedirect: false
    http2: false
    redirect: https://new.example.org
  - name: legacy
    raw: sites/legacy.conf
  - name: plain
    serverNames: ["*.plain.example.org", plain.example.org]
    tls: none
    includes: [gzip.conf]
    locations:
      - path: /
        root: /srv/plain
  - name: paused
    enabled: false
    serverNames: [paused.example.org]
    redirect: https://example.org/
  - name: staging.blog
    serverNames: [staging.blog.example.org]
    locations:
      - path: /
        proxyPass: https://10.0.0.5
`

const legacyConf = `# legacy site, managed by hand
server {
    listen 80;
    server_name legacy.example.org www.legacy.example.org;   # the names
    server_name_in_redirect off;
    location / { root /srv/legacy; }
}
server {
    listen 80;
    server_name "Legacy.Example.org" api.legacy.example.org _;
}
`

// testRepo returns the files most tests share; extra entries are added or
// replace existing ones.
func testRepo(sitesYAML string, extra fstest.MapFS) fstest.MapFS {
	m := fstest.MapFS{
		"sites.yaml":                     {Data: []byte(sitesYAML)},
		"sites/legacy.conf":              {Data: []byte(legacyConf)},
		"sites/wild.conf":                {Data: []byte("server { server_name *.example.net ~^w[0-9]+\\.example\\.net$ exact.example.net; }\n")},
		"sites/broken.conf":              {Data: []byte("server {\n  server_name \"unterminated;\n}\n")},
		"sites/link.conf":                {Data: []byte("/etc/passwd"), Mode: fs.ModeSymlink},
		"sites/dir":                      {Mode: fs.ModeDir | 0o755},
		"snippets/gzip.conf":             {Data: []byte("gzip on;\n")},
		"snippets/security-headers.conf": {Data: []byte("add_header X-Frame-Options DENY;\n")},
		"snippets/.gitkeep":              {},
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestLoadFullExample(t *testing.T) {
	d, err := Load(testRepo(fullExample, nil), "sites.yaml", Filter{Exclude: []string{"staging.*"}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Desired{
		File: "sites.yaml",
		Sites: []Site{
			{
				Name:              "blog",
				ServerNames:       []string{"blog.example.org", "www.blog.example.org"},
				TLS:               TLSLetsEncrypt,
				HTTPSRedirect:     true,
				HTTP2:             true,
				ClientMaxBodySize: "20m",
				Includes:          []string{"security-headers.conf", "gzip.conf"},
				Locations: []Location{
					{Path: "/", ProxyPass: "http://127.0.0.1:8080", WebSocket: true},
					{Path: "/static/", Root: "/srv/blog/static"},
					{Path: "/old", Return: "301 https://blog.example.org/new"},
					{Path: "/gone", Return: "410"},
				},
				Line: 8,
			},
			{
				Name:              "old-site",
				ServerNames:       []string{"old.example.org"},
				TLS:               TLSLetsEncrypt,
				HTTPSRedirect:     false,
				HTTP2:             false,
				ClientMaxBodySize: "10m",
				Includes:          []string{"security-headers.conf"},
				Redirect:          "https://new.example.org",
				Line:              22,
			},
			{
				Name:              "legacy",
				ServerNames:       []string{"legacy.example.org", "www.legacy.example.org", "api.legacy.example.org"},
				TLS:               TLSLetsEncrypt,
				HTTPSRedirect:     true,
				HTTP2:             true,
				ClientMaxBodySize: "10m",
				Includes:          []string{"security-headers.conf"},
				RawPath:           "sites/legacy.conf",
				Raw:               []byte(legacyConf),
				Line:              27,
			},
			{
				Name:              "plain",
				ServerNames:       []string{"*.plain.example.org", "plain.example.org"},
				TLS:               TLSNone,
				HTTPSRedirect:     false, // only meaningful with TLS
				HTTP2:             true,
				ClientMaxBodySize: "10m",
				Includes:          []string{"security-headers.conf", "gzip.conf"},
				Locations:         []Location{{Path: "/", Root: "/srv/plain"}},
				Line:              29,
			},
		},
		Skipped: []SkippedSite{
			{Name: "paused", Reason: "disabled"},
			{Name: "staging.blog", Reason: "filtered"},
		},
		Snippets: map[string][]byte{
			"gzip.conf":             []byte("gzip on;\n"),
			"security-headers.conf": []byte("add_header X-Frame-Options DENY;\n"),
		},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Load mismatch\n got: %#v\nwant: %#v", d, want)
		for i := range min(len(d.Sites), len(want.Sites)) {
			if !reflect.DeepEqual(d.Sites[i], want.Sites[i]) {
				t.Errorf("site %d:\n got: %#v\nwant: %#v", i, d.Sites[i], want.Sites[i])
			}
		}
	}
}

func TestLoadBuiltinDefaults(t *testing.T) {
	src := "version: 1\nsites:\n  - name: a\n    serverNames: [a.example.org]\n    redirect: https://b.example.org\n"
	d, err := Load(fstest.MapFS{"sites.yaml": {Data: []byte(src)}}, "sites.yaml", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Desired{
		File: "sites.yaml",
		Sites: []Site{{
			Name:        "a",
			ServerNames: []string{"a.example.org"},
			TLS:         TLSNone,
			Redirect:    "https://b.example.org",
			Line:        3,
		}},
		Snippets: map[string][]byte{},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got  %#v\nwant %#v", d, want)
	}
}

func TestLoadZeroSites(t *testing.T) {
	for _, src := range []string{"version: 1\nsites: []\n", "version: 1\nsites:\n"} {
		d, err := Load(fstest.MapFS{"sites.yaml": {Data: []byte(src)}}, "sites.yaml", Filter{})
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if len(d.Sites) != 0 || len(d.Skipped) != 0 {
			t.Errorf("%q: got %#v", src, d)
		}
	}
}

func TestFilter(t *testing.T) {
	src := `version: 1
sites:
  - name: app-one
    serverNames: [one.example.org]
    redirect: https://example.org
  - name: app-two
    serverNames: [two.example.org]
    redirect: https://example.org
  - name: web
    serverNames: [web.example.org]
    redirect: https://example.org
  - name: off
    enabled: false
    serverNames: [off.example.org]
    redirect: https://example.org
`
	tests := []struct {
		f           Filter
		sites, skip string
	}{
		{Filter{}, "app-one app-two web", "off:disabled"},
		{Filter{Include: []string{"app-*"}}, "app-one app-two", "web:filtered off:filtered"},
		{Filter{Include: []string{"app-*", "web"}, Exclude: []string{"*-two"}}, "app-one web", "app-two:filtered off:filtered"},
		{Filter{Exclude: []string{"*"}}, "", "app-one:filtered app-two:filtered web:filtered off:filtered"},
		{Filter{Include: []string{"off"}}, "", "app-one:filtered app-two:filtered web:filtered off:disabled"},
	}
	for _, tt := range tests {
		d, err := Load(fstest.MapFS{"sites.yaml": {Data: []byte(src)}}, "sites.yaml", tt.f)
		if err != nil {
			t.Fatalf("%+v: %v", tt.f, err)
		}
		var sites, skip []string
		for _, s := range d.Sites {
			sites = append(sites, s.Name)
		}
		for _, s := range d.Skipped {
			skip = append(skip, s.Name+":"+s.Reason)
		}
		if got := strings.Join(sites, " "); got != tt.sites {
			t.Errorf("%+v: sites = %q, want %q", tt.f, got, tt.sites)
		}
		if got := strings.Join(skip, " "); got != tt.skip {
			t.Errorf("%+v: skipped = %q, want %q", tt.f, got, tt.skip)
		}
	}
	if err := (Filter{Include: []string{"ok", "[bad"}}).Validate(); err == nil ||
		err.Error() != `filter: invalid include pattern "[bad": syntax error in pattern` {
		t.Errorf("Validate = %v", err)
	}
	if err := (Filter{Include: []string{"a*"}, Exclude: []string{"b?"}}).Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

func TestErrorsAs(t *testing.T) {
	src := "version: 1\nsites:\n  - name: A\n    serverNames: [a.example.org]\n    redirect: ftp://x\n"
	_, err := Load(fstest.MapFS{"sites.yaml": {Data: []byte(src)}}, "sites.yaml", Filter{})
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("errors.As(Errors) failed or wrong count: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 3 || e.File != "sites.yaml" {
		t.Fatalf("errors.As(*Error) = %+v", e)
	}
	want := "sites.yaml:3: site name \"A\" must be lowercase\n" +
		"sites.yaml:5: redirect \"ftp://x\" must be an http:// or https:// URL"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
	if got := (&Error{File: "f", Msg: "m"}).Error(); got != "f: m" {
		t.Errorf("line 0 format: %q", got)
	}
	if got := (&Error{Line: 3, Msg: "m"}).Error(); got != "line 3: m" {
		t.Errorf("no file format: %q", got)
	}
}

func TestSnippetsDir(t *testing.T) {
	src := "version: 1\nsites: []\n"
	tests := []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{"subdirectory", fstest.MapFS{"snippets/sub/x.conf": {Data: []byte("x")}},
			"snippets/sub: is a directory; snippets/ must contain only files"},
		{"unsafe name", fstest.MapFS{"snippets/a b.conf": {Data: []byte("x")}},
			`snippets/a b.conf: snippet file name "a b.conf" contains " "`},
		{"symlink entry", fstest.MapFS{"snippets/evil.conf": {Data: []byte("/etc/shadow"), Mode: fs.ModeSymlink}},
			"snippets/evil.conf: is a symbolic link; symbolic links are not followed"},
		{"symlink dir", fstest.MapFS{"snippets": {Data: []byte("/etc/nginx/snippets"), Mode: fs.ModeSymlink}},
			"snippets: is a symbolic link; symbolic links are not followed"},
		{"not a dir", fstest.MapFS{"snippets": {Data: []byte("x")}},
			"snippets: is not a directory"},
		{"fifo", fstest.MapFS{"snippets/pipe.conf": {Mode: fs.ModeNamedPipe}},
			"snippets/pipe.conf: is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := fstest.MapFS{"sites.yaml": {Data: []byte(src)}}
			for k, v := range tt.files {
				m[k] = v
			}
			_, err := Load(m, "sites.yaml", Filter{})
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
	// Absent snippets directory, and includes naming snippets the
	// repository does not have (they may come from the OS): fine.
	src = "version: 1\nsites:\n  - name: a\n    serverNames: [a.example.org]\n    includes: [snakeoil.conf]\n    redirect: https://b.example.org\n"
	d, err := Load(fstest.MapFS{"sites.yaml": {Data: []byte(src)}}, "sites.yaml", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Snippets) != 0 || !reflect.DeepEqual(d.Sites[0].Includes, []string{"snakeoil.conf"}) {
		t.Errorf("got %#v", d)
	}
}

func TestLoadMissingFile(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"sites.yaml", "sites.yaml: does not exist"},
		{"../sites.yaml", "../sites.yaml: not a valid path inside the repository"},
		{"/etc/passwd", "/etc/passwd: not a valid path inside the repository"},
	} {
		_, err := Load(fstest.MapFS{}, tt.file, Filter{})
		if err == nil || err.Error() != tt.want {
			t.Errorf("Load(%q) = %v, want %s", tt.file, err, tt.want)
		}
	}
}

// TestLoadFileRoot exercises the real filesystem through os.OpenRoot,
// including symbolic links that point outside the repository.
func TestLoadFileRoot(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.conf")
	writeFile(t, secret, "server { server_name secret.example.org; }\n")

	repo := filepath.Join(t.TempDir(), "repo")
	writeFile(t, filepath.Join(repo, "sites", "ok.conf"), "server { server_name ok.example.org; }\n")
	writeFile(t, filepath.Join(repo, "snippets", "gzip.conf"), "gzip on;\n")
	mustSymlink(t, secret, filepath.Join(repo, "sites", "escape.conf"))
	mustSymlink(t, outside, filepath.Join(repo, "outdir"))
	mustSymlink(t, "ok.conf", filepath.Join(repo, "sites", "inside.conf"))

	good := "version: 1\nsites:\n  - name: ok\n    raw: sites/ok.conf\n"
	writeFile(t, filepath.Join(repo, "sites.yaml"), good)
	d, err := LoadFile(filepath.Join(repo, "sites.yaml"), Filter{})
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if d.File != "sites.yaml" || len(d.Sites) != 1 || d.Sites[0].ServerNames[0] != "ok.example.org" ||
		string(d.Snippets["gzip.conf"]) != "gzip on;\n" {
		t.Errorf("got %#v", d)
	}

	bad := `version: 1
sites:
  - name: escape
    raw: sites/escape.conf
  - name: outdir
    raw: outdir/secret.conf
  - name: inside
    raw: sites/inside.conf
  - name: dotdot
    raw: ../secret.conf
`
	writeFile(t, filepath.Join(repo, "sites.yaml"), bad)
	_, err = LoadFile(filepath.Join(repo, "sites.yaml"), Filter{})
	y := filepath.Join(repo, "sites.yaml")
	want := strings.Join([]string{
		y + `:4: raw file "sites/escape.conf" is a symbolic link; symbolic links are not followed`,
		y + `:6: raw file "outdir/secret.conf" is inside "outdir", which is a symbolic link; symbolic links are not followed`,
		y + `:8: raw file "sites/inside.conf" is a symbolic link; symbolic links are not followed`,
		y + `:10: raw path "../secret.conf" must not contain ".."`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}

	// Even without the symlink checks, the os.Root FS cannot leave the
	// repository.
	root, err := os.OpenRoot(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := fs.ReadFile(root.FS(), "sites/escape.conf"); err == nil {
		t.Error("os.Root followed a symlink out of the repository")
	}

	// A symlinked sites.yaml is refused too.
	mustSymlink(t, filepath.Join(repo, "sites.yaml"), filepath.Join(repo, "link.yaml"))
	_, err = LoadFile(filepath.Join(repo, "link.yaml"), Filter{})
	if want := filepath.Join(repo, "link.yaml") + ": is a symbolic link; symbolic links are not followed"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}

	_, err = LoadFile(filepath.Join(repo, "nope", "sites.yaml"), Filter{})
	var errs Errors
	if !errors.As(err, &errs) {
		t.Errorf("missing directory: got %v", err)
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}
