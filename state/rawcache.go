package state

import (
	"io/fs"
	"sync"

	"github.com/sitesync/sitesync/internal/filestamp"
)

// RawCache carries the raw site files that one Load read over to the next
// Load of the same repository directory, so that a new revision costs the
// raw files it changed rather than all of them: a raw file whose stamp
// (device, inode, size, modification and change time; see package
// filestamp) is unchanged is neither read nor parsed again. Every raw
// file is still checked with lstat on every Load, so a file replaced by a
// symbolic link, removed or edited in place is seen. Files changed within
// filestamp.RacyWindow of the Load that read them are not carried over.
//
// The cache holds only the raw files the last Load referenced. The zero
// value is an empty cache. It is safe for concurrent use; Loads through
// one cache take turns.
type RawCache struct {
	mu    sync.Mutex
	files map[string]rawEntry // by repository-relative path
}

// rawEntry is one raw file as a Load read and parsed it.
type rawEntry struct {
	stamp        filestamp.Stamp
	data         []byte
	names, other []string
	err          error
}

// Load is the package's Load, reusing the raw files of the previous Load
// through c that have not changed since.
func (c *RawCache) Load(repo fs.FS, file string, f Filter) (*Desired, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return load(repo, file, f, c)
}

// rawFile returns the raw file name, read and parsed, from the cache when
// its stamp is unchanged, or a message saying what is wrong with it.
func (l *loader) rawFile(name string) (rawEntry, string) {
	fi, msg := l.lstat(name)
	if msg != "" {
		return rawEntry{}, msg
	}
	st, stamped := filestamp.Of(fi)
	if l.cache != nil && stamped {
		if e, ok := l.cache.files[name]; ok && e.stamp == st {
			l.kept[name] = e
			return e, ""
		}
	}
	data, msg := l.read(name)
	if msg != "" {
		return rawEntry{}, msg
	}
	e := rawEntry{data: data}
	e.names, e.other, e.err = ServerNames(data)
	if l.cache != nil && stamped && st.Trusted(l.now) && int64(len(data)) == st.Size {
		e.stamp = st
		l.kept[name] = e
	}
	return e, ""
}
