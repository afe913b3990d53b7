package reconciler

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/renameio/v2"
)

// inventory is the list of files sitesync created and has not deleted
// ("conf.d/app.conf"), kept in the state directory. The marker line is
// how sitesync recognises its files; the inventory covers the one case the
// marker cannot: a file of ours that someone rewrote by hand without the
// marker. Such a file is still ours, and is reverted like any hand edit.
type inventory map[string]bool

func (r *Reconciler) inventoryPath() string {
	return filepath.Join(r.cfg.Reconcile.StateDir, "managed-files")
}

// loadInventory reads the inventory; a missing one is empty.
func (r *Reconciler) loadInventory() (inventory, error) {
	inv := inventory{}
	b, err := os.ReadFile(r.inventoryPath())
	if errors.Is(err, fs.ErrNotExist) {
		return inv, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			inv[line] = true
		}
	}
	return inv, sc.Err()
}

// saveInventory records the files the pass wrote and forgets those it
// deleted, if that changes the inventory.
func (r *Reconciler) saveInventory(p *pass) error {
	inv := p.obs.inventory
	changed := false
	for _, a := range p.res.Plan {
		key := string(a.Dir) + "/" + a.Name
		switch {
		case a.Kind == ActionWrite && !inv[key]:
			inv[key], changed = true, true
		case a.Kind == ActionDelete && inv[key]:
			delete(inv, key)
			changed = true
		}
	}
	// Files that carry the marker but were written before the inventory
	// existed are recorded too.
	for _, dir := range []struct {
		label Dir
		files map[string][]byte
	}{{DirConf, p.obs.Conf}, {DirSnippets, p.obs.Snippets}} {
		for name := range dir.files {
			if key := string(dir.label) + "/" + name; !inv[key] && !p.deleted(dir.label, name) {
				inv[key], changed = true, true
			}
		}
	}
	if !changed {
		return nil
	}
	keys := make([]string, 0, len(inv))
	for k := range inv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	data := []byte(strings.Join(keys, "\n") + "\n")
	return renameio.WriteFile(r.inventoryPath(), data, 0o644, renameio.WithTempDir(r.cfg.Reconcile.StateDir))
}

func (p *pass) deleted(dir Dir, name string) bool {
	for _, a := range p.res.Plan {
		if a.Kind == ActionDelete && a.Dir == dir && a.Name == name {
			return true
		}
	}
	return false
}
