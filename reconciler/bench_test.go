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

	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/reconciler"
)

// benchHost prepares a converged host with n sites, without nginx (the
// no-op pass runs neither the test nor the reload command).
func benchHost(b *testing.B, n int) (*reconciler.Reconciler, string) {
	b.Helper()
	repo := testenv.NewGitRepo(b, testenv.Fleet{N: n, Port: 8080}.Files())
	cfg := testenv.BareConfig(b, repo)
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
			sites := testenv.Fleet{N: n, Port: 8080}.SitesYAML(0, false)
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
