package source

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"

	"github.com/sitesync/sitesync/internal/filestamp"
)

// handles is what one Sync of a Repo keeps for the next, so that a pass
// over an unchanged repository does not reopen and re-read it: the opened
// checkout and local source repositories and the description of the last
// commit. The checkout is reused only while its .git/config is the very
// file openCheckout checked for sitesync's marker (same device, inode,
// size, modification and change time), the source only while its path is
// still the same directory, and everything is forgotten after a failed
// Sync, so a replaced or broken state directory is opened, and checked,
// afresh.
//
// go-git's filesystem storage reads references, the index and the pack list
// from disk on every call, and objects are immutable, so a kept
// *git.Repository never serves stale data.
type handles struct {
	mu sync.Mutex
	opened
}

// opened is what handles keeps; its zero value keeps nothing.
type opened struct {
	// checkout is the repository in dir, opened and checked by
	// openCheckout; config identifies its .git/config file.
	dir      string
	config   filestamp.Stamp
	checkout *git.Repository
	// remote is the remote configuration ensureRemote last confirmed in
	// checkout.
	remoteURL  string
	remoteSpec config.RefSpec

	// src is the local source repository at srcPath, checked by
	// checkLocalRepo; srcDir identifies that directory.
	srcPath string
	srcDir  os.FileInfo
	src     *git.Repository

	// rev describes the commit last returned by Sync.
	rev Revision
}

// forget drops every handle (the caller holds mu).
func (h *handles) forget() {
	h.opened = opened{}
}

// openCheckout returns the checkout repository in dir, reusing the one
// kept from the last Sync when dir's .git is still the same directory.
func (h *handles) openCheckout(dir string) (*git.Repository, error) {
	cfg := filepath.Join(dir, git.GitDirName, "config")
	if h.checkout != nil && h.dir == dir {
		if st, ok := stampOf(cfg); ok && st == h.config {
			return h.checkout, nil
		}
	}
	h.forget()
	before, _ := stampOf(cfg)
	repo, err := openCheckout(dir)
	if err != nil {
		return nil, err
	}
	// Keep the repository only if the file checked is the one stamped.
	if after, ok := stampOf(cfg); ok && after == before {
		h.dir, h.config, h.checkout = dir, after, repo
	}
	return repo, nil
}

// ensureRemote points the checkout's remote at url with spec, unless the
// kept checkout was already confirmed to have that remote.
func (h *handles) ensureRemote(repo *git.Repository, url string, spec config.RefSpec) error {
	if repo == h.checkout && h.remoteURL == url && h.remoteSpec == spec {
		return nil
	}
	if err := ensureRemote(repo, url, spec); err != nil {
		return err
	}
	if repo == h.checkout {
		// ensureRemote may have rewritten the config file.
		if st, ok := stampOf(filepath.Join(h.dir, git.GitDirName, "config")); ok {
			h.config = st
		}
		h.remoteURL, h.remoteSpec = url, spec
	}
	return nil
}

// openSource returns the local source repository at path, reusing the one
// kept from the last Sync when path is still the same directory.
func (h *handles) openSource(path string) (*git.Repository, error) {
	if h.src != nil && h.srcPath == path && sameDir(path, h.srcDir) {
		return h.src, nil
	}
	repo, err := checkLocalRepo(path)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err == nil {
		h.srcPath, h.srcDir, h.src = path, fi, repo
	}
	return repo, nil
}

// revision describes the commit of hash on branch, from the kept
// description when it is the commit the last Sync returned.
func (h *handles) revision(repo *git.Repository, hash string, branch string) (Revision, bool) {
	if h.rev.Commit == hash && h.rev.Branch == branch && repo == h.checkout {
		return h.rev, true
	}
	return Revision{}, false
}

// stampOf stamps the file at path; ok is false when it cannot be stat'ed.
func stampOf(path string) (filestamp.Stamp, bool) {
	st, err := filestamp.Stat(path)
	return st, err == nil
}

// sameDir reports whether path is still the directory described by fi.
func sameDir(path string, fi os.FileInfo) bool {
	if fi == nil {
		return false
	}
	now, err := os.Stat(path)
	return err == nil && now.IsDir() && os.SameFile(now, fi)
}
