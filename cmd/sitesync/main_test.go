package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/lock"
	"github.com/sitesync/sitesync/reconciler"
	"github.com/sitesync/sitesync/source"
)

// sitesync runs the CLI in-process and returns its exit code and output.
func sitesync(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb, environ)
	return code, out.String(), errb.String()
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestQuickstart follows the README's quickstart on the embedded default
// configuration, in a copy of the example repository.
func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../examples/site-repo", filepath.Join(dir, "examples/site-repo"))
	t.Chdir(dir)

	code, out, errOut := sitesync(t, nil, "apply")
	if code != exitOK {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	conf := filepath.Join(dir, ".sitesync/nginx/conf.d")
	for _, f := range []string{"app.conf", "docs.conf", "old-blog.conf", "legacy.conf", "_sitesync.conf"} {
		if _, err := os.Stat(filepath.Join(conf, f)); err != nil {
			t.Errorf("quickstart did not write %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(conf, "staging.conf")); err == nil {
		t.Error("disabled site deployed")
	}

	if code, out, _ := sitesync(t, nil, "plan"); code != exitOK || !strings.Contains(out, "in sync") {
		t.Fatalf("plan after apply: exit %d\n%s", code, out)
	}

	app := filepath.Join(conf, "app.conf")
	f, err := os.OpenFile(app, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "# hand edit")
	f.Close()
	code, out, _ = sitesync(t, nil, "plan")
	if code != exitChanges || !strings.Contains(out, "-# hand edit") || !strings.Contains(out, "conf.d/app.conf  site app") {
		t.Fatalf("plan after hand edit: exit %d\n%s", code, out)
	}
	if code, _, _ := sitesync(t, nil, "apply"); code != exitOK {
		t.Fatal("apply after hand edit failed")
	}
	if b, _ := os.ReadFile(app); bytes.Contains(b, []byte("hand edit")) {
		t.Fatal("hand edit not reverted")
	}

	if code, out, _ := sitesync(t, nil, "validate", "examples/site-repo/sites.yaml"); code != exitOK || !strings.Contains(out, "valid") {
		t.Fatalf("validate: exit %d %s", code, out)
	}
}

func TestValidateExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "sites.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nsites:\n  - name: Bad/Name\n    serverNames: [a.test]\n    locations: [{path: /, return: \"200\"}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := sitesync(t, nil, "validate", bad)
	if code != exitError || !strings.Contains(errOut, "sites.yaml:3:") {
		t.Fatalf("invalid file: exit %d, stderr %q (want 1 and file:line)", code, errOut)
	}
	if code, _, _ := sitesync(t, nil, "validate", filepath.Join(dir, "missing.yaml")); code != exitError {
		t.Fatalf("missing file: exit %d", code)
	}
	if code, _, _ := sitesync(t, nil, "nonsense"); code != exitUsage {
		t.Fatalf("unknown command: exit %d", code)
	}
	if code, out, _ := sitesync(t, nil, "version"); code != exitOK || !strings.HasPrefix(out, "sitesync ") {
		t.Fatalf("version: exit %d %q", code, out)
	}
}

// TestApplyWithConfigFile drives a real nginx through a configuration file
// and the environment overrides, and checks that plan after apply exits 0.
func TestApplyWithConfigFile(t *testing.T) {
	n := testenv.StartNginx(t)
	repo := testenv.NewGitRepo(t, map[string]string{"sites.yaml": "version: 1\nsites:\n  - name: a\n    serverNames: [a.test]\n    locations: [{path: /, return: \"204\"}]\n"})
	state := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "sitesync.toml")
	toml := fmt.Sprintf(`
[source]
url = %q

[nginx]
conf_dir = %q
snippets_dir = %q
test_command = %s
http_port = %d
https_port = %d
listen_address = "127.0.0.1"

[certbot]
command = []
webroot = %q

[reconcile]
state_dir = %q
`, repo, n.ConfDir, n.SnippetsDir, testenv.TOMLList(n.TestCommand), n.HTTPPort, n.HTTPSPort, filepath.Join(state, "acme"), state)
	if err := os.WriteFile(cfgPath, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	environ := []string{"SITESYNC_NGINX_RELOAD_COMMAND=" + testenv.TOMLList(n.ReloadCommand)}
	if code, out, errOut := sitesync(t, environ, "plan", "--config", cfgPath); code != exitChanges {
		t.Fatalf("plan before apply: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := sitesync(t, environ, "apply", "--config", cfgPath); code != exitOK {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	if code, _ := n.GetEventually(t, "a.test", "/", func(c int, _ string) bool { return c == 204 }); code != 204 {
		t.Fatalf("a.test: %d", code)
	}
	if code, out, _ := sitesync(t, environ, "plan", "--config", cfgPath); code != exitOK {
		t.Fatalf("plan after apply: exit %d\n%s", code, out)
	}
	// Another process holding the host lock makes apply fail and say who.
	l, err := lock.Acquire(filepath.Join(state, "lock"), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if code, _, errOut := sitesync(t, environ, "apply", "--config", cfgPath); code != exitError || !strings.Contains(errOut, "held by") {
		t.Fatalf("apply under someone else's lock: exit %d %q", code, errOut)
	}
}

// TestValidateUsesPrivateCheckout: validate with no file argument checks
// the source's current head while a service holds the host lock, without
// moving the checkout that service reads, and leaves nothing behind.
func TestValidateUsesPrivateCheckout(t *testing.T) {
	good := "version: 1\nsites:\n  - name: a\n    serverNames: [a.test]\n    locations: [{path: /, return: \"204\"}]\n"
	repo := testenv.NewGitRepo(t, map[string]string{"sites.yaml": good})
	stateDir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "sitesync.toml")
	toml := fmt.Sprintf("[source]\nurl = %q\n\n[reconcile]\nstate_dir = %q\n", repo, stateDir)
	if err := os.WriteFile(cfgPath, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The service's checkout, at the first commit, and its lock.
	first, err := reconciler.SourceFor(cfg).Checkout(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l, err := hostLock(cfg, "sitesync run (test)")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	if code, out, errOut := sitesync(t, nil, "validate", "--config", cfgPath); code != exitOK || !strings.Contains(out, "valid: 1 site") {
		t.Fatalf("validate while the lock is held: exit %d\n%s%s", code, out, errOut)
	}
	testenv.CommitFiles(t, repo, map[string]string{"sites.yaml": "version: 1\nsites:\n  - name: Bad\n"}, "break it")
	code, _, errOut := sitesync(t, nil, "validate", "--config", cfgPath)
	if code != exitError || !strings.Contains(errOut, "sites.yaml:3:") {
		t.Fatalf("validate of a broken head: exit %d, stderr %q (want 1 and sites.yaml:3:)", code, errOut)
	}
	if head, err := source.Head(first.Dir); err != nil || head.Commit != first.Revision {
		t.Errorf("the service's checkout moved to %v (%v), want %s", head.Commit, err, first.Revision)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("validate left %d entries in TMPDIR", len(left))
	}
}
