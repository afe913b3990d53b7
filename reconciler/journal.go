package reconciler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// The journal makes every apply recoverable. Before a pass changes the
// first file it records, for every file it is about to write or delete,
// what the file held (or that it did not exist), and fsyncs that record.
// Once the test command accepted the new files (or they were put back),
// the journal is removed. A journal found at the start of a pass means an
// earlier pass died between writing and testing: its files are put back as
// the journal says, so what is on disk is again a configuration that
// passed the test, and the pass then converges as usual.
type journal struct {
	Pass    string         `json:"pass"`
	Entries []journalEntry `json:"entries"`
}

type journalEntry struct {
	Path    string `json:"path"`
	Existed bool   `json:"existed"`
	Old     []byte `json:"old,omitempty"`
}

func (r *Reconciler) journalPath() string {
	return filepath.Join(r.cfg.Reconcile.StateDir, "journal.json")
}

// writeJournal records the undo information of a pass durably.
func (r *Reconciler) writeJournal(p *pass) error {
	j := journal{Pass: p.res.ID}
	for _, u := range p.undo {
		j.Entries = append(j.Entries, journalEntry{Path: u.path, Existed: u.existed, Old: u.old})
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(r.journalPath(), b, 0o600, renameio.WithTempDir(r.cfg.Reconcile.StateDir)); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	return syncDir(r.cfg.Reconcile.StateDir)
}

// clearJournal removes the journal once the pass's files are settled.
func (r *Reconciler) clearJournal() error {
	if err := os.Remove(r.journalPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear journal: %w", err)
	}
	return syncDir(r.cfg.Reconcile.StateDir)
}

// recover puts back the files of an interrupted pass, if there was one, and
// says how many it restored.
func (r *Reconciler) recover() (pass string, restored int, err error) {
	b, err := os.ReadFile(r.journalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("read journal: %w", err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		// A journal is written atomically, so a corrupt one is not ours to
		// guess about: stop and say so.
		return "", 0, fmt.Errorf("journal %s is corrupt (%v); inspect the managed directories, then remove it", r.journalPath(), err)
	}
	var errs []error
	for i := len(j.Entries) - 1; i >= 0; i-- {
		e := j.Entries[i]
		if err := restoreFile(e.Path, e.Existed, e.Old); err != nil {
			errs = append(errs, err)
			continue
		}
		restored++
	}
	if len(errs) > 0 {
		return j.Pass, restored, fmt.Errorf("recover interrupted pass %s: %w", j.Pass, errors.Join(errs...))
	}
	if err := r.syncDirs(); err != nil {
		return j.Pass, restored, err
	}
	return j.Pass, restored, r.clearJournal()
}

// restoreFile puts one file back: old bytes, or no file.
func restoreFile(path string, existed bool, old []byte) error {
	if existed {
		if cur, err := os.ReadFile(path); err == nil && string(cur) == string(old) {
			return nil
		}
		if err := renameio.WriteFile(path, old, 0o644, renameio.WithTempDir(filepath.Dir(path))); err != nil {
			return fmt.Errorf("restore %s: %w", path, err)
		}
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
