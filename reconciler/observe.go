package reconciler

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/render"
	"github.com/sitesync/sitesync/state"
)

// Observed is the actual state of the host as one pass saw it.
type Observed struct {
	// Conf and Snippets map the names of managed files (those carrying
	// sitesync's marker) to their bytes.
	Conf, Snippets map[string][]byte
	// Unmanaged lists the files in the managed directories that sitesync
	// did not create ("conf.d/x.conf"), sorted. They are never touched.
	Unmanaged []string
	// Certs holds the certificates found for the desired TLS sites, by
	// site name; a site missing here has no certificate.
	Certs map[string]certbot.Cert
	// ReloadPending is true when an earlier pass changed files but did not
	// complete its reload.
	ReloadPending bool

	unmanaged  map[string]bool // "dir/name"
	inventory  inventory
	quarantine map[string]quarantined
}

// observe reads the managed directories, the certificates of the desired
// TLS sites and the pending-reload marker.
func (r *Reconciler) observe(d *state.Desired) (*Observed, error) {
	o := &Observed{unmanaged: map[string]bool{}, Certs: map[string]certbot.Cert{}}
	var err error
	if o.inventory, err = r.loadInventory(); err != nil {
		return nil, fmt.Errorf("observe: %w", err)
	}
	if o.quarantine, err = r.loadQuarantine(); err != nil {
		return nil, fmt.Errorf("observe: %w", err)
	}
	if o.Conf, err = r.readManaged(r.cfg.Nginx.ConfDir, DirConf, o); err != nil {
		return nil, err
	}
	if o.Snippets, err = r.readManaged(r.cfg.Nginx.SnippetsDir, DirSnippets, o); err != nil {
		return nil, err
	}
	for _, s := range d.Sites {
		if s.TLS != state.TLSLetsEncrypt {
			continue
		}
		c, err := certbot.Read(r.cfg.Certbot.ConfigDir, s.Name)
		switch {
		case err == nil:
			o.Certs[s.Name] = c
		case errors.Is(err, fs.ErrNotExist):
		default:
			// An unreadable or corrupt certificate counts as missing, so
			// a pass reissues it; say why.
			r.log.Warn("unreadable certificate counts as missing", "site", s.Name, "err", err)
		}
	}
	if _, err := os.Stat(r.reloadMarker()); err == nil {
		o.ReloadPending = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("observe: %w", err)
	}
	return o, nil
}

// readManaged returns the managed files of dir by name, and records the
// unmanaged ones in o. A missing directory is empty. Hidden files (such as
// the temporary files of an interrupted write) are neither: nginx's
// *.conf includes do not match them.
func (r *Reconciler) readManaged(dir string, label Dir, o *Observed) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("observe %s: %w", label, err)
	}
	files := make(map[string][]byte, len(entries))
	var hidden []string
	present := make(map[string]bool, len(entries))
	now := r.now()
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			hidden = append(hidden, name)
			continue
		}
		if !e.Type().IsRegular() {
			o.addUnmanaged(label, name)
			continue
		}
		present[name] = true
		b, err := r.stat.read(filepath.Join(dir, name), now)
		if err != nil {
			return nil, fmt.Errorf("observe %s: %w", label, err)
		}
		if h, ok := render.ParseHeader(b); ok && h.Name == managedName(h, name) {
			files[name] = b
			continue
		}
		if o.inventory[string(label)+"/"+name] {
			// Ours, rewritten by hand without the marker.
			files[name] = b
			continue
		}
		o.addUnmanaged(label, name)
	}
	r.stat.prune(dir, present)
	r.removeStaleTemps(dir, label, hidden, files, o)
	return files, nil
}

// removeStaleTemps deletes the temporary files an interrupted atomic write
// of ours left behind: "." + the name of a file sitesync manages + the
// random digits the writer appends. Other hidden files are not ours and
// are left alone.
func (r *Reconciler) removeStaleTemps(dir string, label Dir, hidden []string, files map[string][]byte, o *Observed) {
	for _, h := range hidden {
		base := strings.TrimRight(h[1:], "0123456789")
		if base == h[1:] || base == "" {
			continue
		}
		if _, ours := files[base]; !ours && !o.inventory[string(label)+"/"+base] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, h)); err == nil {
			r.log.Info("removed the temporary file of an interrupted write", "file", string(label)+"/"+h)
		}
	}
}

// managedName returns the name a managed file with header h must have for
// its marker to count; a marker copied into another file does not make
// that file sitesync's.
func managedName(h render.Header, file string) string {
	if h.Kind == render.KindSite {
		return strings.TrimSuffix(file, ".conf")
	}
	return file
}

func (o *Observed) addUnmanaged(dir Dir, name string) {
	p := string(dir) + "/" + name
	o.unmanaged[p] = true
	o.Unmanaged = append(o.Unmanaged, p)
}

func (o *Observed) isUnmanaged(dir Dir, name string) bool { return o.unmanaged[string(dir)+"/"+name] }
