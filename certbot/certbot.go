package certbot

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sitesync/sitesync/command"
	"github.com/sitesync/sitesync/lock"
)

// Certbot runs certbot with one configuration. Its methods are safe for
// concurrent use. Issue never runs two certbots at once: it holds an
// exclusive lock (see LockFile) while certbot runs, so that a second
// issuance, in this process or another, waits instead of failing on
// certbot's own lock.
type Certbot struct {
	// Command is certbot's argv prefix, e.g. ["sudo", "certbot"].
	Command   []string
	ConfigDir string
	WorkDir   string
	LogsDir   string
	// Server is the ACME directory URL ("" = certbot's default).
	Server string
	// Email registers the account ("" = --register-unsafely-without-email).
	Email   string
	Webroot string
	// Env is extra environment (KEY=VALUE).
	Env []string
	// Timeout bounds one run (0 = only the context).
	Timeout time.Duration
	// LockFile is the file Issue takes an exclusive flock(2) on while
	// certbot runs. "" means <WorkDir>/.sitesync-certbot.lock
	// (DefaultLockName), or no lock at all when WorkDir is empty too. The
	// file and its directory are created if missing and the file is never
	// removed. When certbot runs through sudo, WorkDir usually belongs to
	// root: set LockFile to a file the sitesync user may create, such as
	// <state_dir>/certbot.lock, or Issue fails. Only processes that use the
	// same LockFile exclude each other; certbot's own runs (a systemd
	// renewal timer) are not held back by it.
	LockFile string
}

// Request asks for one certificate lineage.
type Request struct {
	// Name is the lineage name (--cert-name), the site name.
	Name string
	// Domains are the names the certificate must cover; the first is the
	// subject.
	Domains []string
	// Force renews even when certbot thinks the certificate is not due
	// (sitesync's renew window can be wider than certbot's).
	Force bool
}

// Args returns the argv that Issue runs for req.
func (c *Certbot) Args(req Request) []string {
	argv := slices.Clone(c.Command)
	argv = append(argv, "certonly", "--non-interactive", "--agree-tos",
		"--webroot", "-w", c.Webroot, "--cert-name", req.Name)
	for _, d := range req.Domains {
		argv = append(argv, "-d", d)
	}
	if req.Force {
		argv = append(argv, "--force-renewal")
	} else {
		argv = append(argv, "--keep-until-expiring")
	}
	if c.Server != "" {
		argv = append(argv, "--server", c.Server)
	}
	if c.Email != "" {
		argv = append(argv, "--email", c.Email)
	} else {
		argv = append(argv, "--register-unsafely-without-email")
	}
	for _, d := range []struct{ flag, dir string }{
		{"--config-dir", c.ConfigDir}, {"--work-dir", c.WorkDir}, {"--logs-dir", c.LogsDir},
	} {
		if d.dir != "" {
			argv = append(argv, d.flag, d.dir)
		}
	}
	return argv
}

// Issue obtains or renews the certificate req describes. The webroot is
// created if missing.
//
// Issue first takes the lock (see LockFile), waiting for as long as ctx
// allows; Timeout bounds the certbot run only, not the wait. A failure of
// certbot is a *command.Error carrying certbot's output (errors.As). When
// certbot's log (<LogsDir>/letsencrypt.log, if readable and written by
// this run) holds an ACME problem or an error response's Retry-After
// header, the error's text ends with them ("; certbot's log says: ..."),
// since certbot 2.1 on Python 3.11 prints "AttributeError: can't set
// attribute" instead of the CA's error; RetryAfter finds rate limits in
// that text. A wait for the lock cut short by ctx wraps ctx.Err().
func (c *Certbot) Issue(ctx context.Context, req Request) error {
	if len(c.Command) == 0 {
		return errors.New("certbot is disabled ([certbot] command is empty)")
	}
	if len(req.Domains) == 0 {
		return fmt.Errorf("certificate %s: no domains", req.Name)
	}
	if err := os.MkdirAll(c.Webroot, 0o755); err != nil {
		return fmt.Errorf("certbot webroot: %w", err)
	}
	if path := c.lockPath(); path != "" {
		release, err := lock.Wait(ctx, path)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("certificate %s: certbot %w", req.Name, err)
		}
		if err != nil {
			return fmt.Errorf("certificate %s: certbot %w (LockFile must name a file sitesync may create)", req.Name, err)
		}
		defer release()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("certificate %s: %w", req.Name, err)
	}
	start := time.Now()
	if _, err := command.Run(ctx, c.Args(req), c.Env, c.Timeout); err != nil {
		if detail := c.logDetail(start); detail != "" {
			return fmt.Errorf("certificate %s: %w; certbot's log says: %s", req.Name, err, detail)
		}
		return fmt.Errorf("certificate %s: %w", req.Name, err)
	}
	return nil
}

// Cert is what sitesync needs to know of a certificate in certbot's live
// directory.
type Cert struct {
	// Names are the certificate's DNS names, sorted.
	Names    []string
	NotAfter time.Time
}

// Read parses <configDir>/live/<name>/cert.pem. A missing certificate is
// reported with an error satisfying errors.Is(err, fs.ErrNotExist).
func Read(configDir, name string) (Cert, error) {
	path := filepath.Join(configDir, "live", name, "cert.pem")
	b, err := os.ReadFile(path)
	if err != nil {
		return Cert{}, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return Cert{}, fmt.Errorf("%s: no PEM certificate", path)
	}
	x, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return Cert{}, fmt.Errorf("%s: %w", path, err)
	}
	names := slices.Clone(x.DNSNames)
	slices.Sort(names)
	return Cert{Names: slices.Compact(names), NotAfter: x.NotAfter}, nil
}
