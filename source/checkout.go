package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Checkout is a synced copy of the site repository, as a reconcile pass
// reads it.
type Checkout struct {
	// Dir is the directory holding the repository's files.
	Dir string
	// Revision identifies what Dir holds: the commit SHA, or for a plain
	// directory "dir-" and a digest of its files.
	Revision string
	// Commit describes the commit (nil for a plain directory).
	Commit *Revision
}

// Checkout syncs the repository (see Sync) and returns the checkout.
func (r *Repo) Checkout(ctx context.Context) (Checkout, error) {
	rev, err := r.Sync(ctx)
	if err != nil {
		return Checkout{}, err
	}
	return Checkout{Dir: r.Dir, Revision: rev.Commit, Commit: &rev}, nil
}

// Directory is a site repository that is a plain local directory, not a
// git repository: the quickstart's example, or files put in place by other
// tooling. It is read where it is.
type Directory struct {
	// Path is the directory's absolute path.
	Path string
}

// IsPlainDirectory reports whether path is an existing local directory that
// is not a git repository (neither a work tree nor a bare repository).
func IsPlainDirectory(path string) bool {
	if !filepath.IsAbs(path) {
		return false
	}
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return false
	}
	for _, marker := range []string{".git", "HEAD"} {
		if _, err := os.Stat(filepath.Join(path, marker)); err == nil {
			return false
		}
	}
	return true
}

// Checkout returns the directory with a digest of its regular files (names
// and contents) as the revision, so a changed file gives a new revision.
func (d Directory) Checkout(ctx context.Context) (Checkout, error) {
	h := sha256.New()
	err := filepath.WalkDir(d.Path, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(d.Path, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", rel)
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil {
		return Checkout{}, fmt.Errorf("read source directory: %w", err)
	}
	return Checkout{Dir: d.Path, Revision: "dir-" + hex.EncodeToString(h.Sum(nil))[:12]}, nil
}
