package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/lock"
	"github.com/sitesync/sitesync/reconciler"
)

// loadConfig reads --config, else $SITESYNC_CONFIG, else the embedded
// default.
func loadConfig(e *env, path string) (*config.Config, error) {
	if path == "" {
		path = lookupEnv(e.environ, "SITESYNC_CONFIG")
	}
	if path == "" {
		return config.Default(e.environ)
	}
	return config.Load(path, e.environ)
}

// newReconciler wires a Reconciler from the configuration.
func newReconciler(cfg *config.Config, log *slog.Logger) (*reconciler.Reconciler, error) {
	src := reconciler.SourceFor(cfg)
	var issuer reconciler.Issuer
	if len(cfg.Certbot.Command) > 0 {
		issuer = &certbot.Certbot{
			Command:   cfg.Certbot.Command,
			ConfigDir: cfg.Certbot.ConfigDir,
			WorkDir:   cfg.Certbot.WorkDir,
			LogsDir:   cfg.Certbot.LogsDir,
			Server:    cfg.Certbot.Server,
			Email:     cfg.Certbot.Email,
			Webroot:   cfg.Certbot.Webroot,
			Env:       cfg.Certbot.Env,
			Timeout:   cfg.Certbot.Timeout.Duration,
			LockFile:  filepath.Join(cfg.Reconcile.StateDir, "certbot.lock"),
		}
	}
	r := reconciler.New(cfg, src, issuer, log)
	if issuer != nil {
		// Callers hold the host lock, so this process owns the file.
		if err := os.MkdirAll(cfg.Reconcile.StateDir, 0o755); err != nil {
			return nil, err
		}
		bo, err := certbot.OpenBackoff(filepath.Join(cfg.Reconcile.StateDir, "certbot-backoff.json"), certbot.BackoffOptions{})
		if err != nil {
			return nil, err
		}
		r.SetCertBackoff(bo)
	}
	return r, nil
}

// crashEnv names the test-only variable that kills the process at a named
// point of a pass (see reconciler.SetCrashHook).
const crashEnv = "SITESYNC_TEST_CRASH_AT"

// armCrashPoint makes r kill this process with SIGKILL at the point named
// by SITESYNC_TEST_CRASH_AT, for crash-consistency tests.
func armCrashPoint(r *reconciler.Reconciler, environ []string, log *slog.Logger) {
	at := lookupEnv(environ, crashEnv)
	if at == "" {
		return
	}
	log.Warn("test crash point armed: this process will kill itself", "at", at)
	r.SetCrashHook(func(point string) {
		if point == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // wait for the signal
		}
	})
}

// hostLock takes the host lock in the state directory.
func hostLock(cfg *config.Config, what string) (*lock.Lock, error) {
	return lock.Acquire(filepath.Join(cfg.Reconcile.StateDir, "lock"), what)
}

// warnRoot says clearly that running as root is not the intended setup.
func warnRoot(log *slog.Logger) {
	if os.Geteuid() == 0 {
		log.Warn("running as root: the production setup runs sitesync as an unprivileged user with sudo for certbot and the reload only (see examples/INSTALL.md)")
	}
}

func describeConfig(cfg *config.Config) string {
	return fmt.Sprintf("config %s", cfg.Origin)
}
