package certbot

import "path/filepath"

// DefaultLockName is the lock file Issue uses in WorkDir when LockFile is
// empty.
const DefaultLockName = ".sitesync-certbot.lock"

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
