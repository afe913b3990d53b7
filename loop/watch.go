package loop

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sitesync/sitesync/reconciler"
)

// WatchOptions says what Watch looks at.
type WatchOptions struct {
	// ConfDir and SnippetsDir are the managed directories.
	ConfDir, SnippetsDir string
	// LiveDir is certbot's <config_dir>/live ("" for none); its
	// per-certificate subdirectories are watched too.
	LiveDir string
	// Debounce is how long to wait for more events before triggering [1s].
	Debounce time.Duration
}

// Watch triggers a pass when someone edits, deletes or adds a file in the
// watched directories, debounced. The loop's own writes do not trigger
// passes: an event on a file the last pass wrote or deleted is ignored when
// the file still is exactly what the pass left (same bytes, or still
// absent), so a hand edit right after a pass is seen while the pass's own
// events are not; events in the live directory during a pass (certbot is
// run by the pass) are ignored too. Directories that do not exist yet are
// picked up after a later pass creates them. Watch blocks until ctx is
// done.
func (l *Loop) Watch(ctx context.Context, o WatchOptions) error {
	if o.Debounce <= 0 {
		o.Debounce = time.Second
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer fw.Close()
	w := &watcher{l: l, fw: fw, o: o, watched: map[string]bool{}, own: map[string]ownFile{}, again: make(chan struct{}, 1)}
	w.addMissing()
	l.mu.Lock()
	l.afterPass = append(l.afterPass, w.passDone)
	l.mu.Unlock()

	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if w.relevant(ev) {
				fire = time.After(o.Debounce)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			l.log.Warn("file watcher error; the resync timer still repairs drift", "err", err)
		case <-fire:
			fire = nil
			l.Trigger(Trigger{Source: SourceFsnotify})
		case <-w.again:
			w.addMissing()
		}
	}
}

// watcher holds Watch's state. passDone runs on the loop's goroutine, the
// rest on Watch's.
type watcher struct {
	l  *Loop
	fw *fsnotify.Watcher
	o  WatchOptions

	mu      sync.Mutex
	watched map[string]bool
	own     map[string]ownFile // what the last pass left at each path it touched
	during  []string           // paths changed during a pass, judged when it ends
	judged  uint64             // the last pass passDone ran for
	again   chan struct{}      // look for directories that appeared
}

// ownFile is what a pass left at a path: these bytes, or no file.
type ownFile struct {
	sum    [sha256.Size]byte
	exists bool
}

// isOwn reports whether path still holds exactly what the last pass left.
// Called with w.mu held.
func (w *watcher) isOwn(path string) bool {
	want, ok := w.own[path]
	if !ok {
		return false
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return !want.exists
	}
	return err == nil && want.exists && sha256.Sum256(b) == want.sum
}

// addMissing starts watching the directories that exist now.
func (w *watcher) addMissing() {
	var dirs []string
	for _, d := range []string{w.o.ConfDir, w.o.SnippetsDir} {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if w.o.LiveDir != "" {
		dirs = append(dirs, w.o.LiveDir)
		if entries, err := os.ReadDir(w.o.LiveDir); err == nil {
			for _, e := range entries {
				if e.IsDir() {
					dirs = append(dirs, filepath.Join(w.o.LiveDir, e.Name()))
				}
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range dirs {
		if w.watched[d] {
			continue
		}
		if err := w.fw.Add(d); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				w.l.log.Warn("cannot watch directory", "dir", d, "err", err)
			}
			continue
		}
		w.watched[d] = true
	}
}

// relevant says whether ev should trigger a pass (after the debounce).
func (w *watcher) relevant(ev fsnotify.Event) bool {
	name := filepath.Base(ev.Name)
	if strings.HasPrefix(name, ".") {
		return false // temporary files of atomic writes
	}
	inLive := w.o.LiveDir != "" && strings.HasPrefix(ev.Name, w.o.LiveDir+string(filepath.Separator))
	if inLive && ev.Has(fsnotify.Create) && filepath.Dir(ev.Name) == w.o.LiveDir {
		// A new certificate directory: watch it too.
		w.signalRecheck()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watched[ev.Name] && ev.Has(fsnotify.Remove) {
		delete(w.watched, ev.Name)
	}
	// Between passDone and the loop clearing its running flag the pass's
	// events are already judged: an event then is judged now, or it would
	// wait in during for the next pass.
	if running, seq := w.l.passState(); running && seq != w.judged {
		if !inLive {
			w.during = append(w.during, ev.Name)
		}
		return false
	}
	return !w.isOwn(ev.Name)
}

func (w *watcher) signalRecheck() {
	select {
	case w.again <- struct{}{}:
	default:
	}
}

// passDone learns what the pass left in the files it touched, and judges
// the events that arrived while it ran.
func (w *watcher) passDone(res *reconciler.Result) {
	own := map[string]ownFile{}
	if res != nil {
		for _, a := range res.Plan {
			if a.Kind != reconciler.ActionWrite && a.Kind != reconciler.ActionDelete {
				continue
			}
			dir := w.o.ConfDir
			if a.Dir == reconciler.DirSnippets {
				dir = w.o.SnippetsDir
			}
			f := ownFile{exists: a.Kind == reconciler.ActionWrite}
			if f.exists {
				f.sum = sha256.Sum256(a.New)
			}
			own[filepath.Join(dir, a.Name)] = f
		}
	}
	_, seq := w.l.passState()
	w.mu.Lock()
	w.judged = seq
	if res != nil && res.Written+res.Deleted > 0 {
		w.own = own
	}
	foreign := false
	for _, p := range w.during {
		if !w.isOwn(p) {
			foreign = true
		}
	}
	w.during = nil
	w.mu.Unlock()
	w.signalRecheck()
	if foreign {
		w.l.Trigger(Trigger{Source: SourceFsnotify})
	}
}
