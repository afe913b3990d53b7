// Tests of the production install kit in examples/: the Prometheus rules,
// the sudo rules, the ACL script, the systemd units, the nginx server block
// and the production configuration. Every external tool is required: a
// missing one fails the test (run scripts/test.sh, which installs them).
package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.yaml.in/yaml/v3"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/loop"
	"github.com/sitesync/sitesync/webhook"
)

// run runs argv (no shell) with a timeout and returns its combined output.
func run(t *testing.T, dir string, env []string, argv ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustRun(t *testing.T, dir string, env []string, argv ...string) string {
	t.Helper()
	out, err := run(t, dir, env, argv...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadProduction loads examples/production.toml with the real loader and
// no environment overrides.
func loadProduction(t *testing.T, env ...string) *config.Config {
	t.Helper()
	cfg, err := config.Load("production.toml", env)
	if err != nil {
		t.Fatalf("examples/production.toml does not load: %v", err)
	}
	return cfg
}

// --- Prometheus -------------------------------------------------------------

func TestPromtool(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool")
	out := mustRun(t, ".", nil, promtool, "check", "config", "prometheus/prometheus.yml")
	// The rule file must have been found and checked, not skipped.
	if !strings.Contains(out, "SUCCESS: 1 rule files found") {
		t.Errorf("promtool check config did not check the rule file:\n%s", out)
	}
	mustRun(t, ".", nil, promtool, "check", "rules", "prometheus/alerts.yml")
	out = mustRun(t, ".", nil, promtool, "test", "rules", "prometheus/alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	if err := yaml.Unmarshal([]byte(readFile(t, "prometheus/alerts.yml")), &rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

// TestAlertsComplete checks that the alerts the kit promises exist, are
// labelled and annotated, and that alerts_test.yml has a case where each
// one fires and one where it does not.
func TestAlertsComplete(t *testing.T) {
	rf := loadRules(t)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
		}
	}
	for _, want := range []string{
		"SitesyncDriftPersisting", "SitesyncCertificateExpiringSoon", "SitesyncReloadFailing",
		"SitesyncConfigInvalid", "SitesyncNoSuccessfulPass", "SitesyncMetricsAbsent",
		"SitesyncWebhookSignatureFailures", "SitesyncSiteNotReady", "SitesyncOutboxBacklog",
		"SitesyncBrokerDisconnected",
	} {
		if !alerts[want] {
			t.Errorf("alerts.yml lacks %s", want)
		}
	}

	var tf struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "prometheus/alerts_test.yml")), &tf); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tf.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("alerts_test.yml tests %v, want [alerts.yml]", tf.RuleFiles)
	}
	fires, silent := map[string]int{}, map[string]int{}
	for _, tc := range tf.Tests {
		for _, at := range tc.AlertRuleTest {
			if !alerts[at.Alertname] {
				t.Errorf("alerts_test.yml tests unknown alert %q", at.Alertname)
			}
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname]++
			} else {
				silent[at.Alertname]++
			}
		}
	}
	for a := range alerts {
		if fires[a] == 0 {
			t.Errorf("alerts_test.yml has no case in which %s fires", a)
		}
		if silent[a] == 0 {
			t.Errorf("alerts_test.yml has no case in which %s stays silent", a)
		}
	}
}

var (
	metricNamePattern = regexp.MustCompile(`\bsitesync_[a-z0-9_]+`)
	metricsGoName     = regexp.MustCompile(`Name:\s*"([a-z0-9_]+)"`)
)

// TestAlertMetricsExist fails when alerts.yml uses a metric the metrics
// package does not define, so renaming a metric breaks the build of the
// alerts instead of silently disabling them.
func TestAlertMetricsExist(t *testing.T) {
	src := readFile(t, "../metrics/metrics.go")
	if !strings.Contains(src, `const ns = "sitesync"`) {
		t.Fatal(`metrics/metrics.go no longer declares const ns = "sitesync"; update this test`)
	}
	defined := map[string]bool{}
	for _, m := range metricsGoName.FindAllStringSubmatch(src, -1) {
		defined["sitesync_"+m[1]] = true
	}
	if len(defined) < 10 {
		t.Fatalf("found only %d metric names in metrics/metrics.go: %v", len(defined), defined)
	}
	exists := func(name string) bool {
		if defined[name] {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && defined[base] {
				return true
			}
		}
		return false
	}

	rf := loadRules(t)
	used := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			texts := []string{r.Expr}
			for _, a := range r.Annotations {
				texts = append(texts, a)
			}
			for _, text := range texts {
				for _, name := range metricNamePattern.FindAllString(text, -1) {
					used[name] = true
					if !exists(name) {
						t.Errorf("%s uses %s, which metrics/metrics.go does not define", r.Alert, name)
					}
				}
			}
		}
	}
	if len(used) < 9 {
		t.Errorf("alerts.yml uses only %d sitesync metrics: %v", len(used), used)
	}

	// Label values the rules select on.
	if loop.SourceStartup != "startup" {
		t.Errorf(`alerts.yml selects source="startup", but loop.SourceStartup is %q`, loop.SourceStartup)
	}
	if webhook.ResultBadSignature != "bad_signature" || webhook.ResultMissingSignature != "missing_signature" {
		t.Errorf("alerts.yml selects result=~\"bad_signature|missing_signature\", but the results are %q and %q",
			webhook.ResultBadSignature, webhook.ResultMissingSignature)
	}
	if !strings.Contains(src, `"success", "failure"`) {
		t.Error(`alerts.yml selects sitesync_nginx_reload_total{result="failure"}; metrics.go no longer initialises "success", "failure"`)
	}

	// SitesyncNoSuccessfulPass falls back to the process collector's start
	// time, which the service registers next to sitesync's metrics.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "process_start_time_seconds"
	}
	if !found {
		t.Error("the process collector does not export process_start_time_seconds, which alerts.yml uses")
	}
}

