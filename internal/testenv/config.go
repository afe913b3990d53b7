package testenv

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sitesync/sitesync/config"
)

// HostConfig returns BareConfig pointed at a private nginx: its
// directories, test and reload commands and loopback ports.
func HostConfig(t testing.TB, n *Nginx, repo string) *config.Config {
	t.Helper()
	cfg := BareConfig(t, repo)
	cfg.Nginx.ConfDir, cfg.Nginx.SnippetsDir = n.ConfDir, n.SnippetsDir
	cfg.Nginx.TestCommand, cfg.Nginx.ReloadCommand = n.TestCommand, n.ReloadCommand
	cfg.Nginx.HTTPPort, cfg.Nginx.HTTPSPort = n.HTTPPort, n.HTTPSPort
	cfg.Nginx.ListenAddress = "127.0.0.1"
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

// HostTOML is the [source], [nginx], [certbot] and [reconcile] part of a
// sitesync.toml for repo and the given nginx directories, commands and
// ports, with certbot off and the certbot, webroot and state directories
// in dir laid out as BareConfig lays them out. It ends inside [reconcile],
// so a caller can add keys of that section and further sections.
func HostTOML(repo, confDir, snippetsDir string, test, reload []string, httpPort, httpsPort int, dir string) string {
	return fmt.Sprintf(`[source]
url = %s
[nginx]
conf_dir = %s
snippets_dir = %s
test_command = %s
reload_command = %s
http_port = %d
https_port = %d
listen_address = "127.0.0.1"
[certbot]
command = []
config_dir = %s
webroot = %s
[reconcile]
state_dir = %s
`, TOMLString(repo), TOMLString(confDir), TOMLString(snippetsDir), TOMLList(test), TOMLList(reload),
		httpPort, httpsPort, TOMLString(filepath.Join(dir, "le")), TOMLString(filepath.Join(dir, "acme")),
		TOMLString(filepath.Join(dir, "state")))
}

// TOMLString quotes s as a TOML basic string.
func TOMLString(s string) string { return strconv.Quote(s) }

// TOMLList formats argv as a TOML array of strings.
func TOMLList(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = TOMLString(a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
