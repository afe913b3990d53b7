package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"github.com/sitesync/sitesync/command"
)

// ErrQuarantined is wrapped by the error of a site held at its last version
// that passed the test command, because its new version does not.
var ErrQuarantined = errors.New("held at its last version that passed nginx -t")

// quarantined is a site whose rendered file nginx rejected. As long as
// the site renders to the same bytes, sitesync does not try them again; a
// commit that changes the site clears it.
type quarantined struct {
	// Sum is the SHA-256 of the rejected file.
	Sum string `json:"sum"`
	// Error is nginx's complaint.
	Error    string    `json:"error"`
	Since    time.Time `json:"since"`
	Revision string    `json:"revision"`
}

func (r *Reconciler) quarantinePath() string {
	return filepath.Join(r.cfg.Reconcile.StateDir, "quarantine.json")
}

func (r *Reconciler) loadQuarantine() (map[string]quarantined, error) {
	q := map[string]quarantined{}
	b, err := os.ReadFile(r.quarantinePath())
	if errors.Is(err, fs.ErrNotExist) {
		return q, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &q); err != nil {
		return nil, fmt.Errorf("%s: %w", r.quarantinePath(), err)
	}
	return q, nil
}

func (r *Reconciler) saveQuarantine(q map[string]quarantined) error {
	if len(q) == 0 {
		if err := os.Remove(r.quarantinePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.MarshalIndent(q, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.cfg.Reconcile.StateDir, 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(r.quarantinePath(), b, 0o644, renameio.WithTempDir(r.cfg.Reconcile.StateDir))
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// quarantineError is a site's error while it is held.
func quarantineError(q quarantined) error {
	return Terminal(fmt.Errorf("%w (since %s, revision %s): %s", ErrQuarantined, q.Since.UTC().Format(time.RFC3339), shortRev(q.Revision), q.Error))
}

// holdQuarantined drops the writes of sites whose rendered file is the one
// nginx already rejected, and forgets quarantines that no longer apply.
// It returns whether the quarantine list changed.
func (r *Reconciler) holdQuarantined(p *pass) bool {
	q := p.obs.quarantine
	if len(q) == 0 {
		return false
	}
	before := maps.Clone(q)
	rendered := map[string]string{}
	for _, f := range p.out.Conf {
		if f.Site != "" {
			rendered[f.Site] = sum(f.Data)
		}
	}
	for site, e := range q {
		if got, ok := rendered[site]; !ok || got != e.Sum {
			delete(q, site) // fixed by a commit, or gone
		}
	}
	var kept Plan
	for _, a := range p.res.Plan {
		if e, ok := q[a.Site]; ok && a.Kind == ActionWrite && a.Dir == DirConf {
			r.failSite(p, a.Site, quarantineError(e))
			continue
		}
		kept = append(kept, a)
	}
	p.res.Plan = kept
	return !maps.Equal(before, q)
}

// nginxFileRe finds the file nginx names in an error ("... in /etc/nginx/conf.d/a.conf:12").
var nginxFileRe = regexp.MustCompile(`in (/\S+?):(\d+)`)

// attribute finds the site whose new file made the test command fail, and
// nginx's message. ok is false when the failure names no file this pass
// wrote for a site.
func (p *pass) attribute(err error) (site, msg string, ok bool) {
	var ce *command.Error
	out := err.Error()
	if errors.As(err, &ce) {
		out = ce.Output
	}
	for _, line := range strings.Split(out, "\n") {
		m := nginxFileRe.FindStringSubmatch(line)
		if m == nil || !strings.Contains(line, "[emerg]") {
			continue
		}
		// "2026/11/25 12:00:00 [emerg] 123#123: msg" or "nginx: [emerg] msg"
		msg := line[strings.Index(line, "[emerg]"):]
		if i := strings.Index(msg, ": "); i >= 0 && strings.Contains(msg[:i], "#") {
			msg = "[emerg] " + msg[i+2:]
		}
		msg = strings.TrimSpace(msg)
		for _, u := range p.undo {
			if u.path == m[1] && u.site != "" {
				return u.site, msg, true
			}
		}
		return "", msg, false
	}
	return "", "", false
}

// revertSite puts back the files this pass wrote for one site.
func (r *Reconciler) revertSite(p *pass, site string) error {
	var keep []undoEntry
	for _, u := range p.undo {
		if u.site != site {
			keep = append(keep, u)
			continue
		}
		if err := restoreFile(u.path, u.existed, u.old); err != nil {
			return err
		}
		if u.deleted {
			p.res.Deleted--
		} else {
			p.res.Written--
		}
	}
	p.undo = keep
	p.res.Plan = dropSiteFiles(p.res.Plan, site)
	return r.syncDirs()
}

func dropSiteFiles(plan Plan, site string) Plan {
	var out Plan
	for _, a := range plan {
		if a.Site == site && (a.Kind == ActionWrite || a.Kind == ActionDelete) {
			continue
		}
		out = append(out, a)
	}
	return out
}