// --- sudo ---------------------------------------------------------------------

func TestSudoersSyntax(t *testing.T) {
	visudo := testenv.RequireTool(t, "visudo")
	out := mustRun(t, ".", nil, visudo, "-c", "-f", "sudoers.d/sitesync")
	if !strings.Contains(out, "parsed OK") {
		t.Errorf("visudo -c:\n%s", out)
	}
}

type cmnd struct{ path, args string }

// parseSudoers returns the Cmnd_Alias definitions and the user
// specification of sudoers.d/sitesync.
func parseSudoers(t *testing.T) (map[string]cmnd, string) {
	t.Helper()
	aliases := map[string]cmnd{}
	var spec string
	for _, line := range strings.Split(readFile(t, "sudoers.d/sitesync"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "Cmnd_Alias "):
			name, def, ok := strings.Cut(strings.TrimPrefix(line, "Cmnd_Alias "), " = ")
			if !ok {
				t.Fatalf("cannot parse %q", line)
			}
			path, args, _ := strings.Cut(def, " ")
			aliases[name] = cmnd{path, args}
		case strings.HasPrefix(line, "sitesync "):
			if spec != "" {
				t.Fatalf("more than one rule for sitesync: %q and %q", spec, line)
			}
			spec = line
		case strings.HasPrefix(line, "Defaults"):
		default:
			t.Fatalf("unexpected line in sudoers.d/sitesync: %q", line)
		}
	}
	return aliases, spec
}

// TestSudoersMatchProductionConfig checks the sudo rules against the
// commands sitesync runs with examples/production.toml: each one must be
// allowed, and nothing but them.
func TestSudoersMatchProductionConfig(t *testing.T) {
	aliases, spec := parseSudoers(t)
	if want := "sitesync ALL = (root) NOPASSWD: SITESYNC_NGINX_TEST, SITESYNC_NGINX_RELOAD, SITESYNC_CERTBOT"; spec != want {
		t.Fatalf("user specification\n  %s\nwant\n  %s", spec, want)
	}
	cfg := loadProduction(t)

	sudoArgv := func(name string, argv []string) []string {
		t.Helper()
		if len(argv) < 2 || argv[0] != "sudo" || !filepath.IsAbs(argv[1]) {
			t.Fatalf("%s = %q: want [\"sudo\", \"/absolute/path\", ...]", name, argv)
		}
		return argv[1:]
	}
	for _, c := range []struct {
		alias string
		argv  []string
	}{
		{"SITESYNC_NGINX_TEST", sudoArgv("nginx.test_command", cfg.Nginx.TestCommand)},
		{"SITESYNC_NGINX_RELOAD", sudoArgv("nginx.reload_command", cfg.Nginx.ReloadCommand)},
	} {
		a := aliases[c.alias]
		if got := a.path + " " + a.args; got != strings.Join(c.argv, " ") {
			t.Errorf("%s allows %q, production.toml runs %q", c.alias, got, strings.Join(c.argv, " "))
		}
	}

	cb := aliases["SITESYNC_CERTBOT"]
	if !strings.HasPrefix(cb.args, "^") || !strings.HasSuffix(cb.args, "$") {
		t.Fatalf("SITESYNC_CERTBOT arguments are not a regular expression: %q", cb.args)
	}
	if len(cb.args) > 1024 {
		t.Errorf("the certbot regular expression is %d characters; sudoers allows 1024", len(cb.args))
	}
	re, err := regexp.CompilePOSIX(cb.args)
	if err != nil {
		t.Fatal(err)
	}
	c := certbot.Certbot{
		Command: cfg.Certbot.Command, ConfigDir: cfg.Certbot.ConfigDir, WorkDir: cfg.Certbot.WorkDir,
		LogsDir: cfg.Certbot.LogsDir, Server: cfg.Certbot.Server, Email: cfg.Certbot.Email, Webroot: cfg.Certbot.Webroot,
	}
	matches := func(argv []string) bool {
		t.Helper()
		argv = sudoArgv("certbot.command", argv)
		// sudo matches the arguments joined by single spaces.
		return argv[0] == cb.path && re.MatchString(strings.Join(argv[1:], " "))
	}
	for _, req := range []certbot.Request{
		{Name: "app", Domains: []string{"app.example.org"}},
		{Name: "app", Domains: []string{"app.example.org", "www.app.example.org", "x-1.example.org"}, Force: true},
		{Name: "a.b-c", Domains: []string{"a.b-c.example.org"}},
		{Name: "9", Domains: []string{"localhost"}},
	} {
		if argv := c.Args(req); !matches(argv) {
			t.Errorf("the sudo rule refuses what sitesync runs:\n  %s", strings.Join(argv, " "))
		}
	}
	for _, variant := range []func(*certbot.Certbot){
		func(c *certbot.Certbot) { c.Email = "" },
		func(c *certbot.Certbot) { c.Server = "https://acme-staging-v02.api.letsencrypt.org/directory" },
		func(c *certbot.Certbot) { c.Email = "first.last+certs@mail.example.org" },
	} {
		v := c
		variant(&v)
		if argv := v.Args(certbot.Request{Name: "app", Domains: []string{"app.example.org"}}); !matches(argv) {
			t.Errorf("the sudo rule refuses a documented variant:\n  %s", strings.Join(argv, " "))
		}
	}

	// What must never match: other options, other paths, names that are
	// options.
	good := c.Args(certbot.Request{Name: "app", Domains: []string{"app.example.org"}})
	line := strings.Join(good, " ")
	for _, bad := range []string{
		strings.Replace(line, " --keep-until-expiring", " --keep-until-expiring --deploy-hook /bin/sh", 1),
		line + " --deploy-hook x",
		line + " --pre-hook x",
		strings.Replace(line, "--cert-name app", "--cert-name app --post-hook x", 1),
		strings.Replace(line, "-d app.example.org", "-d --deploy-hook", 1),
		strings.Replace(line, "-d app.example.org", "-d -app.example.org", 1),
		strings.Replace(line, "-d app.example.org", "-d app.example.org/x", 1),
		strings.Replace(line, "-d app.example.org", "-d APP.example.org", 1),
		strings.Replace(line, "--cert-name app", "--cert-name ../app", 1),
		strings.Replace(line, "--cert-name app -d app.example.org", "--cert-name app", 1),
		strings.Replace(line, "--config-dir /etc/letsencrypt", "--config-dir /tmp/le", 1),
		strings.Replace(line, "--work-dir /var/lib/letsencrypt", "--work-dir /tmp", 1),
		strings.Replace(line, "-w /var/lib/sitesync/acme", "-w /etc", 1),
		strings.Replace(line, " --keep-until-expiring", " --keep-until-expiring --server https://evil.example/dir", 1),
		strings.Replace(line, " --keep-until-expiring", " --keep-until-expiring --cert-path /etc/shadow", 1),
		strings.Replace(line, "certonly", "renew", 1),
		strings.Replace(line, "certonly --non-interactive", "certonly --manual --non-interactive", 1),
	} {
		if bad == line {
			t.Fatalf("test case did not change the command line: %s", bad)
		}
		if matches(strings.Fields(bad)) {
			t.Errorf("the sudo rule allows\n  %s", bad)
		}
	}
}

