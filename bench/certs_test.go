package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/reconciler"
)

// certResult is the certificate pass against bare certbot runs.
type certResult struct {
	// K is the number of certificates.
	K int
	// Pass is a sitesync pass that issues K certificates (and writes,
	// tests and reloads the K TLS sites); Bare is K bare certbot runs.
	Pass, Bare durs
	// InIssuer is the part of each Pass spent in certbot.Certbot.Issue.
	InIssuer durs
	// SecondPassCertbot counts certbot runs of the pass after it: 0.
	SecondPassCertbot int
}

// tlsSites returns a sites.yaml with k TLS sites.
func tlsSites(k int) string {
	var b strings.Builder
	b.WriteString("version: 1\nsites:\n")
	for i := range k {
		fmt.Fprintf(&b, "  - name: tls%02d\n    serverNames: [tls%02d.test]\n    tls: letsencrypt\n    locations: [{path: /, return: \"200\"}]\n", i, i)
	}
	return b.String()
}

// measureCerts times a pass that issues o.certs certificates from pebble
// against the same number of bare certbot runs, alternating which runs
// first.
func measureCerts(t *testing.T, o options) certResult {
	pebble := testenv.StartPebble(t)
	ngx := testenv.StartNginx(t)
	repo := testenv.NewGitRepo(t, map[string]string{"sites.yaml": tlsSites(o.certs)})
	res := certResult{K: o.certs}
	sent := 0 // reloads of ngx, carried from host to host

	// Warm-up: certbot's interpreter and modules, pebble's first account.
	testenv.NewCertbot(t, pebble).Issue(t, "warmup", "warmup.test")

	bare := func() {
		cb := testenv.NewCertbot(t, pebble)
		res.Bare = append(res.Bare, timed(func() {
			for i := range o.certs {
				name := fmt.Sprintf("tls%02d", i)
				cb.Issue(t, name, name+".test")
			}
		}))
	}
	pass := func() {
		h := &host{t: t, nginx: ngx, repo: repo, cfg: testenv.HostConfig(t, ngx, repo), sent: sent}
		defer func() { sent = h.sent }()
		h.reset()
		cb := testenv.NewCertbot(t, pebble)
		c := h.cfg
		c.Certbot.Command = cb.Command
		c.Certbot.ConfigDir, c.Certbot.WorkDir, c.Certbot.LogsDir = cb.ConfigDir, cb.WorkDir, cb.LogsDir
		c.Certbot.Server, c.Certbot.Env, c.Certbot.Webroot = cb.Server, cb.Env, cb.Webroot
		h.issuer = &countingIssuer{inner: &certbot.Certbot{
			Command: c.Certbot.Command, ConfigDir: c.Certbot.ConfigDir, WorkDir: c.Certbot.WorkDir,
			LogsDir: c.Certbot.LogsDir, Server: c.Certbot.Server, Webroot: c.Certbot.Webroot,
			Env: c.Certbot.Env, Timeout: 5 * time.Minute,
		}}
		r := h.reconciler()
		pr, d := h.pass(r)
		if pr.Issued != o.certs || pr.IssueFailed != 0 || !pr.Reloaded || h.issuer.runs.Load() != int64(o.certs) {
			t.Fatalf("certificate pass: issued=%d failed=%d certbot runs=%d reloaded=%t, want %d issued and a reload",
				pr.Issued, pr.IssueFailed, h.issuer.runs.Load(), pr.Reloaded, o.certs)
		}
		res.Pass = append(res.Pass, d)
		res.InIssuer = append(res.InIssuer, time.Duration(h.issuer.nanos.Load()))
		h.settle()
		// The sites are served over HTTPS... and port 80 redirects there.
		waitServed(t, ngx, "tls00.test", 301, fmt.Sprintf("https://tls00.test:%d/", ngx.HTTPSPort), 10*time.Millisecond, 30*time.Second)
		// The next pass runs no certbot.
		runs := h.issuer.runs.Load()
		if pr, _ := h.pass(r); pr.Issued != 0 || !pr.Plan.Empty() || pr.Reloaded {
			t.Fatalf("pass after issuance: issued=%d reloaded=%t plan=%v", pr.Issued, pr.Reloaded, pr.Plan)
		}
		res.SecondPassCertbot += int(h.issuer.runs.Load() - runs)
	}
	for rep := range o.reps {
		t.Logf("certificates rep %d/%d", rep+1, o.reps)
		if rep%2 == 0 {
			bare()
			pass()
		} else {
			pass()
			bare()
		}
	}
	if res.SecondPassCertbot != 0 {
		t.Fatalf("passes after issuance ran certbot %d times", res.SecondPassCertbot)
	}
	return res
}

// Compile-time check that countingIssuer is an Issuer.
var _ reconciler.Issuer = (*countingIssuer)(nil)
