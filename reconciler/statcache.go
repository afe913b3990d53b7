package reconciler

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// statCache remembers the bytes of the files the last observation read,
// with their inode, size, modification and change times. A file whose
// metadata is unchanged is not read again: any write to a file, by any
// means, moves its change time, which no user can set back. Like git's
// index it distrusts entries read within racyWindow of their last
// modification, since a write in the same clock tick would not show (the
// kernel stamps files from a coarse clock that ticks every few
// milliseconds; racyWindow is well above that).
// Observation stays complete and level-triggered; only the re-reading of
// unchanged bytes is saved.
type statCache struct {
	mu    sync.Mutex
	files map[string]cachedFile
}

type cachedFile struct {
	ino, size    uint64
	mtime, ctime int64
	data         []byte
}

const racyWindow = 100 * time.Millisecond

// read returns the content of path, from the cache when its metadata is
// unchanged.
func (c *statCache) read(path string, now time.Time) ([]byte, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	key := cachedFile{ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
	c.mu.Lock()
	hit, ok := c.files[path]
	c.mu.Unlock()
	if ok && hit.ino == key.ino && hit.size == key.size && hit.mtime == key.mtime && hit.ctime == key.ctime {
		return hit.data, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// Only trust a later stat if the file was not modified in the same
	// tick as this read.
	if now.Sub(time.Unix(0, max(key.mtime, key.ctime))) > racyWindow && uint64(len(b)) == key.size {
		key.data = b
		c.mu.Lock()
		if c.files == nil {
			c.files = map[string]cachedFile{}
		}
		c.files[path] = key
		c.mu.Unlock()
	}
	return b, nil
}

// prune forgets files of dir that are no longer there.
func (c *statCache) prune(dir string, present map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.files {
		if filepath.Dir(p) == dir && !present[filepath.Base(p)] {
			delete(c.files, p)
		}
	}
}
