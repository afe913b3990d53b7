package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sitesync/sitesync/config"
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
	text = bytes.Replace(text, []byte("reload_command = "+tomlList(s.nginx.ReloadCommand)), []byte("reload_command = "+tomlList(slowReload)), 1)
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
