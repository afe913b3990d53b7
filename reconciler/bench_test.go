package reconciler_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/reconciler"
)

// GenerateSites returns a sites.yaml with n sites: a mix of proxy,
// static, redirect and raw sites, TLS off. raw holds the raw files it
// refers to.
func generateSites(n int) (sitesYAML string, raw map[string]string) {
	var b strings.Builder
	raw = map[string]string{}
	b.WriteString("version: 1\ndefaults:\n  clientMaxBodySize: 10m\nsites:\n")
	for i := range n {
		name := fmt.Sprintf("site%05d", i)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.example.org, www.%s.example.org]\n    locations:\n      - path: /\n        proxyPass: http://127.0.0.1:%d\n      - path: /ws/\n        proxyPass: http://127.0.0.1:%d\n        websocket: true\n", name, name, name, 10000+i%5000, 20000+i%5000)
		case 1:
			fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.example.org]\n    locations:\n      - path: /\n        root: /srv/%s\n", name, name, name)
		case 2:
			fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.example.org]\n    redirect: https://%s.example.net\n", name, name, name)
		case 3:
			path := "raw/" + name + ".conf"
			fmt.Fprintf(&b, "  - name: %s\n    raw: %s\n", name, path)
			raw[path] = fmt.Sprintf("server {\n    listen 127.0.0.1:8080;\n    server_name %s.example.org;\n    location / {\n        return 200 'raw %s';\n    }\n}\n", name, name)
		}
	}
	return b.String(), raw
}

// benchHost prepares a converged host with n sites, without nginx (the
// no-op pass runs neither the test nor the reload command).
func benchHost(b *testing.B, n int) (*reconciler.Reconciler, string) {
	b.Helper()
	sites, raw := generateSites(n)
	files := map[string]string{"sites.yaml": sites}
	for k, v := range raw {
		files[k] = v
	}
	repo := testenv.NewGitRepo(b, files)
	cfg, err := config.Default(nil)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg.Source.URL = repo
	cfg.Nginx.ConfDir, cfg.Nginx.SnippetsDir = filepath.Join(dir, "conf.d"), filepath.Join(dir, "snippets")
	cfg.Reconcile.StateDir = filepath.Join(dir, "state")
	cfg.Certbot.ConfigDir, cfg.Certbot.Webroot = filepath.Join(dir, "le"), filepath.Join(dir, "acme")
	r := reconciler.New(cfg, reconciler.SourceFor(cfg), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	res, err := r.Reconcile(context.Background())
	if err != nil || res.Written < n {
		b.Fatalf("converge: %v (%d written)", err, res.Written)
	}
	return r, repo
}

// BenchmarkNoopPass measures a whole pass (git fetch, parse, render,
// observe, plan) over a host that is already in sync.
func BenchmarkNoopPass(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("sites=%d", n), func(b *testing.B) {
			r, _ := benchHost(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := r.Reconcile(context.Background())
				if err != nil || !res.Plan.Empty() || res.Written != 0 {
					b.Fatalf("no-op pass did something: %v %v", err, res.Plan)
				}
			}
		})
	}
}

// BenchmarkReadFloor is the floor a no-op pass is compared with: reading
// every managed file once.
func BenchmarkReadFloor(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("sites=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			for i := range n {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("site%05d.conf", i)), make([]byte, 1200), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				entries, err := os.ReadDir(dir)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range entries {
					if _, err := os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkOneSiteChange measures a pass after a commit that changes one
// site (without nginx: its test and reload are the floor's share).
func BenchmarkOneSiteChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("sites=%d", n), func(b *testing.B) {
			r, repo := benchHost(b, n)
			sites, _ := generateSites(n)
			i := 0
			for b.Loop() {
				b.StopTimer()
				i++
				files := map[string]string{"sites.yaml": strings.Replace(sites, "proxyPass: http://127.0.0.1:10000\n", fmt.Sprintf("proxyPass: http://127.0.0.1:%d\n", 30000+i), 1)}
				testenv.CommitFiles(b, repo, files, "one site")
				b.StartTimer()
				res, err := r.Reconcile(context.Background())
				if err != nil || res.Written != 1 {
					b.Fatalf("one-site pass: %v written=%d", err, res.Written)
				}
			}
		})
	}
}
