package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/render"
)

// TestMain lets a test run this very binary as the sitesync command, so a
// test can kill -9 a real sitesync process.
func TestMain(m *testing.M) {
	if os.Getenv("SITESYNC_TEST_EXEC_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Environ()))
	}
	os.Exit(m.Run())
}

// startProcess runs `sitesync run --config path` as a child process.
func startProcess(t *testing.T, cfgPath string, log *bytes.Buffer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "SITESYNC_TEST_EXEC_MAIN=1")
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so a kill takes its children (the reload
	// command) with it, as systemd's would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// TestKill9MidPassThenRestartConverges kills the service while a pass is
// between writing files and reloading nginx, restarts it, and checks that
// the restarted service reloads the files the dead one wrote.
func TestKill9MidPassThenRestartConverges(t *testing.T) {
	s := newSvc(t, "", "")
	// The reload waits 3 s before it runs, so the test can kill the
	// process in between. Values are passed as arguments, not spliced
	// into the shell text.
	slowReload := append([]string{"sh", "-c", `sleep 3; exec "$0" "$@"`}, s.nginx.ReloadCommand...)
	text, _ := os.ReadFile(s.cfgPath)
	text = bytes.Replace(text, []byte("reload_command = "+testenv.TOMLList(s.nginx.ReloadCommand)), []byte("reload_command = "+testenv.TOMLList(slowReload)), 1)
	if err := os.WriteFile(s.cfgPath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(s.cfgPath, nil); err != nil {
		t.Fatal(err)
	}

	var log1 bytes.Buffer
	p := startProcess(t, s.cfgPath, &log1)
	marker := filepath.Join(s.cfg.Reconcile.StateDir, "reload-pending")
	eventually(t, 20*time.Second, "the first pass to write files and wait for its reload", func() bool {
		_, err := os.Stat(marker)
		return err == nil
	})
	if err := syscall.Kill(-p.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Wait()
	time.Sleep(3500 * time.Millisecond) // longer than the reload's sleep
	if n := s.nginx.ReloadCount(t); n != 0 {
		t.Fatalf("reloads before restart = %d, want 0 (killed before reload)", n)
	}
	if out, err := exec.Command(s.nginx.TestCommand[0], s.nginx.TestCommand[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("files left by the killed process fail nginx -t: %v\n%s", err, out)
	}

	// The restarted process holds the lock the dead one held, sees the
	// pending reload and finishes the job.
	var log2 bytes.Buffer
	p2 := startProcess(t, s.cfgPath, &log2)
	if code, _ := s.nginx.GetEventually(t, "one.test", "/", func(c int, _ string) bool { return c == 204 }); code != 204 {
		t.Fatalf("not converged after restart:\n%s", log2.String())
	}
	eventually(t, 20*time.Second, "the reload marker to be cleared", func() bool {
		_, err := os.Stat(marker)
		return errors.Is(err, os.ErrNotExist)
	})
	// SIGTERM stops it cleanly.
	p2.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p2.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, log2.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGTERM")
	}
}

// TestCrashConsistency kills `sitesync apply` with SIGKILL at random points
// of randomly chosen changes, 50 times. After every crash each managed
// file is whole (its marker's checksum matches: never truncated, never
// mixed), and the next run recovers and converges to a configuration that
// passes nginx -t.
func TestCrashConsistency(t *testing.T) {
	n := testenv.StartNginx(t)
	sites := func(names []string, broken string) string {
		var b strings.Builder
		b.WriteString("version: 1\nsites:\n")
		for _, name := range names {
			extra := ""
			if name == broken {
				extra = "    includes: [does-not-exist.conf]\n"
			}
			fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.test]\n%s    locations: [{path: /, return: \"204\"}]\n", name, name, extra)
		}
		b.WriteString("  - name: legacy\n    raw: raw/legacy.conf\n")
		return b.String()
	}
	raw := func(i int) string {
		return fmt.Sprintf("server {\n    listen 127.0.0.1:%d;\n    server_name legacy.test;\n    return 200 'v%d';\n}\n", n.HTTPPort, i)
	}
	all := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	repo := testenv.NewGitRepo(t, map[string]string{"sites.yaml": sites(all[:4], ""), "raw/legacy.conf": raw(0), "snippets/s.conf": "# v0\n"})
	state := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "sitesync.toml")
	text := fmt.Sprintf("[source]\nurl = %q\n[nginx]\nconf_dir = %q\nsnippets_dir = %q\ntest_command = %s\nreload_command = %s\nhttp_port = %d\nhttps_port = %d\nlisten_address = \"127.0.0.1\"\n[certbot]\ncommand = []\nwebroot = %q\n[reconcile]\nstate_dir = %q\n",
		repo, n.ConfDir, n.SnippetsDir, testenv.TOMLList(n.TestCommand), testenv.TOMLList(n.ReloadCommand), n.HTTPPort, n.HTTPSPort, filepath.Join(state, "acme"), state)
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	apply := func(crashAt string) (int, string) {
		cmd := exec.Command(os.Args[0], "apply", "--config", cfgPath)
		cmd.Env = append(os.Environ(), "SITESYNC_TEST_EXEC_MAIN=1", crashEnv+"="+crashAt)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
				return -int(st.Signal()), string(out)
			}
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := apply(""); code != 0 {
		t.Fatalf("initial apply: %d\n%s", code, out)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	points := []string{"journal-written", "after-write-1", "after-write-2", "after-write-3", "after-write-5", "before-test", "after-test", "before-reload", "after-reload"}
	crashed := 0
	for trial := range 50 {
		// A random change: a subset of sites (adds and deletes), the raw
		// file, the snippet, and sometimes a site nginx rejects.
		k := 2 + rng.IntN(len(all)-1)
		names := append([]string(nil), all[:k]...)
		rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		broken := ""
		if rng.IntN(4) == 0 {
			broken = names[0]
		}
		testenv.CommitFiles(t, repo, map[string]string{"sites.yaml": sites(names, broken), "raw/legacy.conf": raw(trial + 1), "snippets/s.conf": fmt.Sprintf("# v%d\n", trial+1)}, "change")
		point := points[rng.IntN(len(points))]
		code, out := apply(point)
		if code == -int(syscall.SIGKILL) {
			crashed++
		}
		assertWholeFiles(t, n.ConfDir, n.SnippetsDir)

		// Restart: recover and converge.
		code, out = apply("")
		if code != 0 && !(broken != "" && code == exitError && strings.Contains(out, "held at its last version")) {
			t.Fatalf("trial %d (crash at %s): apply after the crash exited %d\n%s", trial, point, code, out)
		}
		if out, err := exec.Command(n.TestCommand[0], n.TestCommand[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("trial %d (crash at %s): nginx -t fails after recovery: %v\n%s", trial, point, err, out)
		}
		assertWholeFiles(t, n.ConfDir, n.SnippetsDir)
		if _, err := os.Stat(filepath.Join(state, "journal.json")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("trial %d: journal left after a clean run", trial)
		}
		code, out, _ = sitesync(t, nil, "plan", "--config", cfgPath)
		if code != exitOK && !(broken != "" && code == exitChanges) {
			t.Fatalf("trial %d (crash at %s): not converged, plan exits %d\n%s", trial, point, code, out)
		}
	}
	t.Logf("50 trials, %d killed mid-pass", crashed)
	if crashed < 25 {
		t.Fatalf("only %d of 50 trials crashed: the crash points are not being reached", crashed)
	}
}

// assertWholeFiles checks that every file in the managed directories is a
// whole managed file: its marker's checksum matches its content.
func assertWholeFiles(t *testing.T, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue // a temporary file of an interrupted write: never included by nginx
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if !render.Intact(b) {
				t.Fatalf("%s/%s is not a whole managed file:\n%s", dir, e.Name(), b)
			}
		}
	}
}

func TestStaleTemporaryFilesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../examples/site-repo", filepath.Join(dir, "examples/site-repo"))
	t.Chdir(dir)
	if code, out, errOut := sitesync(t, nil, "apply"); code != exitOK {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	conf := filepath.Join(dir, ".sitesync/nginx/conf.d")
	stale := filepath.Join(conf, ".app.conf123456789")
	foreign := filepath.Join(conf, ".someone-elses.conf42")
	for _, f := range []string{stale, foreign} {
		if err := os.WriteFile(f, []byte("half a fi"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, _ := sitesync(t, nil, "apply"); code != exitOK {
		t.Fatal("second apply failed")
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale temporary file of a managed file was not removed")
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Error("a hidden file sitesync does not own was removed")
	}
}
