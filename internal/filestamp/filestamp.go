package filestamp

import (
	"io/fs"
	"syscall"
	"time"
)

// RacyWindow is how old a file's last change must be, when its content is
// read, for its stamp to vouch for that content later. The kernel stamps
// files from a clock that ticks every few milliseconds; the window is well
// above that.
const RacyWindow = 100 * time.Millisecond

// Stamp identifies one version of one file. The zero Stamp identifies
// nothing and never equals a real one.
type Stamp struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // nanoseconds since the epoch
}

// Of returns the stamp of the file fi describes; ok is false when fi does
// not carry the kernel's stat data (a file system other than the OS's).
func Of(fi fs.FileInfo) (s Stamp, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st == nil {
		return Stamp{}, false
	}
	return fromStat(st), true
}

// Stat stamps the file at path, following symbolic links.
func Stat(path string) (Stamp, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return Stamp{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return fromStat(&st), nil
}

func fromStat(st *syscall.Stat_t) Stamp {
	return Stamp{
		Dev:   uint64(st.Dev), // Dev is not uint64 on every architecture
		Ino:   st.Ino,
		Size:  st.Size,
		Mtime: st.Mtim.Nano(),
		Ctime: st.Ctim.Nano(),
	}
}

// Trusted reports whether s, taken before content was read at readAt, can
// vouch for that content when a later stamp equals s: the file's last
// change must be more than RacyWindow older than readAt. A file changed
// within the window might be changed again in the same clock tick without
// its stamp moving.
func (s Stamp) Trusted(readAt time.Time) bool {
	return s != Stamp{} && readAt.Sub(time.Unix(0, max(s.Mtime, s.Ctime))) > RacyWindow
}
