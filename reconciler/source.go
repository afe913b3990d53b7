package reconciler

import (
	"context"
	"path/filepath"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/source"
)

// Source fetches the site repository.
//
// Checkout brings the local copy up to date with the remote branch and
// returns it. The reconciler calls it once per pass and never concurrently;
// ctx bounds the fetch. Errors must not contain credentials; errors that
// retrying cannot fix wrap one of package source's permanent errors
// (source.IsPermanent).
type Source interface {
	Checkout(ctx context.Context) (source.Checkout, error)
}

// SourceFor returns the configured site repository: a git repository synced
// with go-git into <state_dir>/repo, or, for a local path that is not a git
// repository, the directory itself.
func SourceFor(cfg *config.Config) Source {
	return SourceAt(cfg, filepath.Join(cfg.Reconcile.StateDir, "repo"))
}

// SourceAt is SourceFor with the git checkout in dir instead of the state
// directory, for a process that must not move the checkout a reconciler
// reads (sitesync validate). A plain directory is still read in place.
func SourceAt(cfg *config.Config, dir string) Source {
	if source.IsPlainDirectory(cfg.Source.URL) {
		return source.Directory{Path: cfg.Source.URL}
	}
	return &source.Repo{
		URL:        cfg.Source.URL,
		Branch:     cfg.Source.Branch,
		Dir:        dir,
		TokenFile:  cfg.Source.TokenFile,
		SSHKeyFile: cfg.Source.SSHKeyFile,
	}
}
