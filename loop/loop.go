package loop

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/sitesync/sitesync/reconciler"
)

// Source names what triggered a pass. The values are metric label values.
type Source string

// The trigger sources.
const (
	SourceWebhook  Source = "webhook"
	SourceTimer    Source = "timer"
	SourceFsnotify Source = "fsnotify"
	SourceStartup  Source = "startup"
	SourceManual   Source = "manual"
	SourceRetry    Source = "retry"
)

// Sources lists every trigger source.
var Sources = []Source{SourceWebhook, SourceTimer, SourceFsnotify, SourceStartup, SourceManual, SourceRetry}

// Reconciler runs one pass. Reconcile is never called concurrently by the
// loop; the Result must be non-nil even when err is not.
type Reconciler interface {
	Reconcile(ctx context.Context) (*reconciler.Result, error)
}

// Trigger is one reason to run a pass.
type Trigger struct {
	Source Source
	// Delivery is the webhook delivery id, if any.
	Delivery string
	// Commit is the commit the trigger is about, if known.
	Commit string
	// Ack, if set, is called once the pass covering the trigger finished.
	Ack func()
}

// Pass is what the loop reports after each pass.
type Pass struct {
	Result   *reconciler.Result
	Err      error
	Triggers []Trigger
}

// Sources returns the distinct trigger sources of the pass, sorted.
func (p Pass) Sources() []Source {
	var s []Source
	for _, t := range p.Triggers {
		if !slices.Contains(s, t.Source) {
			s = append(s, t.Source)
		}
	}
	slices.Sort(s)
	return s
}

// Options tune the loop. Zero values take the defaults in brackets.
type Options struct {
	// Interval is the resync period [5m]; each wait is jittered by ±Jitter
	// [10%] so a fleet of hosts does not resync in step.
	Interval time.Duration
	Jitter   float64
	// BackoffMin and BackoffMax bound the retry delay after a transient
	// failure [1s, 5m].
	BackoffMin, BackoffMax time.Duration
	// Settle is how long the loop waits for triggers to stop arriving
	// before it starts a pass [200ms], and MaxSettle the longest it waits
	// [2s]: a burst of pushes becomes one pass, not one per push. Startup,
	// timer and retry triggers do not wait.
	Settle, MaxSettle time.Duration
	// OnPass, if set, is called after every pass, from the loop's
	// goroutine, before the pass's triggers are acknowledged.
	OnPass func(ctx context.Context, p Pass)
	// OnTrigger, if set, is called for every trigger as it arrives.
	OnTrigger func(t Trigger)
}

// Loop runs passes. Create it with New; its methods are safe for
// concurrent use.
type Loop struct {
	r    Reconciler
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	pending []Trigger
	running bool
	seq     uint64 // passes started, the running one included
	wake    chan struct{}
	// afterPass is called with each pass's result, under no lock, before
	// OnPass (the file watcher uses it to tell its own writes from others').
	afterPass []func(*reconciler.Result)
}

// New returns a loop around r.
func New(r Reconciler, opts Options, log *slog.Logger) *Loop {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Minute
	}
	if opts.Jitter <= 0 {
		opts.Jitter = 0.1
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Minute
	}
	if opts.Settle <= 0 {
		opts.Settle = 200 * time.Millisecond
	}
	if opts.MaxSettle <= 0 {
		opts.MaxSettle = 2 * time.Second
	}
	return &Loop{r: r, opts: opts, log: log, wake: make(chan struct{}, 1)}
}

// Trigger marks the host dirty. It never blocks.
func (l *Loop) Trigger(t Trigger) {
	if l.opts.OnTrigger != nil {
		l.opts.OnTrigger(t)
	}
	l.mu.Lock()
	l.pending = append(l.pending, t)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Running reports whether a pass is in progress.
func (l *Loop) Running() bool {
	running, _ := l.passState()
	return running
}

// passState reports whether a pass is in progress and the number of the
// latest pass started (1 for the first).
func (l *Loop) passState() (running bool, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running, l.seq
}

// Run runs passes until ctx is done, starting with one for startup. A
// pass in progress when ctx is cancelled is finished safely by the
// reconciler (it never leaves a half-applied directory); Run returns after
// it.
func (l *Loop) Run(ctx context.Context) error {
	l.Trigger(Trigger{Source: SourceStartup})
	timer := time.NewTimer(l.jittered(l.opts.Interval))
	defer timer.Stop()
	var retry <-chan time.Time
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
		case <-timer.C:
			l.Trigger(Trigger{Source: SourceTimer})
			continue
		case <-retry:
			retry = nil
			l.Trigger(Trigger{Source: SourceRetry})
			continue
		}
		if !l.settle(ctx) {
			return nil
		}
		l.mu.Lock()
		batch := l.pending
		l.pending = nil
		l.running = len(batch) > 0
		if l.running {
			l.seq++
		}
		l.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		p := l.pass(ctx, batch)
		l.mu.Lock()
		l.running = false
		l.mu.Unlock()

		// Every pass is a full resync: the timer restarts from here.
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(l.jittered(l.opts.Interval))

		switch {
		case p.Err == nil:
			backoff, retry = 0, nil
		case reconciler.IsTerminal(p.Err):
			// Wait for the next commit; retrying cannot help.
			backoff, retry = 0, nil
		case ctx.Err() != nil:
			return nil
		default:
			backoff = l.nextBackoff(backoff)
			retry = time.After(l.jittered(backoff))
			l.log.Warn("pass failed; retrying", "pass", p.Result.ID, "in", backoff.Round(time.Millisecond), "err", p.Err)
		}
	}
}

// settle waits until no trigger arrived for Settle, or MaxSettle passed,
// unless a pending trigger needs no waiting. It returns false when ctx is
// done.
func (l *Loop) settle(ctx context.Context) bool {
	deadline := time.Now().Add(l.opts.MaxSettle)
	seen := -1
	for {
		l.mu.Lock()
		n := len(l.pending)
		urgent := slices.ContainsFunc(l.pending, func(t Trigger) bool {
			return t.Source == SourceStartup || t.Source == SourceTimer || t.Source == SourceRetry
		})
		l.mu.Unlock()
		if n == 0 || urgent || n == seen || !time.Now().Before(deadline) {
			return true
		}
		seen = n
		wait := min(l.opts.Settle, time.Until(deadline))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

func (l *Loop) pass(ctx context.Context, batch []Trigger) Pass {
	res, err := l.r.Reconcile(ctx)
	p := Pass{Result: res, Err: err, Triggers: batch}
	l.mu.Lock()
	hooks := slices.Clone(l.afterPass)
	l.mu.Unlock()
	for _, h := range hooks {
		h(res)
	}
	if l.opts.OnPass != nil {
		l.opts.OnPass(ctx, p)
	}
	for _, t := range batch {
		if t.Ack != nil {
			t.Ack()
		}
	}
	return p
}

func (l *Loop) nextBackoff(prev time.Duration) time.Duration {
	next := prev * 2
	if prev == 0 {
		next = l.opts.BackoffMin
	}
	return min(next, l.opts.BackoffMax)
}

// jittered returns d moved by a random amount within ±Jitter.
func (l *Loop) jittered(d time.Duration) time.Duration {
	j := (rand.Float64()*2 - 1) * l.opts.Jitter
	return time.Duration(float64(d) * (1 + j))
}
