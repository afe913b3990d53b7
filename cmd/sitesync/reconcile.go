package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/source"

	"github.com/sitesync/sitesync/reconciler"
	"github.com/sitesync/sitesync/state"
)

func cmdValidate(ctx context.Context, e *env, args []string) int {
	var c commonFlags
	fs := newFlagSet(e, "validate", &c)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: sitesync validate [--config FILE | path/to/sites.yaml]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return parseErr(err)
	}
	var (
		d   *state.Desired
		err error
	)
	switch fs.NArg() {
	case 0:
		// Validate what the configured source holds right now.
		cfg, cerr := loadConfig(e, c.config)
		if cerr != nil {
			fmt.Fprintln(e.stderr, "sitesync:", cerr)
			return exitError
		}
		co, cleanup, serr := privateCheckout(ctx, cfg)
		if serr != nil {
			fmt.Fprintln(e.stderr, "sitesync:", serr)
			return exitError
		}
		defer cleanup()
		d, err = state.LoadFile(filepath.Join(co.Dir, filepath.FromSlash(cfg.Source.File)), state.Filter{Include: cfg.Reconcile.Include, Exclude: cfg.Reconcile.Exclude})
	case 1:
		d, err = state.LoadFile(fs.Arg(0), state.Filter{})
	default:
		fs.Usage()
		return exitUsage
	}
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitError
	}
	fmt.Fprintf(e.stdout, "%s: valid: %d site(s) deployed here, %d skipped, %d snippet(s)\n", d.File, len(d.Sites), len(d.Skipped), len(d.Snippets))
	return exitOK
}

// privateCheckout checks the configured source out into a temporary
// directory that cleanup removes: validate must neither wait for the host
// lock nor move the checkout a running service is reading. A plain
// directory source is read in place.
func privateCheckout(ctx context.Context, cfg *config.Config) (co source.Checkout, cleanup func(), err error) {
	tmp, err := os.MkdirTemp("", "sitesync-validate-")
	if err != nil {
		return source.Checkout{}, nil, err
	}
	cleanup = func() { _ = os.RemoveAll(tmp) }
	co, err = reconciler.SourceAt(cfg, filepath.Join(tmp, "repo")).Checkout(ctx)
	if err != nil {
		cleanup()
		return source.Checkout{}, nil, err
	}
	return co, cleanup, nil
}

func cmdPlan(ctx context.Context, e *env, args []string) int {
	var c commonFlags
	fs := newFlagSet(e, "plan", &c)
	noDiff := fs.Bool("no-diff", false, "list the actions without file diffs")
	if err := fs.Parse(args); err != nil {
		return parseErr(err)
	}
	return withReconciler(ctx, e, &c, "sitesync plan", func(r *reconciler.Reconciler) int {
		res, err := r.Plan(ctx)
		var held reconciler.SiteErrors
		if err != nil && !errors.As(err, &held) {
			fmt.Fprintln(e.stderr, "sitesync plan:", err)
			return exitError
		}
		if err := reconciler.WritePlan(e.stdout, res, !*noDiff); err != nil {
			return exitError
		}
		if len(held) > 0 {
			// Sites that cannot converge (held by the quarantine, a file
			// in the way): the host is not in sync.
			fmt.Fprintln(e.stderr, "sitesync plan:", held)
			return exitChanges
		}
		if !res.Plan.Empty() {
			return exitChanges
		}
		return exitOK
	})
}

func cmdApply(ctx context.Context, e *env, args []string) int {
	var c commonFlags
	fs := newFlagSet(e, "apply", &c)
	if err := fs.Parse(args); err != nil {
		return parseErr(err)
	}
	return withReconciler(ctx, e, &c, "sitesync apply", func(r *reconciler.Reconciler) int {
		res, err := r.Reconcile(ctx)
		if res.Plan != nil || err == nil {
			_ = reconciler.WritePlan(e.stdout, res, false)
		}
		fmt.Fprintf(e.stdout, "pass %s: %d written, %d deleted, %d certificate(s) issued, %d failed, reloaded: %t\n",
			res.ID, res.Written, res.Deleted, res.Issued, res.IssueFailed, res.Reloaded)
		if err != nil {
			var se reconciler.SiteErrors
			if errors.As(err, &se) {
				fmt.Fprintln(e.stderr, "sitesync apply: partial:", err)
			} else {
				fmt.Fprintln(e.stderr, "sitesync apply:", err)
			}
			return exitError
		}
		return exitOK
	})
}

// withReconciler loads the configuration, takes the host lock and runs fn.
func withReconciler(ctx context.Context, e *env, c *commonFlags, what string, fn func(*reconciler.Reconciler) int) int {
	log, err := c.logger(e)
	if err != nil {
		fmt.Fprintln(e.stderr, "sitesync:", err)
		return exitUsage
	}
	cfg, err := loadConfig(e, c.config)
	if err != nil {
		fmt.Fprintln(e.stderr, "sitesync:", err)
		return exitError
	}
	l, err := hostLock(cfg, what)
	if err != nil {
		fmt.Fprintln(e.stderr, "sitesync:", err)
		return exitError
	}
	defer l.Release()
	r, err := newReconciler(cfg, log)
	if err != nil {
		fmt.Fprintln(e.stderr, "sitesync:", err)
		return exitError
	}
	armCrashPoint(r, e.environ, log)
	return fn(r)
}
