package certbot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultLockName is the lock file Issue uses in WorkDir when LockFile is
// empty.
const DefaultLockName = ".sitesync-certbot.lock"

// Polling intervals while another process holds the lock.
const (
	lockPollMin = 10 * time.Millisecond
	lockPollMax = 250 * time.Millisecond
)

// lockPath returns the lock file Issue holds, "" for none.
func (c *Certbot) lockPath() string {
	switch {
	case c.LockFile != "":
		return c.LockFile
	case c.WorkDir != "":
		return filepath.Join(c.WorkDir, DefaultLockName)
	}
	return ""
}

// acquireLock takes an exclusive flock(2) on the file at path, creating the
// file (and its directory) if needed, and waits for it by polling until ctx
// is done. The file is opened read-only, which flock allows, so a lock file
// created by another user can still be locked by anyone who can read it.
// release unlocks and closes it; the file is left in place, since removing
// a lock file lets two processes lock two different files.
func acquireLock(ctx context.Context, path string) (release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("certbot lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("certbot lock (set LockFile to a file sitesync may create): %w", err)
	}
	wait := lockPollMin
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("certbot lock %s: %w", path, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("waiting for certbot lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, lockPollMax)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
