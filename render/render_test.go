package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sitesync/sitesync/state"
	"github.com/sitesync/sitesync/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func baseOptions() Options {
	return Options{
		HTTPPort: 80, HTTPSPort: 443,
		Webroot:       "/var/lib/sitesync/acme",
		SnippetsDir:   "/etc/nginx/snippets",
		LiveDir:       "/etc/letsencrypt/live",
		DefaultServer: true,
	}
}

func goldenDesired() *state.Desired {
	return &state.Desired{
		File: "sites.yaml",
		Sites: []state.Site{
			{
				Name: "app", ServerNames: []string{"app.example.org", "www.app.example.org"},
				TLS: state.TLSLetsEncrypt, HTTPSRedirect: true, HTTP2: true,
				ClientMaxBodySize: "20m", Includes: []string{"security.conf", "gzip.conf"},
				Locations: []state.Location{
					{Path: "/", ProxyPass: "http://127.0.0.1:8080"},
					{Path: "/ws/", ProxyPass: "http://127.0.0.1:8081", WebSocket: true},
					{Path: "/static/", Root: "/srv/app"},
					{Path: "/old", Return: "301 https://app.example.org/new"},
				},
			},
			{
				Name: "plain", ServerNames: []string{"plain.example.org"}, TLS: state.TLSNone,
				Locations: []state.Location{{Path: "/", Root: "/srv/plain"}},
			},
			{
				Name: "moved", ServerNames: []string{"old.example.org"}, TLS: state.TLSLetsEncrypt,
				Redirect: "https://new.example.org/",
			},
			{
				Name: "both", ServerNames: []string{"both.example.org"}, TLS: state.TLSLetsEncrypt,
				HTTPSRedirect: false, Locations: []state.Location{{Path: "/", ProxyPass: "https://10.0.0.1"}},
			},
			{
				Name: "legacy", ServerNames: []string{"legacy.example.org"}, TLS: state.TLSNone,
				RawPath: "raw/legacy.conf", Raw: []byte("server {\n    listen 80;\n    server_name legacy.example.org;\n}\n"),
			},
		},
		Snippets: map[string][]byte{"gzip.conf": []byte("gzip on;\n")},
	}
}

func TestGolden(t *testing.T) {
	tmpl, err := templates.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]Options{"default": baseOptions()}
	o := baseOptions()
	o.HTTPPort, o.HTTPSPort, o.ListenAddress, o.DefaultServer = 8080, 8443, "127.0.0.1", false
	o.NoTLS = map[string]bool{"app": true}
	cases["loopback-notls"] = o
	h2 := baseOptions()
	h2.HTTP2Directive = true
	cases["http2-directive"] = h2

	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := Render(goldenDesired(), tmpl, opts)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Render(goldenDesired(), tmpl, opts)
			if err != nil {
				t.Fatal(err)
			}
			got := dump(out)
			if !bytes.Equal(got, dump(again)) {
				t.Fatal("rendering twice gave different bytes")
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./render -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test ./render -update to accept):\n%s", golden, got)
			}
		})
	}
}

// dump concatenates every file of out in a stable order.
func dump(out *Output) []byte {
	var b bytes.Buffer
	for _, group := range []struct {
		dir   string
		files map[string]File
	}{{"conf.d", out.Conf}, {"snippets", out.Snippets}} {
		names := make([]string, 0, len(group.files))
		for n := range group.files {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			f := group.files[n]
			b.WriteString("==> " + group.dir + "/" + n + " (site " + f.Site + ")\n")
			b.Write(f.Data)
		}
	}
	return b.Bytes()
}

func TestMarkerRoundTrip(t *testing.T) {
	data := WithMarker(KindSite, "blog", []byte("server {}\n"))
	h, ok := ParseHeader(data)
	if !ok || h.Kind != KindSite || h.Name != "blog" {
		t.Fatalf("ParseHeader = %+v, %v", h, ok)
	}
	if !Intact(data) {
		t.Fatal("fresh file not intact")
	}
	edited := bytes.Replace(data, []byte("server {}"), []byte("server { }"), 1)
	if Intact(edited) {
		t.Fatal("hand-edited file reported intact")
	}
	for _, bad := range []string{
		"", "server {}\n", "# sitesync:managed site=blog\n",
		"# sitesync:managed bogus=x sha256=" + strings.Repeat("0", 64) + " (do not edit: changes are reverted)\n",
		"# sitesync:managed site=blog sha256=abc (do not edit: changes are reverted)\n",
	} {
		if _, ok := ParseHeader([]byte(bad)); ok {
			t.Errorf("ParseHeader(%q) accepted a non-marker", bad)
		}
	}
}

func TestTemplateOverride(t *testing.T) {
	dir := t.TempDir()
	custom := `{{define "site.conf.tmpl"}}# custom {{.Site.Name}}
{{end}}`
	if err := os.WriteFile(filepath.Join(dir, "site.conf.tmpl"), []byte(custom), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := templates.Load(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Site(tmpl, goldenDesired().Sites[1], baseOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, body, _ := bytes.Cut(b, []byte("\n")); string(body) != "# custom plain\n" {
		t.Fatalf("override not used: %q", b)
	}

	if err := os.WriteFile(filepath.Join(dir, "site.conf.tmpl"), []byte("{{if}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = templates.Load(os.DirFS(dir))
	if err == nil || !strings.Contains(err.Error(), "site.conf.tmpl:1") {
		t.Fatalf("broken override: err = %v, want file:line", err)
	}
}

func BenchmarkRender(b *testing.B) {
	tmpl, err := templates.Load(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10, 1000, 10000} {
		d := &state.Desired{}
		base := goldenDesired().Sites
		for i := range n {
			s := base[i%4]
			s.Name = s.Name + "-" + itoa(i)
			d.Sites = append(d.Sites, s)
		}
		b.Run(itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(d, tmpl, baseOptions()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
