package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/reconciler"
	"github.com/sitesync/sitesync/source"
)

// newSource returns the configured site repository: a git repository
// synced with go-git, or, for a local path that is not a git repository,
// the directory itself.
func newSource(cfg *config.Config) (reconciler.Source, error) {
	u := cfg.Source.URL
	if filepath.IsAbs(u) {
		st, err := os.Stat(u)
		if err != nil {
			return nil, fmt.Errorf("source.url: %w", err)
		}
		if _, err := os.Stat(filepath.Join(u, ".git")); err != nil && st.IsDir() && !isBareRepo(u) {
			return dirSource{dir: u}, nil
		}
	}
	return gitSource{repo: &source.Repo{
		URL:        u,
		Branch:     cfg.Source.Branch,
		Dir:        filepath.Join(cfg.Reconcile.StateDir, "repo"),
		TokenFile:  cfg.Source.TokenFile,
		SSHKeyFile: cfg.Source.SSHKeyFile,
	}}, nil
}

func isBareRepo(dir string) bool {
	_, err1 := os.Stat(filepath.Join(dir, "HEAD"))
	_, err2 := os.Stat(filepath.Join(dir, "objects"))
	return err1 == nil && err2 == nil
}

// gitSource adapts source.Repo to the reconciler.
type gitSource struct{ repo *source.Repo }

func (g gitSource) Sync(ctx context.Context) (reconciler.Checkout, error) {
	rev, err := g.repo.Sync(ctx)
	if err != nil {
		if source.IsPermanent(err) {
			return reconciler.Checkout{}, reconciler.Terminal(err)
		}
		return reconciler.Checkout{}, err
	}
	return reconciler.Checkout{Dir: g.repo.Dir, Revision: rev.Commit}, nil
}

// dirSource reads a plain local directory (the quickstart's example
// repository); its revision is a digest of the files in it.
type dirSource struct{ dir string }

func (d dirSource) Sync(ctx context.Context) (reconciler.Checkout, error) {
	h := sha256.New()
	err := filepath.WalkDir(d.dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(d.dir, path)
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
		return reconciler.Checkout{}, fmt.Errorf("read source directory: %w", err)
	}
	if ctx.Err() != nil {
		return reconciler.Checkout{}, ctx.Err()
	}
	return reconciler.Checkout{Dir: d.dir, Revision: "dir-" + hex.EncodeToString(h.Sum(nil))[:12]}, nil
}
