package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/reconciler"
)

// The benchmarks below isolate the Go side of a pass (no nginx: the test
// and reload commands are empty) so that it can be profiled:
//
//	go test ./bench -run '^$' -bench 'Pass/change/sites=10000' -benchtime 10x -cpuprofile cpu.out
//	go tool pprof -top -cum bench.test cpu.out
//
// They run only with -bench.

// profileSizes are the fleet sizes of the benchmarks.
var profileSizes = []int{100, 1000, 10000}

// newBareHost returns a host with an n-site fleet and no nginx, converged.
func newBareHost(b *testing.B, n int) (*host, *reconciler.Reconciler) {
	b.Helper()
	fl := testenv.Fleet{N: n, Port: 8080}
	repo := testenv.NewGitRepo(b, fl.Files())
	cfg := testenv.BareConfig(b, repo)
	h := &host{repo: repo, fleet: fl, cfg: cfg, issuer: &countingIssuer{}}
	r := h.reconciler()
	if res, err := r.Reconcile(context.Background()); err != nil || res.Written < n {
		b.Fatalf("converge: %v", err)
	}
	return h, r
}

// BenchmarkPass measures the Go side of a no-op pass (cache warm), a no-op
// pass by a new Reconciler (cache cold, as `sitesync apply`) and the pass
// after a one-site change (the commit is outside the timer).
func BenchmarkPass(b *testing.B) {
	for _, n := range profileSizes {
		b.Run(fmt.Sprintf("noop/sites=%d", n), func(b *testing.B) {
			_, r := newBareHost(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if res, err := r.Reconcile(context.Background()); err != nil || !res.Plan.Empty() {
					b.Fatalf("no-op pass: %v %v", err, res.Plan)
				}
			}
		})
		b.Run(fmt.Sprintf("cold/sites=%d", n), func(b *testing.B) {
			h, _ := newBareHost(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if res, err := h.reconciler().Reconcile(context.Background()); err != nil || !res.Plan.Empty() {
					b.Fatalf("cold no-op pass: %v %v", err, res.Plan)
				}
			}
		})
		b.Run(fmt.Sprintf("change/sites=%d", n), func(b *testing.B) {
			h, r := newBareHost(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				h.variant++
				testenv.CommitFiles(b, h.repo, map[string]string{"sites.yaml": h.fleet.SitesYAML(h.variant, false)}, "bench")
				b.StartTimer()
				if res, err := r.Reconcile(context.Background()); err != nil || res.Written != 1 {
					b.Fatalf("one-site change: %v, %d written", err, res.Written)
				}
			}
		})
	}
}

// BenchmarkPull measures the pull step alone on an up-to-date checkout:
// the fixed cost every pass pays before it looks at the host.
func BenchmarkPull(b *testing.B) {
	for _, n := range profileSizes {
		b.Run(fmt.Sprintf("sites=%d", n), func(b *testing.B) {
			h, _ := newBareHost(b, n)
			src := reconciler.SourceFor(h.cfg)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := src.Checkout(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
