package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Polling intervals of Wait while another holder has the lock.
const (
	waitPollMin = 10 * time.Millisecond
	waitPollMax = 250 * time.Millisecond
)

// Wait takes an exclusive flock(2) on the file at path, creating the file
// (and its directory) if needed, and waits for it by polling until ctx is
// done; the error then wraps ctx.Err(). Unlike Acquire it records no
// holder: it guards short critical sections (one certbot run, one database
// migration) that callers queue for rather than refuse.
//
// The file is opened read-only, which flock allows, so a lock file created
// by another user can still be locked by anyone who can read it, and a
// symbolic link at path is refused. Two opens of the same file exclude each
// other even inside one process. release unlocks and closes the file; the
// file is left in place, since removing a lock file lets two processes lock
// two different files.
func Wait(ctx context.Context, path string) (release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	wait := waitPollMin
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, waitPollMax)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
