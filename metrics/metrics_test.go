package metrics

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/loop"
	"github.com/sitesync/sitesync/reconciler"
	"github.com/sitesync/sitesync/state"
	"github.com/sitesync/sitesync/webhook"
)

func passResult() *reconciler.Result {
	now := time.Now()
	return &reconciler.Result{
		ID: "p1", Revision: "abc", Started: now, Finished: now.Add(time.Second),
		Sites:        []state.Site{{Name: "app", TLS: state.TLSLetsEncrypt}, {Name: "docs", TLS: state.TLSNone}},
		Certificates: map[string]certbot.Cert{"app": {NotAfter: now.Add(90 * 24 * time.Hour)}},
		Drift:        []reconciler.Drift{{Site: "docs", Kind: reconciler.DriftConfigChanged}, {Site: "gone", Kind: reconciler.DriftConfigOrphaned}},
		Written:      1, Deleted: 1, Issued: 1, Reloaded: true, Tested: true, Unmanaged: []string{"conf.d/x.conf"},
	}
}

func TestObservePass(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	// Absent is not zero: labelled series exist before anything happened.
	if got := testutil.ToFloat64(m.reconcileTotal.WithLabelValues(ResultError)); got != 0 {
		t.Fatal(got)
	}
	if n := testutil.CollectAndCount(m.triggers); n != len(loop.Sources) {
		t.Fatalf("trigger series = %d", n)
	}

	m.ObservePass(loop.Pass{Result: passResult()})
	check := func(c prometheus.Collector, want float64) {
		t.Helper()
		if got := testutil.ToFloat64(c); got != want {
			t.Errorf("%v = %v, want %v", c, got, want)
		}
	}
	check(m.reconcileTotal.WithLabelValues(ResultSuccess), 1)
	check(m.drift.WithLabelValues("docs", "config_changed"), 1)
	check(m.drift.WithLabelValues("app", "config_changed"), 0)
	check(m.driftTotal.WithLabelValues("config_changed"), 1)
	check(m.driftTotal.WithLabelValues("config_orphaned"), 1)
	check(m.siteReady.WithLabelValues("app"), 1)
	check(m.issuance.WithLabelValues("success"), 1)
	check(m.reloads.WithLabelValues("success"), 1)
	check(m.configValid, 1)
	check(m.appliedRevision.WithLabelValues("abc"), 1)
	check(m.unmanaged, 1)

	// A site removed from the repository disappears from the metrics; a
	// failed reload is counted.
	res := passResult()
	res.Sites, res.Revision, res.Reloaded, res.Drift = res.Sites[:1], "def", false, nil
	// Only an error wrapping ErrReload counts as a failed reload, not one
	// that merely says so.
	m.ObservePass(loop.Pass{Result: res, Err: errors.New("x: " + reconciler.ErrReload.Error())})
	m.ObservePass(loop.Pass{Result: res, Err: errorsJoin(reconciler.ErrReload)})
	if n := testutil.CollectAndCount(m.siteReady); n != 1 {
		t.Errorf("site_ready series = %d, want 1", n)
	}
	check(m.reloads.WithLabelValues("failure"), 1)
	check(m.reconcileTotal.WithLabelValues(ResultError), 2)
	check(m.desiredRevision.WithLabelValues("def"), 1)
	check(m.appliedRevision.WithLabelValues("abc"), 1)
	m.ObserveWebhook("push", webhook.ResultBadSignature)
	check(m.webhook.WithLabelValues("push", "bad_signature"), 1)
}

func errorsJoin(err error) error { return errors.Join(err) }

// TestPromtoolCheckMetrics runs promtool's linter over the exposition.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool")
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.ObservePass(loop.Pass{Result: passResult()})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	text := buf.String()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	if !strings.Contains(text, "sitesync_drift{kind=\"config_changed\",site=\"docs\"} 1") {
		t.Errorf("exposition lacks the drift series:\n%s", text)
	}
}
