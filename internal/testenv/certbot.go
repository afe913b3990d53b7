package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Certbot describes a certbot installation isolated in t.TempDir(): its own
// configuration, work and log directories, a webroot, and the pebble server.
// Nothing is written to /etc/letsencrypt.
type Certbot struct {
	// Command is the argv prefix that runs certbot, [<absolute path>].
	Command []string
	// ConfigDir is --config-dir; certificates land in ConfigDir/live/<name>.
	ConfigDir string
	// WorkDir is --work-dir.
	WorkDir string
	// LogsDir is --logs-dir.
	LogsDir string
	// Webroot is the directory passed to --webroot -w.
	Webroot string
	// Server is the ACME directory URL passed to --server.
	Server string
	// Env holds the extra environment certbot needs, KEY=value, to be
	// appended to os.Environ(): REQUESTS_CA_BUNDLE trusting pebble.
	Env []string
}

// NewCertbot returns a Certbot with fresh directories that talks to p.
func NewCertbot(t testing.TB, p *Pebble) *Certbot {
	t.Helper()
	bin := RequireTool(t, "certbot")
	dir := t.TempDir()
	c := &Certbot{
		Command:   []string{bin},
		ConfigDir: filepath.Join(dir, "config"),
		WorkDir:   filepath.Join(dir, "work"),
		LogsDir:   filepath.Join(dir, "logs"),
		Webroot:   filepath.Join(dir, "webroot"),
		Server:    p.DirectoryURL,
		Env:       []string{"REQUESTS_CA_BUNDLE=" + p.CABundle},
	}
	for _, d := range []string{c.ConfigDir, c.WorkDir, c.LogsDir, c.Webroot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("testenv: create certbot directory: %v", err)
		}
	}
	return c
}

// IssueArgs returns the full argv of a bare, non-interactive
// "certbot certonly --webroot" for the certificate name and domains.
func (c *Certbot) IssueArgs(name string, domains ...string) []string {
	argv := append([]string(nil), c.Command...)
	argv = append(argv,
		"certonly", "-n", "--agree-tos", "--register-unsafely-without-email",
		"--server", c.Server,
		"--config-dir", c.ConfigDir,
		"--work-dir", c.WorkDir,
		"--logs-dir", c.LogsDir,
		"--webroot", "-w", c.Webroot,
		"--cert-name", name,
	)
	for _, d := range domains {
		argv = append(argv, "-d", d)
	}
	return argv
}

// Issue obtains the certificate name for domains with a bare certbot run
// (IssueArgs), the floor that sitesync's own issuance is measured against,
// and fails the test if certbot fails or LiveDir(name)/cert.pem is missing.
func (c *Certbot) Issue(t testing.TB, name string, domains ...string) {
	t.Helper()
	if len(domains) == 0 {
		t.Fatalf("testenv: certbot issue %q: no domains", name)
	}
	argv := c.IssueArgs(name, domains...)
	out, err := runCmd(c.WorkDir, c.Env, argv...)
	if err != nil {
		t.Fatalf("testenv: certbot certonly %q: %v\n%s\n%s", name, err, out, c.logTail())
	}
	if _, err := os.Stat(filepath.Join(c.LiveDir(name), "cert.pem")); err != nil {
		t.Fatalf("testenv: certbot succeeded but left no certificate: %v\n%s", err, out)
	}
}

// LiveDir returns ConfigDir/live/<name>, holding cert.pem, chain.pem,
// fullchain.pem and privkey.pem once the certificate is issued.
func (c *Certbot) LiveDir(name string) string {
	return filepath.Join(c.ConfigDir, "live", name)
}

// logTail returns the end of certbot's log for failure messages.
func (c *Certbot) logTail() string {
	b, err := os.ReadFile(filepath.Join(c.LogsDir, "letsencrypt.log"))
	if err != nil {
		return "(no certbot log: " + err.Error() + ")"
	}
	return "certbot log:\n" + tail(string(b), 4000)
}
