package loop

import (
	"context"
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
	// Grace is how long after a pass events on the files it wrote are
	// still taken for its own [2s].
	Grace time.Duration
}

// Watch triggers a pass when someone edits, deletes or adds a file in the
// watched directories, debounced. The loop's own writes do not trigger
// passes: events on files a pass wrote or deleted, arriving during the pass
// or within the grace period after it, and events in the live directory
// during a pass (certbot is run by the pass) are ignored. Directories that
// do not exist yet are picked up after a later pass creates them. Watch
// blocks until ctx is done.
func (l *Loop) Watch(ctx context.Context, o WatchOptions) error {
	if o.Debounce <= 0 {
		o.Debounce = time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer fw.Close()
	w := &watcher{l: l, fw: fw, o: o, watched: map[string]bool{}, suppress: map[string]time.Time{}, again: make(chan struct{}, 1)}
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

	mu       sync.Mutex
	watched  map[string]bool
	suppress map[string]time.Time // path → ignore events until
	during   []string             // paths changed during a pass, judged when it ends
	again    chan struct{}        // look for directories that appeared
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
	if until, ok := w.suppress[ev.Name]; ok && time.Now().Before(until) {
		return false
	}
	if w.l.Running() {
		if !inLive {
			w.during = append(w.during, ev.Name)
		}
		return false
	}
	return true
}

func (w *watcher) signalRecheck() {
	select {
	case w.again <- struct{}{}:
	default:
	}
}

// passDone learns which files the pass wrote, and judges the events that
// arrived while it ran.
func (w *watcher) passDone(res *reconciler.Result) {
	until := time.Now().Add(w.o.Grace)
	own := map[string]bool{}
	if res != nil {
		for _, a := range res.Plan {
			if a.Kind != reconciler.ActionWrite && a.Kind != reconciler.ActionDelete {
				continue
			}
			dir := w.o.ConfDir
			if a.Dir == reconciler.DirSnippets {
				dir = w.o.SnippetsDir
			}
			own[filepath.Join(dir, a.Name)] = true
		}
	}
	w.mu.Lock()
	for p := range w.suppress {
		if time.Now().After(w.suppress[p]) {
			delete(w.suppress, p)
		}
	}
	for p := range own {
		w.suppress[p] = until
	}
	foreign := false
	for _, p := range w.during {
		if !own[p] {
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
