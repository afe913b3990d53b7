package reconciler

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sitesync/sitesync/internal/filestamp"
)

// statCache remembers the bytes of the files the last observation read,
// with their stamps (see package filestamp). A file whose stamp is
// unchanged is not read again: any write to a file, by any means, moves
// its change time, which no user can set back. Entries read within
// filestamp.RacyWindow of their last modification are not kept.
// Observation stays complete and level-triggered; only the re-reading of
// unchanged bytes is saved.
type statCache struct {
	mu    sync.Mutex
	files map[string]cachedFile
}

type cachedFile struct {
	stamp filestamp.Stamp
	data  []byte
}

// read returns the content of path, from the cache when its stamp is
// unchanged. now is when the caller's observation started.
func (c *statCache) read(path string, now time.Time) ([]byte, error) {
	st, err := filestamp.Stat(path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	hit, ok := c.files[path]
	c.mu.Unlock()
	if ok && hit.stamp == st {
		return hit.data, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// Only trust a later stat if the file was not modified in the same
	// tick as this read.
	if st.Trusted(now) && int64(len(b)) == st.Size {
		c.mu.Lock()
		if c.files == nil {
			c.files = map[string]cachedFile{}
		}
		c.files[path] = cachedFile{stamp: st, data: b}
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
