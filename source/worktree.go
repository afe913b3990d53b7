package source

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// checkout makes the checkout in dir exactly commit target on branch
// branchRef. When HEAD is already the branch at target and the worktree
// passes the lstat-only cleanliness check, it does nothing; when it is a
// clean checkout of another commit, it applies the difference between the
// two trees (see fastForward); otherwise, or if that fails, it hard-resets
// the worktree and index and removes untracked files.
func checkout(repo *git.Repository, dir string, branchRef plumbing.ReferenceName, target plumbing.Hash) error {
	at, idx, err := cleanAt(repo, dir, branchRef)
	if err != nil {
		return err
	}
	if at == target {
		return nil
	}
	if !at.IsZero() {
		// A clean checkout of an earlier commit: apply the difference.
		// The branch moves only once the worktree and index match the
		// target; on failure the full reset below repairs the worktree.
		if err := fastForward(repo, dir, idx, at, target); err == nil {
			if err := repo.Storer.SetReference(plumbing.NewHashReference(branchRef, target)); err != nil {
				return fmt.Errorf("update %s: %w", branchRef, err)
			}
			return nil
		}
	}
	if err := repo.Storer.SetReference(plumbing.NewHashReference(branchRef, target)); err != nil {
		return fmt.Errorf("update %s: %w", branchRef, err)
	}
	if err := repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, branchRef)); err != nil {
		return fmt.Errorf("update HEAD: %w", err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("open worktree: %w", err)
	}
	if err := resetAndClean(repo, wt, dir, target); err != nil {
		// The worktree may hold something go-git cannot check out over,
		// such as an untracked directory where the commit has a file:
		// start from an empty worktree and index.
		if err := wipeWorktree(dir); err != nil {
			return fmt.Errorf("reset worktree: %w", err)
		}
		if err := repo.Storer.SetIndex(&index.Index{Version: 2}); err != nil {
			return fmt.Errorf("reset index: %w", err)
		}
		if err := resetAndClean(repo, wt, dir, target); err != nil {
			return fmt.Errorf("reset worktree: %w", err)
		}
	}
	return nil
}

// resetAndClean hard-resets the worktree to target, deletes untracked files
// and refreshes the index's stat data.
func resetAndClean(repo *git.Repository, wt *git.Worktree, dir string, target plumbing.Hash) error {
	if err := wt.Reset(&git.ResetOptions{Commit: target, Mode: git.HardReset}); err != nil {
		return err
	}
	idx, err := repo.Storer.Index()
	if err != nil {
		return err
	}
	if err := removeUntracked(dir, idx); err != nil {
		return err
	}
	// go-git leaves the stat data of an entry zero when the file on disk
	// already had the right content; record it so the next no-op Sync's
	// lstat comparison sees a clean worktree. The worktree matches the
	// index now, as the reset just verified.
	refreshStat(dir, idx)
	return repo.Storer.SetIndex(idx)
}

// cleanAt returns the commit the checkout holds, with its decoded index,
// when HEAD is the branch branchRef and the worktree looks unmodified
// (see worktreeClean); otherwise it returns the zero hash.
func cleanAt(repo *git.Repository, dir string, branchRef plumbing.ReferenceName) (plumbing.Hash, *index.Index, error) {
	head, err := repo.Storer.Reference(plumbing.HEAD)
	if err != nil || head.Type() != plumbing.SymbolicReference || head.Target() != branchRef {
		return plumbing.ZeroHash, nil, nil
	}
	branch, err := repo.Storer.Reference(branchRef)
	if err != nil {
		return plumbing.ZeroHash, nil, nil
	}
	idx, err := repo.Storer.Index()
	if err != nil {
		return plumbing.ZeroHash, nil, nil
	}
	clean, err := worktreeClean(dir, idx)
	if err != nil || !clean {
		return plumbing.ZeroHash, nil, err
	}
	return branch.Hash(), idx, nil
}

// tracked holds the paths an index makes part of the worktree.
type tracked struct {
	files map[string]*index.Entry // slash-separated path -> entry
	dirs  map[string]bool         // every directory containing a tracked file
	subs  map[string]bool         // submodule (gitlink) paths
}

// trackedPaths indexes idx's entries by path; ok is false if idx holds an
// unmerged entry.
func trackedPaths(idx *index.Index) (t tracked, ok bool) {
	t = tracked{
		files: make(map[string]*index.Entry, len(idx.Entries)),
		dirs:  make(map[string]bool),
		subs:  make(map[string]bool),
	}
	for _, e := range idx.Entries {
		// Stage is 0 for a normal entry (go-git's index.Merged constant is
		// 1 and does not match what it decodes); anything else is a
		// conflict.
		if e.Stage != 0 {
			return t, false
		}
		if e.Mode == filemode.Submodule {
			t.subs[e.Name] = true
		} else {
			t.files[e.Name] = e
		}
		for d := path.Dir(e.Name); d != "."; d = path.Dir(d) {
			if t.dirs[d] {
				break
			}
			t.dirs[d] = true
		}
	}
	return t, true
}

// worktreeClean compares the worktree in dir with idx using lstat data only:
// every tracked file must exist with the indexed type, executable bit, size
// and modification time, and nothing untracked may exist (ignored files and
// empty directories included). It never reads file content.
func worktreeClean(dir string, idx *index.Index) (bool, error) {
	t, ok := trackedPaths(idx)
	if !ok {
		return false, nil
	}
	dirty := errors.New("dirty")
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if rel == git.GitDirName {
			return filepath.SkipDir
		}
		if t.subs[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return dirty
		}
		if d.IsDir() {
			if !t.dirs[rel] {
				return dirty
			}
			return nil
		}
		e, ok := t.files[rel]
		if !ok {
			return dirty
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !statMatches(e, fi) {
			return dirty
		}
		seen++
		return nil
	})
	if errors.Is(err, dirty) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect worktree: %w", err)
	}
	return seen == len(t.files), nil
}

// statMatches reports whether fi (from lstat) agrees with index entry e.
func statMatches(e *index.Entry, fi fs.FileInfo) bool {
	mode := fi.Mode()
	switch e.Mode {
	case filemode.Symlink:
		if mode&fs.ModeSymlink == 0 {
			return false
		}
	case filemode.Regular:
		if !mode.IsRegular() || mode&0o100 != 0 {
			return false
		}
	case filemode.Executable:
		if !mode.IsRegular() || mode&0o100 == 0 {
			return false
		}
	default:
		return false
	}
	return e.Size == uint32(fi.Size()) && !e.ModifiedAt.IsZero() && e.ModifiedAt.Equal(fi.ModTime())
}

// removeUntracked deletes every file, symlink and directory under dir that
// idx does not track, except .git, like "git clean -ffdx".
func removeUntracked(dir string, idx *index.Index) error {
	t, _ := trackedPaths(idx)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if rel == git.GitDirName || t.subs[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if t.dirs[rel] {
				return nil
			}
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("remove untracked %s: %w", rel, err)
			}
			return filepath.SkipDir
		}
		if _, ok := t.files[rel]; ok {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove untracked %s: %w", rel, err)
		}
		return nil
	})
}

// refreshStat records the current lstat size and modification time of every
// tracked file in idx.
func refreshStat(dir string, idx *index.Index) {
	for _, e := range idx.Entries {
		if e.Mode == filemode.Submodule {
			continue
		}
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(e.Name)))
		if err != nil {
			continue
		}
		e.ModifiedAt = fi.ModTime()
		e.Size = uint32(fi.Size())
	}
}

// wipeWorktree deletes everything in dir except .git.
func wipeWorktree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == git.GitDirName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
