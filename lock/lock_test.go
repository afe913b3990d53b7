package lock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestAcquireRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "lock")
	l, err := Acquire(path, "test one")
	if err != nil {
		t.Fatal(err)
	}
	content, _ := os.ReadFile(path)
	if PID(content) != os.Getpid() || !strings.Contains(string(content), "what=test one") {
		t.Fatalf("lock file says %q", content)
	}
	// flock locks belong to the open file description, so a second open in
	// the same process conflicts just as another process would.
	_, err = Acquire(path, "test two")
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "test one") {
		t.Fatalf("second Acquire: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(path, "test three")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

// TestHeldByOtherProcess checks the lock against a real second process
// (flock(1) from util-linux holding the same file).
func TestHeldByOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	if err := os.WriteFile(path, []byte("pid=1 what=flock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("flock", "--exclusive", path, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for range 200 {
		l, err := Acquire(path, "me")
		if errors.Is(err, ErrHeld) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		// flock(1) has not taken it yet: let go and look again.
		l.Release()
		exec.Command("sleep", "0.01").Run()
	}
	t.Fatal("lock held by another process was never reported as held")
}
