package loop

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitesync/sitesync/reconciler"
)

// fakeReconciler counts passes; each pass runs fn (if set) and returns err.
type fakeReconciler struct {
	mu     sync.Mutex
	passes int
	fn     func(n int) (*reconciler.Result, error)
	done   chan int
}

func (f *fakeReconciler) Reconcile(ctx context.Context) (*reconciler.Result, error) {
	f.mu.Lock()
	f.passes++
	n := f.passes
	f.mu.Unlock()
	res, err := &reconciler.Result{ID: "p"}, error(nil)
	if f.fn != nil {
		res, err = f.fn(n)
	}
	if f.done != nil {
		f.done <- n
	}
	return res, err
}

func (f *fakeReconciler) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.passes
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBurstCollapsesIntoOneFollowUpPass(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	f := &fakeReconciler{fn: func(n int) (*reconciler.Result, error) {
		started <- struct{}{}
		if n == 1 {
			<-release
		}
		return &reconciler.Result{ID: "p"}, nil
	}}
	var acked atomic.Int64
	var passes []Pass
	var mu sync.Mutex
	l := New(f, Options{Interval: time.Hour, OnPass: func(_ context.Context, p Pass) {
		mu.Lock()
		passes = append(passes, p)
		mu.Unlock()
	}}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	<-started // the startup pass is running
	for range 1000 {
		l.Trigger(Trigger{Source: SourceWebhook, Ack: func() { acked.Add(1) }})
	}
	if acked.Load() != 0 {
		t.Fatal("acked before the covering pass ran")
	}
	close(release)
	waitFor(t, "1000 acks", func() bool { return acked.Load() == 1000 })
	time.Sleep(100 * time.Millisecond)
	if n := f.count(); n != 2 {
		t.Fatalf("passes = %d, want 2 (startup + one follow-up)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(passes[1].Triggers) != 1000 || passes[1].Sources()[0] != SourceWebhook || passes[0].Sources()[0] != SourceStartup {
		t.Fatalf("pass triggers: %d, %v / %v", len(passes[1].Triggers), passes[0].Sources(), passes[1].Sources())
	}
}

func TestTransientFailuresBackOffAndTerminalWaits(t *testing.T) {
	var terminal atomic.Bool
	f := &fakeReconciler{done: make(chan int, 100), fn: func(n int) (*reconciler.Result, error) {
		if terminal.Load() {
			return &reconciler.Result{ID: "p"}, reconciler.Terminal(errors.New("bad commit"))
		}
		if n < 4 {
			return &reconciler.Result{ID: "p"}, errors.New("network down")
		}
		return &reconciler.Result{ID: "p"}, nil
	}}
	var sources []Source
	var mu sync.Mutex
	l := New(f, Options{Interval: time.Hour, BackoffMin: 20 * time.Millisecond, BackoffMax: 40 * time.Millisecond,
		OnPass: func(_ context.Context, p Pass) { mu.Lock(); sources = append(sources, p.Sources()...); mu.Unlock() }}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	for range 4 {
		<-f.done
	}
	// f.done fires inside Reconcile, before the loop calls OnPass.
	waitFor(t, "four recorded passes", func() bool { mu.Lock(); defer mu.Unlock(); return len(sources) >= 4 })
	mu.Lock()
	if sources[1] != SourceRetry || sources[3] != SourceRetry {
		t.Fatalf("sources = %v, want retries after failures", sources)
	}
	mu.Unlock()
	// Success resets; a terminal failure is not retried.
	terminal.Store(true)
	l.Trigger(Trigger{Source: SourceManual})
	<-f.done
	time.Sleep(200 * time.Millisecond)
	if n := f.count(); n != 5 {
		t.Fatalf("passes = %d after a terminal failure, want 5 (no retry)", n)
	}
}

func TestTimerResyncs(t *testing.T) {
	f := &fakeReconciler{done: make(chan int, 100)}
	l := New(f, Options{Interval: 30 * time.Millisecond}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []Source
	var mu sync.Mutex
	l.opts.OnPass = func(_ context.Context, p Pass) { mu.Lock(); got = append(got, p.Sources()...); mu.Unlock() }
	go l.Run(ctx)
	for range 3 {
		<-f.done
	}
	cancel()
	waitFor(t, "three recorded passes", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 3 })
	mu.Lock()
	defer mu.Unlock()
	if got[1] != SourceTimer || got[2] != SourceTimer {
		t.Fatalf("sources = %v, want timer passes", got)
	}
}

func TestJitterStaysInBounds(t *testing.T) {
	l := New(&fakeReconciler{}, Options{Interval: time.Minute, Jitter: 0.1}, quiet())
	seen := map[time.Duration]bool{}
	for range 200 {
		d := l.jittered(time.Minute)
		if d < 54*time.Second || d > 66*time.Second {
			t.Fatalf("jittered = %v", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatal("no jitter")
	}
}

// TestWatchIgnoresOwnWritesAndSeesOthers uses real fsnotify: a pass that
// writes files does not cause another pass, a hand edit does.
func TestWatchIgnoresOwnWritesAndSeesOthers(t *testing.T) {
	conf, snippets, live := t.TempDir(), t.TempDir(), t.TempDir()
	f := &fakeReconciler{done: make(chan int, 100)}
	f.fn = func(n int) (*reconciler.Result, error) {
		// Every pass rewrites a.conf the way the reconciler does.
		tmp := filepath.Join(conf, ".a.conf123")
		os.WriteFile(tmp, []byte("x"), 0o644)
		os.Rename(tmp, filepath.Join(conf, "a.conf"))
		return &reconciler.Result{ID: "p", Written: 1, Plan: reconciler.Plan{{Kind: reconciler.ActionWrite, Dir: reconciler.DirConf, Name: "a.conf", New: []byte("x")}}}, nil
	}
	l := New(f, Options{Interval: time.Hour}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Watch(ctx, WatchOptions{ConfDir: conf, SnippetsDir: snippets, LiveDir: live, Debounce: 50 * time.Millisecond})
	waitFor(t, "the watcher to hook into the loop", watcherStarted(l))
	go l.Run(ctx)
	<-f.done
	time.Sleep(400 * time.Millisecond)
	if n := f.count(); n != 1 {
		t.Fatalf("own write caused %d passes, want 1", n)
	}
	// A hand edit of the file the pass just wrote triggers a pass at once,
	// and so does a new file.
	for _, name := range []string{"a.conf", "b.conf"} {
		if err := os.WriteFile(filepath.Join(conf, name), []byte("hand"), 0o644); err != nil {
			t.Fatal(err)
		}
		select {
		case <-f.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("hand edit of %s did not trigger a pass", name)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// A new certificate directory is watched, and a change in it triggers.
	time.Sleep(700 * time.Millisecond)
	os.Mkdir(filepath.Join(live, "site"), 0o755)
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		t.Fatal("new live directory did not trigger a pass")
	}
	time.Sleep(700 * time.Millisecond)
	os.WriteFile(filepath.Join(live, "site", "cert.pem"), []byte("c"), 0o644)
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		t.Fatal("certificate change did not trigger a pass")
	}
}

// TestTriggersSpreadOverTimeSettleIntoOnePass sends 1,000 triggers over
// about half a second, as a burst of webhook deliveries arrives, while the
// loop is idle: they must become one pass.
func TestTriggersSpreadOverTimeSettleIntoOnePass(t *testing.T) {
	f := &fakeReconciler{done: make(chan int, 100)}
	// Gaps are 5 ms; Settle and MaxSettle are raised from 200 ms and 2 s
	// so that a loaded machine stalling the sender cannot split the burst.
	l := New(f, Options{Interval: time.Hour, Settle: time.Second, MaxSettle: time.Minute}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	<-f.done // startup
	var acked atomic.Int64
	for i := range 1000 {
		l.Trigger(Trigger{Source: SourceWebhook, Ack: func() { acked.Add(1) }})
		if i%10 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(t, "1000 acks", func() bool { return acked.Load() == 1000 })
	time.Sleep(300 * time.Millisecond)
	if n := f.count(); n != 2 {
		t.Fatalf("passes = %d, want 2 (startup + one for the burst)", n)
	}
}

// TestWatchSeesEditJustAfterPassDone edits a file after the watcher has
// judged a pass's events but before the loop clears its running flag:
// the edit must still trigger a pass, not wait for the next one.
func TestWatchSeesEditJustAfterPassDone(t *testing.T) {
	conf := t.TempDir()
	f := &fakeReconciler{done: make(chan int, 100)}
	l := New(f, Options{Interval: time.Hour}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Watch(ctx, WatchOptions{ConfDir: conf, Debounce: 50 * time.Millisecond})
	waitFor(t, "the watcher to hook into the loop", watcherStarted(l))
	var once sync.Once
	l.mu.Lock()
	l.afterPass = append(l.afterPass, func(*reconciler.Result) {
		once.Do(func() {
			os.WriteFile(filepath.Join(conf, "hand.conf"), []byte("hand"), 0o644)
			time.Sleep(300 * time.Millisecond) // the watcher sees the event now
		})
	})
	l.mu.Unlock()
	go l.Run(ctx)
	<-f.done // startup
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("an edit made as a pass ended did not trigger a pass")
	}
}

// watcherStarted reports whether Watch has added its directories and its
// hook: it does both before it reads events.
func watcherStarted(l *Loop) func() bool {
	return func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.afterPass) == 1 }
}
