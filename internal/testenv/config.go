package testenv

import (
	"path/filepath"
	"testing"

	"github.com/sitesync/sitesync/config"
)

// HostConfig returns the embedded default configuration pointed at a
// private nginx and a site repository: nginx's directories, test and
// reload commands and loopback ports, certbot disabled, and a fresh state
// directory with the certbot directories inside it.
func HostConfig(t testing.TB, n *Nginx, repo string) *config.Config {
	t.Helper()
	cfg, err := config.Default(nil)
	if err != nil {
		t.Fatalf("testenv: default config: %v", err)
	}
	dir := t.TempDir()
	cfg.Source.URL = repo
	cfg.Nginx.ConfDir, cfg.Nginx.SnippetsDir = n.ConfDir, n.SnippetsDir
	cfg.Nginx.TestCommand, cfg.Nginx.ReloadCommand = n.TestCommand, n.ReloadCommand
	cfg.Nginx.HTTPPort, cfg.Nginx.HTTPSPort = n.HTTPPort, n.HTTPSPort
	cfg.Nginx.ListenAddress = "127.0.0.1"
	cfg.Certbot.Command = nil
	cfg.Certbot.ConfigDir = filepath.Join(dir, "letsencrypt")
	cfg.Certbot.Webroot = filepath.Join(dir, "acme")
	cfg.Reconcile.StateDir = filepath.Join(dir, "state")
	return cfg
}

// BareConfig returns the embedded default configuration pointed at a site
// repository, without nginx or certbot (no test, reload or certbot
// commands) and with conf.d, snippets, state and certbot directories in a
// fresh temporary directory: the Go side of a pass alone, for benchmarks.
func BareConfig(t testing.TB, repo string) *config.Config {
	t.Helper()
	cfg, err := config.Default(nil)
	if err != nil {
		t.Fatalf("testenv: default config: %v", err)
	}
	dir := t.TempDir()
	cfg.Source.URL = repo
	cfg.Nginx.ConfDir, cfg.Nginx.SnippetsDir = filepath.Join(dir, "conf.d"), filepath.Join(dir, "snippets")
	cfg.Nginx.TestCommand, cfg.Nginx.ReloadCommand = nil, nil
	cfg.Certbot.Command = nil
	cfg.Certbot.ConfigDir, cfg.Certbot.Webroot = filepath.Join(dir, "le"), filepath.Join(dir, "acme")
	cfg.Reconcile.StateDir = filepath.Join(dir, "state")
	return cfg
}
