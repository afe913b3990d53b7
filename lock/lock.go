package lock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrHeld is wrapped by the error of Acquire when another process holds
// the lock.
var ErrHeld = errors.New("lock held")

// Lock is a held lock. Release it when done; it is not safe for concurrent
// use.
type Lock struct{ f *os.File }

// Acquire takes the lock file at path without waiting. what describes the
// holder ("sitesync run"); it is written into the file with the pid, host
// and time. When another process holds the lock, the error wraps ErrHeld
// and says who holds it.
func Acquire(path, what string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by %s", ErrHeld, path, describe(holder))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid=%d host=%s since=%s what=%s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339), strings.ReplaceAll(what, "\n", " "))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(info), 0)
	}
	return &Lock{f: f}, nil
}

func describe(holder []byte) string {
	s := strings.TrimSpace(string(holder))
	if s == "" {
		return "another process"
	}
	return s
}

// Release gives the lock up. Calling it twice is harmless.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// PID reads the holder's process id from a lock file's content, or 0.
func PID(content []byte) int {
	for _, f := range strings.Fields(string(content)) {
		if v, ok := strings.CutPrefix(f, "pid="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