// --- acl.sh -------------------------------------------------------------------

// aclEnv is a minimal environment pointing every directory of acl.sh into
// root.
func aclEnv(root, usr, group, nginxUser string) []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C",
		"ACL_USER=" + usr,
		"ACL_GROUP=" + group,
		"ACL_NGINX_USER=" + nginxUser,
		"ACL_ETC_DIR=" + filepath.Join(root, "etc/sitesync"),
		"ACL_STATE_DIR=" + filepath.Join(root, "var/lib/sitesync"),
		"ACL_WEBROOT=" + filepath.Join(root, "var/lib/sitesync/acme"),
		"ACL_CONF_DIR=" + filepath.Join(root, "etc/nginx/conf.d"),
		"ACL_SNIPPETS_DIR=" + filepath.Join(root, "etc/nginx/snippets"),
		"ACL_LETSENCRYPT_DIR=" + filepath.Join(root, "etc/letsencrypt"),
		"ACL_LETSENCRYPT_WORK_DIR=" + filepath.Join(root, "var/lib/letsencrypt"),
		"ACL_LETSENCRYPT_LOGS_DIR=" + filepath.Join(root, "var/log/letsencrypt"),
	}
}

func TestACLScriptSyntax(t *testing.T) {
	bash := testenv.RequireTool(t, "bash")
	mustRun(t, ".", nil, bash, "-n", "acl.sh")
}

