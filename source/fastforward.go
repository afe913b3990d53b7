package source

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// errNotFastForward says that a change between two commits is one
// fastForward leaves to a full reset.
var errNotFastForward = errors.New("change needs a full reset")

// fastForward moves a clean checkout from commit from to commit to by
// applying the difference of their trees: it writes the files that were
// added or changed, removes those that were deleted (with directories
// left empty) and updates their index entries, leaving every other file
// untouched. go-git's Worktree.Reset instead compares the whole index
// with the whole worktree, which at 10,000 files costs tens of
// milliseconds for a one-file commit.
//
// Only regular and executable files are handled; any other change (a
// symbolic link, a submodule, a file becoming a directory) returns an
// error wrapping errNotFastForward before anything is touched. Any error
// means the caller must fall back to a full reset, which repairs whatever
// a failure left half done. idx is the checkout's index, which must match
// the worktree and commit from; it is updated and stored.
func fastForward(repo *git.Repository, dir string, idx *index.Index, from, to plumbing.Hash) error {
	fromTree, err := treeOf(repo, from)
	if err != nil {
		return err
	}
	toTree, err := treeOf(repo, to)
	if err != nil {
		return err
	}
	changes, err := object.DiffTree(fromTree, toTree)
	if err != nil {
		return fmt.Errorf("diff %s..%s: %w", from, to, err)
	}
	t, ok := trackedPaths(idx)
	if !ok || len(t.subs) > 0 {
		return fmt.Errorf("index has conflicts or submodules: %w", errNotFastForward)
	}
	entries := t.files
	var removed, written []object.ChangeEntry
	for _, c := range changes {
		for _, side := range []object.ChangeEntry{c.From, c.To} {
			if side.Name == "" {
				continue
			}
			if m := side.TreeEntry.Mode; m != filemode.Regular && m != filemode.Executable {
				return fmt.Errorf("%s has mode %s: %w", side.Name, m, errNotFastForward)
			}
		}
		for _, name := range []string{c.From.Name, c.To.Name} {
			if name != "" && !safeTreePath(name) {
				return fmt.Errorf("unsafe path %q: %w", name, errNotFastForward)
			}
		}
		if c.From.Name != "" && c.From.Name != c.To.Name {
			removed = append(removed, c.From)
		}
		if c.To.Name != "" {
			if c.From.Name == "" && occupied(t, c.To.Name) {
				return fmt.Errorf("%s: %w", c.To.Name, errNotFastForward)
			}
			written = append(written, c.To)
		}
	}
	for _, c := range removed {
		p := filepath.Join(dir, filepath.FromSlash(c.Name))
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", c.Name, err)
		}
		removeEmptyParents(dir, c.Name)
		delete(entries, c.Name)
	}
	for _, c := range written {
		e, err := writeBlob(repo, dir, c)
		if err != nil {
			return err
		}
		entries[c.Name] = e
	}
	idx.Entries = idx.Entries[:0]
	for _, e := range entries {
		idx.Entries = append(idx.Entries, e) // the encoder sorts them
	}
	if err := repo.Storer.SetIndex(idx); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

// safeTreePath reports whether name, a slash-separated path from a tree,
// stays inside the worktree and out of .git: no empty, "." or ".."
// component, no component that is .git in any letter case, no backslash
// and no control character. git itself refuses to check such paths out,
// and go-git's tree walk refuses them before fastForward sees them; this
// check does not depend on that. A commit with one is left to go-git's
// reset, which refuses it too.
func safeTreePath(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f || name[i] == '\\' {
			return false
		}
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." || strings.EqualFold(part, git.GitDirName) {
			return false
		}
	}
	return true
}

// treeOf returns the tree of commit hash.
func treeOf(repo *git.Repository, hash plumbing.Hash) (*object.Tree, error) {
	c, err := repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", hash, err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", hash, err)
	}
	return t, nil
}

// occupied reports whether adding a file at name collides with what t
// tracks: a file at a parent path of name, or files below name (name is
// then a directory of the worktree).
func occupied(t tracked, name string) bool {
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if _, ok := t.files[d]; ok {
			return true
		}
	}
	return t.dirs[name]
}

// writeBlob writes the file c names with its blob's content and mode,
// atomically (a temporary file in the same directory, then a rename), and
// returns its index entry.
func writeBlob(repo *git.Repository, dir string, c object.ChangeEntry) (*index.Entry, error) {
	blob, err := repo.BlobObject(c.TreeEntry.Hash)
	if err != nil {
		return nil, fmt.Errorf("read blob of %s: %w", c.Name, err)
	}
	r, err := blob.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob of %s: %w", c.Name, err)
	}
	defer r.Close()
	p := filepath.Join(dir, filepath.FromSlash(c.Name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", c.Name, err)
	}
	perm := os.FileMode(0o644)
	if c.TreeEntry.Mode == filemode.Executable {
		perm = 0o755
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".sitesync-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", c.Name, err)
	}
	tmp := f.Name()
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("write %s: %w", c.Name, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", c.Name, err)
	}
	return &index.Entry{
		Name:       c.Name,
		Hash:       c.TreeEntry.Hash,
		Mode:       c.TreeEntry.Mode,
		Size:       uint32(fi.Size()),
		ModifiedAt: fi.ModTime(),
		CreatedAt:  fi.ModTime(),
	}, nil
}

// removeEmptyParents removes the directories of name, innermost first, up
// to the first that is not empty.
func removeEmptyParents(dir, name string) {
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if os.Remove(filepath.Join(dir, filepath.FromSlash(d))) != nil {
			return
		}
	}
}
