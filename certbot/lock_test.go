package certbot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitesync/sitesync/lock"
)

// recorderScript is a fake certbot: it appends "start <pid> <ns>" to the
// file given as $0, sleeps, then appends "end <pid> <ns>". The file name is
// an argument, never part of the script. certbot's arguments follow as $1...
const recorderScript = `echo "start $$ $(date +%s%N)" >> "$0"; sleep 0.5; echo "end $$ $(date +%s%N)" >> "$0"`

// recorder returns a Certbot running recorderScript into logFile, locking
// lockFile.
func recorder(t *testing.T, logFile, lockFile string) *Certbot {
	t.Helper()
	return &Certbot{
		Command:  []string{"sh", "-c", recorderScript, logFile},
		Webroot:  filepath.Join(t.TempDir(), "webroot"),
		LockFile: lockFile,
	}
}

// testReq is the request of the lock tests.
func testReq() Request { return Request{Name: "app", Domains: []string{"app.test"}} }

// run is one fake certbot run read back from the log.
type run struct {
	pid        string
	start, end int64
}

// readRuns parses the recorder's log and fails the test unless every run
// ended before the next started.
func readRuns(t *testing.T, logFile string, want int) []run {
	t.Helper()
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2*want {
		t.Fatalf("log has %d lines, want %d:\n%s", len(lines), 2*want, data)
	}
	var runs []run
	for i := 0; i < len(lines); i += 2 {
		s, e := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(s) != 3 || len(e) != 3 || s[0] != "start" || e[0] != "end" || s[1] != e[1] {
			t.Fatalf("runs overlap or log is malformed:\n%s", data)
		}
		start, err1 := strconv.ParseInt(s[2], 10, 64)
		end, err2 := strconv.ParseInt(e[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad timestamps:\n%s", data)
		}
		runs = append(runs, run{s[1], start, end})
	}
	for i := 1; i < len(runs); i++ {
		if runs[i].start < runs[i-1].end {
			t.Errorf("run %d started %v before run %d ended", i, time.Duration(runs[i-1].end-runs[i].start), i-1)
		}
	}
	return runs
}

func TestIssueSerializesGoroutines(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "runs.log")
	c := recorder(t, logFile, filepath.Join(dir, "locks", "certbot.lock"))
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = c.Issue(context.Background(), testReq()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	readRuns(t, logFile, 3)
}

// TestMain lets TestIssueSerializesProcesses run this test binary as a
// second process that calls Issue.
func TestMain(m *testing.M) {
	if logFile, lockFile := os.Getenv("SITESYNC_TEST_LOG"), os.Getenv("SITESYNC_TEST_LOCK"); logFile != "" && lockFile != "" {
		os.Exit(helperIssue(logFile, lockFile))
	}
	os.Exit(m.Run())
}

// helperIssue is the second process: one Issue through the recorder.
func helperIssue(logFile, lockFile string) int {
	webroot, err := os.MkdirTemp("", "sitesync-webroot-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(webroot)
	c := &Certbot{Command: []string{"sh", "-c", recorderScript, logFile}, Webroot: webroot, LockFile: lockFile}
	if err := c.Issue(context.Background(), testReq()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestIssueSerializesProcesses(t *testing.T) {
	dir := t.TempDir()
	logFile, lockFile := filepath.Join(dir, "runs.log"), filepath.Join(dir, "certbot.lock")
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), "SITESYNC_TEST_LOG="+logFile, "SITESYNC_TEST_LOCK="+lockFile)
	out := &strings.Builder{}
	helper.Stdout, helper.Stderr = out, out
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- helper.Wait() }()
	// Wait until the other process's certbot runs (it holds the lock).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, _ := os.ReadFile(logFile); strings.HasPrefix(string(data), "start ") {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("helper exited before running certbot: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper never ran certbot\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := recorder(t, logFile, lockFile).Issue(context.Background(), testReq()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	runs := readRuns(t, logFile, 2)
	if runs[0].pid == runs[1].pid {
		t.Errorf("both runs have pid %s", runs[0].pid)
	}
}

func TestIssueLockWaitHonoursContext(t *testing.T) {
	dir := t.TempDir()
	logFile, lockFile := filepath.Join(dir, "runs.log"), filepath.Join(dir, "certbot.lock")
	release, err := lock.Wait(context.Background(), lockFile)
	if err != nil {
		t.Fatal(err)
	}
	c := recorder(t, logFile, lockFile)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Issue(ctx, testReq())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), lockFile) {
		t.Fatalf("Issue while locked = %v, want a deadline error naming the lock", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Issue returned %v after its context ended", d)
	}
	if _, err := os.Stat(logFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("certbot ran without the lock")
	}
	// Once released, the lock is free again; a canceled context is still
	// refused before certbot runs.
	release()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := c.Issue(canceled, testReq()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Issue with a canceled context = %v", err)
	}
	if err := c.Issue(context.Background(), testReq()); err != nil {
		t.Fatal(err)
	}
	readRuns(t, logFile, 1)
}

func TestIssueReleasesLockOnFailure(t *testing.T) {
	dir := t.TempDir()
	lockFile := filepath.Join(dir, "certbot.lock")
	c := &Certbot{Command: []string{"false"}, Webroot: filepath.Join(dir, "webroot"), LockFile: lockFile}
	if err := c.Issue(context.Background(), testReq()); err == nil {
		t.Fatal("false succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	release, err := lock.Wait(ctx, lockFile)
	if err != nil {
		t.Fatalf("lock still held after a failed run: %v", err)
	}
	release()
}

func TestLockPath(t *testing.T) {
	for _, tt := range []struct {
		c    Certbot
		want string
	}{
		{Certbot{LockFile: "/run/x.lock", WorkDir: "/w"}, "/run/x.lock"},
		{Certbot{WorkDir: "/w"}, "/w/" + DefaultLockName},
		{Certbot{}, ""},
	} {
		if got := tt.c.lockPath(); got != tt.want {
			t.Errorf("lockPath(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
	// The default file is created in WorkDir (and WorkDir with it).
	dir := t.TempDir()
	c := &Certbot{Command: []string{"true"}, Webroot: filepath.Join(dir, "webroot"), WorkDir: filepath.Join(dir, "work")}
	if err := c.Issue(context.Background(), testReq()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "work", DefaultLockName)); err != nil {
		t.Errorf("default lock file: %v", err)
	}
	// A lock file that cannot be created fails the issuance, naming the fix.
	c.LockFile = filepath.Join(dir, "webroot", "missing", "\x00bad")
	if err := c.Issue(context.Background(), testReq()); err == nil || !strings.Contains(err.Error(), "LockFile") {
		t.Errorf("unusable lock file: %v", err)
	}
}