// TestACLScriptDryRun checks the commands --dry-run prints for an empty
// tree and a user that does not exist, and that it changes nothing.
func TestACLScriptDryRun(t *testing.T) {
	bash := testenv.RequireTool(t, "bash")
	testenv.RequireTool(t, "setfacl")
	testenv.RequireTool(t, "getfacl")
	root := t.TempDir()
	const usr = "sitesync-examples-test-nouser"
	if _, err := user.Lookup(usr); err == nil {
		t.Fatalf("user %s exists; this test needs a user name that does not", usr)
	}
	env := aclEnv(root, usr, usr, "www-data")
	out, err := run(t, ".", env, bash, "acl.sh", "--dry-run")
	if err != nil {
		t.Fatalf("acl.sh --dry-run: %v\n%s", err, out)
	}
	r := func(s string) string { return strings.ReplaceAll(s, "R/", root+"/") }
	want := []string{
		"groupadd --system " + usr,
		r("useradd --system --gid " + usr + " --home-dir R/var/lib/sitesync --no-create-home --shell /usr/sbin/nologin --comment sitesync " + usr),
		r("install -d -m 0750 -o root -g " + usr + " R/etc/sitesync"),
		r("install -d -m 0750 -o " + usr + " -g " + usr + " R/var/lib/sitesync"),
		r("setfacl -m u:www-data:--x R/var/lib/sitesync"),
		r("install -d -m 0750 -o " + usr + " -g " + usr + " R/var/lib/sitesync/acme"),
		r("setfacl -m u:www-data:r-x R/var/lib/sitesync/acme"),
		r("setfacl -d -m u::rwx,g::r-x,o::---,u:www-data:r-x,m::r-x R/var/lib/sitesync/acme"),
		r("install -d -m 0755 -o root -g root R/etc/nginx/conf.d"),
		r("setfacl -m u:" + usr + ":rwx R/etc/nginx/conf.d"),
		r("setfacl -d -m u::rwx,g::r-x,o::r-x,u:" + usr + ":rwx,m::rwx R/etc/nginx/conf.d"),
		r("install -d -m 0755 -o root -g root R/etc/nginx/snippets"),
		r("setfacl -m u:" + usr + ":rwx R/etc/nginx/snippets"),
		r("setfacl -d -m u::rwx,g::r-x,o::r-x,u:" + usr + ":rwx,m::rwx R/etc/nginx/snippets"),
		r("install -d -m 0755 -o root -g root R/etc/letsencrypt"),
		r("install -d -m 0755 -o root -g root R/var/lib/letsencrypt"),
		r("install -d -m 0700 -o root -g root R/var/log/letsencrypt"),
		r("install -d -m 0700 -o root -g root R/etc/letsencrypt/live"),
		r("install -d -m 0700 -o root -g root R/etc/letsencrypt/archive"),
		r("setfacl -m u:" + usr + ":r-x R/etc/letsencrypt/live"),
		r("setfacl -d -m u::rwx,g::r-x,o::r-x,u:" + usr + ":r-x,m::r-x R/etc/letsencrypt/live"),
		r("setfacl -m u:" + usr + ":r-x R/etc/letsencrypt/archive"),
		r("setfacl -d -m u::rwx,g::r-x,o::r-x,u:" + usr + ":r-x,m::r-x R/etc/letsencrypt/archive"),
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "acl.sh: ") { // log lines go to stderr
			got = append(got, line)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("acl.sh --dry-run printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if entries, err := os.ReadDir(root); err != nil || len(entries) != 0 {
		t.Errorf("the dry run changed the tree: %v %v", entries, err)
	}

	// Unknown arguments are refused.
	if out, err := run(t, ".", env, bash, "acl.sh", "--dryrun"); err == nil {
		t.Errorf("acl.sh --dryrun succeeded:\n%s", out)
	}
}

// TestACLScriptRealRun runs acl.sh for real on a tree inside t.TempDir(),
// with existing users standing in for sitesync and www-data, twice, and
// checks the ACLs it leaves, that the second run changes nothing, and the
// claims its header makes about certificates and private keys.
func TestACLScriptRealRun(t *testing.T) {
	bash := testenv.RequireTool(t, "bash")
	testenv.RequireTool(t, "setfacl")
	getfacl := testenv.RequireTool(t, "getfacl")
	if os.Geteuid() != 0 {
		t.Fatal("this test runs acl.sh for real (inside t.TempDir()) and needs root, as scripts/test.sh has")
	}
	usr, group := "nobody", "nogroup"
	if _, err := user.LookupGroup(group); err != nil {
		t.Fatalf("group %s: %v", group, err)
	}
	nginxUser := ""
	for _, u := range []string{"www-data", "daemon", "bin"} {
		if _, err := user.Lookup(u); err == nil {
			nginxUser = u
			break
		}
	}
	if nginxUser == "" {
		t.Fatal("none of www-data, daemon, bin exists to stand in for nginx's user")
	}
	root := t.TempDir()
	env := aclEnv(root, usr, group, nginxUser)

	// A certbot tree as certbot leaves it: one lineage, keys 0600.
	le := filepath.Join(root, "etc/letsencrypt")
	write := func(path string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"cert", "chain", "fullchain"} {
		write(filepath.Join(le, "archive/app", k+"1.pem"), 0o644)
	}
	write(filepath.Join(le, "archive/app/privkey1.pem"), 0o600)
	if err := os.MkdirAll(filepath.Join(le, "live/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cert", "chain", "fullchain", "privkey"} {
		if err := os.Symlink("../../archive/app/"+k+"1.pem", filepath.Join(le, "live/app", k+".pem")); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"live", "archive"} {
		if err := os.Chmod(filepath.Join(le, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	// Safety first: the dry run must name nothing outside the tree and
	// create no user.
	out, err := run(t, ".", env, bash, "acl.sh", "--dry-run")
	if err != nil {
		t.Fatalf("acl.sh --dry-run: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "useradd") || strings.HasPrefix(line, "groupadd") {
			t.Fatalf("acl.sh would create a user; not running it:\n%s", out)
		}
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") && !strings.HasPrefix(f, root+"/") && f != "/usr/sbin/nologin" {
				t.Fatalf("acl.sh would touch %s outside %s; not running it:\n%s", f, root, out)
			}
		}
	}

	snapshot := func() string {
		t.Helper()
		return mustRun(t, root, env, getfacl, "-R", "-p", ".")
	}
	out1 := mustRun(t, ".", env, bash, "acl.sh")
	first := snapshot()
	out2 := mustRun(t, ".", env, bash, "acl.sh")
	if second := snapshot(); second != first {
		t.Errorf("the second run changed ACLs, owners or modes:\nafter the first run:\n%s\nafter the second:\n%s", first, second)
	}
	if strings.Contains(out1+out2, "warning") {
		t.Errorf("unexpected warning:\n%s%s", out1, out2)
	}

	// effective returns the effective permissions of the named user entry
	// of path ("" without one).
	effective := func(path, who string) string {
		t.Helper()
		acl := mustRun(t, root, env, getfacl, "--absolute-names", "--omit-header", path)
		for _, line := range strings.Split(acl, "\n") {
			entry, eff, hasEff := strings.Cut(line, "#effective:")
			entry = strings.TrimSpace(entry)
			if perm, ok := strings.CutPrefix(entry, "user:"+who+":"); ok {
				if hasEff {
					return strings.TrimSpace(eff)
				}
				return perm
			}
		}
		return ""
	}
	defaultEntry := func(path, entry string) bool {
		acl := mustRun(t, root, env, getfacl, "--absolute-names", "--omit-header", path)
		return slices.Contains(strings.Split(acl, "\n"), entry)
	}
	p := func(rel string) string { return filepath.Join(root, rel) }
	for _, c := range []struct{ path, who, want string }{
		{p("etc/nginx/conf.d"), usr, "rwx"},
		{p("etc/nginx/snippets"), usr, "rwx"},
		{p("var/lib/sitesync"), nginxUser, "--x"},
		{p("var/lib/sitesync/acme"), nginxUser, "r-x"},
		{p("etc/letsencrypt/live"), usr, "r-x"},
		{p("etc/letsencrypt/archive/app"), usr, "r-x"},
		{p("etc/letsencrypt/archive/app/cert1.pem"), usr, "r--"},
		{p("etc/letsencrypt/archive/app/fullchain1.pem"), usr, "r--"},
		{p("etc/letsencrypt/archive/app/privkey1.pem"), usr, ""},
	} {
		if got := effective(c.path, c.who); got != c.want {
			t.Errorf("%s: effective permissions of %s = %q, want %q", c.path, c.who, got, c.want)
		}
	}
	for _, c := range []struct{ path, entry string }{
		{p("etc/nginx/conf.d"), "default:user:" + usr + ":rwx"},
		{p("etc/nginx/conf.d"), "default:other::r-x"},
		{p("var/lib/sitesync/acme"), "default:user:" + nginxUser + ":r-x"},
		{p("etc/letsencrypt/archive"), "default:user:" + usr + ":r-x"},
	} {
		if !defaultEntry(c.path, c.entry) {
			t.Errorf("%s lacks the default ACL entry %s", c.path, c.entry)
		}
	}
	for path, want := range map[string]os.FileMode{
		p("etc/sitesync"): 0o750, p("var/lib/sitesync"): 0o750, p("var/log/letsencrypt"): 0o700,
	} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o707 != want&0o707 {
			t.Errorf("%s: %v %v, want mode %o", path, fi.Mode(), err, want)
		}
	}

	// What certbot does later: a renewal writes cert2.pem with its default
	// mode and privkey2.pem with 0600, a new lineage gets new directories.
	// The default ACLs make the certificates readable and leave the keys
	// unreadable, as the header of acl.sh says.
	write(p("etc/letsencrypt/archive/app/cert2.pem"), 0o644)
	write(p("etc/letsencrypt/archive/app/privkey2.pem"), 0o600)
	if err := os.Mkdir(p("etc/letsencrypt/archive/new"), 0o777); err != nil {
		t.Fatal(err)
	}
	write(p("etc/letsencrypt/archive/new/cert1.pem"), 0o644)
	write(p("etc/letsencrypt/archive/new/privkey1.pem"), 0o600)
	// ... and a file sitesync writes into conf.d (0644) stays readable by all.
	write(p("etc/nginx/conf.d/app.conf"), 0o644)
	for _, c := range []struct{ path, who, want string }{
		{p("etc/letsencrypt/archive/app/cert2.pem"), usr, "r--"},
		{p("etc/letsencrypt/archive/app/privkey2.pem"), usr, "---"},
		{p("etc/letsencrypt/archive/new"), usr, "r-x"},
		{p("etc/letsencrypt/archive/new/cert1.pem"), usr, "r--"},
		{p("etc/letsencrypt/archive/new/privkey1.pem"), usr, "---"},
	} {
		if got := effective(c.path, c.who); got != c.want {
			t.Errorf("after a renewal: %s: effective permissions of %s = %q, want %q", c.path, c.who, got, c.want)
		}
	}
	if fi, err := os.Stat(p("etc/nginx/conf.d/app.conf")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("a file created 0644 in conf.d: %v %v, want -rw-r--r--", fi.Mode(), err)
	}

	// A group-readable key (ssl-cert setups) is readable for sitesync
	// through the inherited entry: acl.sh must warn about it.
	if err := os.Chmod(p("etc/letsencrypt/archive/app/privkey2.pem"), 0o640); err != nil {
		t.Fatal(err)
	}
	out3 := mustRun(t, ".", env, bash, "acl.sh")
	if !strings.Contains(out3, "warning: "+usr+" can read the private key "+p("etc/letsencrypt/archive/app/privkey2.pem")) {
		t.Errorf("no warning about the readable key:\n%s", out3)
	}
	if strings.Contains(out3, "privkey1.pem") {
		t.Errorf("warning about an unreadable key:\n%s", out3)
	}
}

// --- systemd ------------------------------------------------------------------

// unit is a parsed systemd unit file: section -> key -> values in order
// (a key may repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] != nil {
				t.Fatalf("%s:%d: section [%s] repeated", path, n, section)
			}
			u[section] = map[string][]string{}
		case strings.HasSuffix(line, "\\"):
			t.Fatalf("%s:%d: continuation lines are not supported by this test", path, n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not KEY=VALUE in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// get returns the last value of key (systemd's rule for single-valued
// keys), or "".
func (u unit) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// words returns every space-separated word of every value of a list key.
func (u unit) words(section, key string) []string {
	var ws []string
	for _, v := range u[section][key] {
		ws = append(ws, strings.Fields(v)...)
	}
	return ws
}

// impliesNoNewPrivileges are the settings that make systemd set
// NoNewPrivileges=yes for a service with User= (systemd.exec(5)), which
// would break sudo.
var impliesNoNewPrivileges = []string{
	"DynamicUser", "LockPersonality", "MemoryDenyWriteExecute", "PrivateDevices", "ProtectClock",
	"ProtectHostname", "ProtectKernelLogs", "ProtectKernelModules", "ProtectKernelTunables",
	"RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID",
	"SystemCallArchitectures", "SystemCallFilter", "SystemCallLog",
}

func TestSystemdUnitsStructure(t *testing.T) {
	cfg := loadProduction(t)
	for _, c := range []struct {
		file, command string
		sudo          bool
	}{
		{"sitesync.service", "run", true},
		{"sitesync-reconcile.service", "reconcile", true},
		{"sitesync-webhook.service", "webhook", false},
	} {
		t.Run(c.file, func(t *testing.T) {
			u := parseUnit(t, filepath.Join("systemd", c.file))
			for _, s := range []string{"Unit", "Service", "Install"} {
				if u[s] == nil {
					t.Fatalf("no [%s] section", s)
				}
			}
			for k, want := range map[string]string{"User": "sitesync", "Group": "sitesync", "Restart": "on-failure",
				"StateDirectory": "sitesync", "PrivateTmp": "true", "ProtectHome": "true", "KillSignal": "SIGTERM",
				"ProtectSystem": "strict"} {
				if got := u.get("Service", k); got != want {
					t.Errorf("%s=%q, want %q", k, got, want)
				}
			}
			if want := "/usr/local/bin/sitesync " + c.command + " --config /etc/sitesync/sitesync.toml --log-format json"; u.get("Service", "ExecStart") != want {
				t.Errorf("ExecStart=%q, want %q", u.get("Service", "ExecStart"), want)
			}
			if u.get("Service", "RestartSec") == "" {
				t.Error("no RestartSec")
			}
			if got := u.get("Install", "WantedBy"); got != "multi-user.target" {
				t.Errorf("WantedBy=%q", got)
			}
			if !slices.Contains(u.words("Unit", "After"), "network-online.target") || !slices.Contains(u.words("Unit", "Wants"), "network-online.target") {
				t.Error("not After= and Wants= network-online.target")
			}
			if filepath.Join("/var/lib", u.get("Service", "StateDirectory")) != cfg.Reconcile.StateDir {
				t.Errorf("StateDirectory=%s, production.toml has state_dir %s", u.get("Service", "StateDirectory"), cfg.Reconcile.StateDir)
			}
			stop, err := time.ParseDuration(strings.ReplaceAll(u.get("Service", "TimeoutStopSec"), "min", "m"))
			if err != nil {
				t.Fatalf("TimeoutStopSec: %v", err)
			}
			rw := u.words("Service", "ReadWritePaths")
			if c.sudo {
				if got := u.get("Service", "NoNewPrivileges"); got != "false" {
					t.Errorf("NoNewPrivileges=%q: sudo needs false", got)
				}
				for _, k := range append(impliesNoNewPrivileges, "CapabilityBoundingSet") {
					if _, ok := u["Service"][k]; ok {
						t.Errorf("%s= is set: it implies NoNewPrivileges=yes (or drops capabilities) and breaks sudo", k)
					}
				}
				if u.get("Service", "KillMode") != "mixed" {
					t.Error("KillMode is not mixed: a stop would kill certbot in the middle of a pass")
				}
				if stop < cfg.Certbot.Timeout.Duration {
					t.Errorf("TimeoutStopSec=%v is shorter than one certbot run (%v)", stop, cfg.Certbot.Timeout.Duration)
				}
				if !slices.Contains(u.words("Unit", "After"), "nginx.service") {
					t.Error("not After=nginx.service")
				}
				for _, d := range []string{cfg.Nginx.ConfDir, cfg.Nginx.SnippetsDir, cfg.Reconcile.StateDir,
					"-" + cfg.Certbot.ConfigDir, "-" + cfg.Certbot.WorkDir, "-" + cfg.Certbot.LogsDir,
					"-/var/log/nginx", "-/var/lib/nginx"} {
					if !slices.Contains(rw, d) {
						t.Errorf("ReadWritePaths lacks %s", d)
					}
				}
				if env := u.get("Service", "Environment"); env != "" {
					t.Errorf("Environment=%s: the reconcile side keeps the configured metrics port", env)
				}
			} else {
				if got := u.get("Service", "NoNewPrivileges"); got != "true" {
					t.Errorf("NoNewPrivileges=%q, want true: the webhook half never needs privileges", got)
				}
				for _, d := range rw {
					if strings.Contains(d, "nginx") || strings.Contains(d, "letsencrypt") {
						t.Errorf("ReadWritePaths includes %s", d)
					}
				}
				env := u.get("Service", "Environment")
				name, listen, _ := strings.Cut(env, "=")
				if name != "SITESYNC_METRICS_LISTEN" || listen == cfg.Metrics.Listen {
					t.Errorf("Environment=%q: the webhook half needs its own metrics port", env)
				}
				// The override is a real configuration key.
				if got := loadProduction(t, env).Metrics.Listen; got != listen {
					t.Errorf("%s gives metrics.listen %q", env, got)
				}
			}
		})
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on copies of the
// units whose sitesync binary is replaced by a stub (verify checks that
// ExecStart= is executable). It works without a running systemd. verify
// reports unknown keys and bad values as warnings with exit status 0, so
// any output fails the test.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa := testenv.RequireTool(t, "systemd-analyze")
	dir := t.TempDir()
	stub := filepath.Join(dir, "sitesync")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	units, err := filepath.Glob("systemd/*.service")
	if err != nil || len(units) != 3 {
		t.Fatalf("units: %v %v", units, err)
	}
	args := []string{sa, "verify"}
	for _, u := range units {
		text := readFile(t, u)
		if !strings.Contains(text, "ExecStart=/usr/local/bin/sitesync ") {
			t.Fatalf("%s: ExecStart does not run /usr/local/bin/sitesync", u)
		}
		dst := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(dst, []byte(strings.ReplaceAll(text, "/usr/local/bin/sitesync", stub)), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, dst)
	}
	out, err := run(t, dir, nil, args...)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// --- nginx --------------------------------------------------------------------

// selfSigned writes a certificate and key for name into dir.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []int
}

func (s *seen) handler(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.body = append(s.body, int(n))
	s.mu.Unlock()
	fmt.Fprintf(w, "backend %s", r.URL.Path)
}

func (s *seen) last(t *testing.T) (*http.Request, int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("the backend saw no request")
	}
	return s.reqs[len(s.reqs)-1], s.body[len(s.body)-1]
}

// TestNginxWebhookConf loads examples/nginx/sitesync-webhook.conf into a
// private nginx, with its port, certificate and upstreams replaced, and
// sends real HTTPS requests through it.
func TestNginxWebhookConf(t *testing.T) {
	ngx := testenv.StartNginx(t)
	cfg := loadProduction(t)
	conf := readFile(t, "nginx/sitesync-webhook.conf")

	if cfg.Webhook.TrustedProxyHops != 1 {
		t.Errorf("production.toml: trusted_proxy_hops = %d, but nginx/sitesync-webhook.conf is one proxy", cfg.Webhook.TrustedProxyHops)
	}
	if !strings.Contains(conf, "proxy_pass http://"+cfg.Webhook.Listen+";") ||
		!strings.Contains(conf, "location = "+cfg.Webhook.Path+" {") ||
		!strings.Contains(conf, "proxy_pass http://"+cfg.Metrics.Listen+"/;") {
		t.Errorf("nginx/sitesync-webhook.conf does not proxy to the production.toml listeners %s%s and %s",
			cfg.Webhook.Listen, cfg.Webhook.Path, cfg.Metrics.Listen)
	}

	hook, status := &seen{}, &seen{}
	hookSrv, statusSrv := httptest.NewServer(http.HandlerFunc(hook.handler)), httptest.NewServer(http.HandlerFunc(status.handler))
	t.Cleanup(hookSrv.Close)
	t.Cleanup(statusSrv.Close)
	certFile, keyFile := selfSigned(t, t.TempDir(), "deploy.example.org")

	// install writes the configuration with replacements, each of which
	// must apply exactly once, then tests and reloads nginx.
	install := func(extra ...string) {
		t.Helper()
		repl := append([]string{
			"listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", ngx.HTTPSPort),
			"/etc/letsencrypt/live/_sitesync-webhook/fullchain.pem", certFile,
			"/etc/letsencrypt/live/_sitesync-webhook/privkey.pem", keyFile,
			"proxy_pass http://" + cfg.Webhook.Listen + ";", "proxy_pass " + hookSrv.URL + ";",
			"proxy_pass http://" + cfg.Metrics.Listen + "/;", "proxy_pass " + statusSrv.URL + "/;",
		}, extra...)
		text := conf
		for i := 0; i < len(repl); i += 2 {
			if n := strings.Count(text, repl[i]); n != 1 {
				t.Fatalf("nginx/sitesync-webhook.conf contains %q %d times, want once", repl[i], n)
			}
			text = strings.Replace(text, repl[i], repl[i+1], 1)
		}
		if err := os.WriteFile(filepath.Join(ngx.ConfDir, "sitesync-webhook.conf"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		mustRun(t, ngx.Prefix, nil, ngx.TestCommand...)
		before := ngx.ReloadCount(t)
		ngx.Reload(t)
		ngx.WaitReloads(t, before+1)
	}

	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: "deploy.example.org", InsecureSkipVerify: true},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", strconv.Itoa(ngx.HTTPSPort)))
			},
			// A fresh connection per request: after a reload, only new
			// workers have the new configuration.
			DisableKeepAlives: true,
			// Lets nginx refuse an oversized body before it is sent.
			ExpectContinueTimeout: 5 * time.Second,
		},
	}
	do := func(method, path string, body []byte, header map[string]string) (int, string) {
		t.Helper()
		var resp *http.Response
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, err := http.NewRequest(method, "https://deploy.example.org"+path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range header {
				req.Header.Set(k, v)
			}
			resp, err = client.Do(req)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	install()
	// A 2 MiB delivery: above nginx's default body limit of 1m. The client's
	// own X-Forwarded-For stays in front; nginx appends the real address,
	// which is what sitesync reads with trusted_proxy_hops = 1.
	payload := bytes.Repeat([]byte("x"), 2<<20)
	code, body := do(http.MethodPost, cfg.Webhook.Path, payload, map[string]string{
		"X-Forwarded-For": "203.0.113.9", "Content-Type": "application/json", "X-GitHub-Event": "push",
	})
	if code != http.StatusOK || body != "backend "+cfg.Webhook.Path {
		t.Fatalf("POST %s through nginx: %d %q", cfg.Webhook.Path, code, body)
	}
	req, n := hook.last(t)
	if n != len(payload) {
		t.Errorf("the backend received %d bytes, want %d", n, len(payload))
	}
	xff := strings.Split(req.Header.Get("X-Forwarded-For"), ",")
	if len(xff) != 2 || strings.TrimSpace(xff[0]) != "203.0.113.9" || strings.TrimSpace(xff[1]) != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the client's entry followed by the real address", req.Header.Get("X-Forwarded-For"))
	}
	if req.Header.Get("X-GitHub-Event") != "push" || req.Host != "deploy.example.org" {
		t.Errorf("headers not passed on: event %q, host %q", req.Header.Get("X-GitHub-Event"), req.Host)
	}
	if code, _ := do(http.MethodPost, cfg.Webhook.Path, bytes.Repeat([]byte("x"), 26<<20), map[string]string{"Expect": "100-continue"}); code != http.StatusRequestEntityTooLarge {
		t.Errorf("26 MiB body: status %d, want 413", code)
	}
	for _, path := range []string{"/", "/metrics", "/github-webhook/x", "/status.json"} {
		if code, _ := do(http.MethodGet, path, nil, nil); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	// 127.0.0.1 is not on the status page's allow list.
	if code, _ := do(http.MethodGet, "/sitesync/", nil, nil); code != http.StatusForbidden {
		t.Errorf("GET /sitesync/ from a network not on the allow list: %d, want 403", code)
	}

	// With 127.0.0.1 on the allow list: GET reaches the status listener,
	// with the prefix removed; other methods do not.
	install("allow 192.0.2.0/24;", "allow 127.0.0.1;")
	for path, want := range map[string]string{"/sitesync/": "/", "/sitesync/status.json": "/status.json"} {
		// An old worker may still accept a connection or two.
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := do(http.MethodGet, path, nil, nil)
			if code == http.StatusOK && body == "backend "+want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %d %q, want 200 from the status listener's %s", path, code, body, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if code, _ := do(http.MethodPost, "/sitesync/", []byte("x"), nil); code != http.StatusForbidden {
		t.Errorf("POST /sitesync/: %d, want 403", code)
	}
}

// --- production.toml --------------------------------------------------------------

func TestProductionConfig(t *testing.T) {
	cfg := loadProduction(t)
	for name, c := range map[string]struct{ got, want []string }{
		"nginx.test_command":   {cfg.Nginx.TestCommand, []string{"sudo", "/usr/sbin/nginx", "-t"}},
		"nginx.reload_command": {cfg.Nginx.ReloadCommand, []string{"sudo", "/usr/bin/systemctl", "reload", "nginx"}},
		"certbot.command":      {cfg.Certbot.Command, []string{"sudo", "/usr/bin/certbot"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %q, want %q", name, c.got, c.want)
		}
	}
	if cfg.Webhook.InsecureNoSecret || cfg.Webhook.SecretFile == "" {
		t.Error("production.toml must require a webhook secret")
	}
	for name, addr := range map[string]string{"webhook.listen": cfg.Webhook.Listen, "metrics.listen": cfg.Metrics.Listen} {
		if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
			t.Errorf("%s = %q: want a loopback address", name, addr)
		}
	}
	if cfg.Reconcile.Interval.Duration != 5*time.Minute {
		t.Errorf("reconcile.interval = %v; alerts.yml assumes 5m", cfg.Reconcile.Interval.Duration)
	}
	if cfg.Certbot.Webroot != filepath.Join(cfg.Reconcile.StateDir, "acme") {
		t.Errorf("certbot.webroot %s is not acl.sh's default, state_dir/acme", cfg.Certbot.Webroot)
	}
	for _, path := range []string{cfg.Source.TokenFile, cfg.Webhook.SecretFile, cfg.GitHub.TokenFile} {
		if path != "" && !strings.HasPrefix(path, "/etc/sitesync/") {
			t.Errorf("secret file %s is not in /etc/sitesync", path)
		}
	}

	// The Prometheus scrape target is the metrics listener.
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "prometheus/prometheus.yml")), &prom); err != nil {
		t.Fatal(err)
	}
	if len(prom.ScrapeConfigs) != 1 || prom.ScrapeConfigs[0].JobName != "sitesync" ||
		len(prom.ScrapeConfigs[0].StaticConfigs) != 1 || !slices.Equal(prom.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{cfg.Metrics.Listen}) {
		t.Errorf("prometheus.yml does not scrape job sitesync at %s: %+v", cfg.Metrics.Listen, prom.ScrapeConfigs)
	}

	// Like examples/sitesync.toml, production.toml spells out every key.
	keys := func(path string) []string {
		t.Helper()
		var m map[string]map[string]any
		if _, err := toml.DecodeFile(path, &m); err != nil {
			t.Fatal(err)
		}
		var ks []string
		for s, kv := range m {
			for k := range kv {
				ks = append(ks, s+"."+k)
			}
		}
		sort.Strings(ks)
		return ks
	}
	if got, want := keys("production.toml"), keys("sitesync.toml"); !slices.Equal(got, want) {
		t.Errorf("production.toml keys\n  %v\nexamples/sitesync.toml keys\n  %v", got, want)
	}
}

// TestInstallLinks checks that every relative link in INSTALL.md points to
// an existing file.
func TestInstallLinks(t *testing.T) {
	text := readFile(t, "INSTALL.md")
	links := regexp.MustCompile(`\]\(([^)#]+)\)`).FindAllStringSubmatch(text, -1)
	if len(links) < 5 {
		t.Fatalf("only %d links in INSTALL.md", len(links))
	}
	for _, l := range links {
		if strings.Contains(l[1], "://") {
			continue
		}
		if _, err := os.Stat(l[1]); err != nil {
			t.Errorf("INSTALL.md links to %s: %v", l[1], err)
		}
	}
	for _, want := range []string{
		"go build -o /usr/local/bin/sitesync ./cmd/sitesync", "examples/acl.sh", "visudo -c -f examples/sudoers.d/sitesync",
		"install -m 0640 -o root -g sitesync", "openssl rand -hex 32", "application/json",
		"systemctl enable --now sitesync", "sitesync status", "curl -s 127.0.0.1:9400/readyz",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("INSTALL.md does not mention %q", want)
		}
	}
}
