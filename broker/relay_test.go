package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRelayPublishesAndMarksSent(t *testing.T) {
	t.Parallel()
	url := newVhost(t)
	pub, _ := startAMQP(t, url)
	host, _ := startAMQP(t, url)
	got := collect(consume(t, host, "host-a"))

	ob := &memOutbox{}
	want := ids("relay", 250) // more than two batches
	for _, id := range want {
		_, body := testMessage(t, id)
		ob.add(body)
	}
	runRelay(t, NewRelay(ob, pub, testLogger(t), RelayOptions{PollInterval: time.Hour}))

	waitUntil(t, 30*time.Second, "every row marked sent", func() bool {
		_, pending, _, _, _ := ob.state()
		return pending == 0
	})
	got.waitFor(t, want, 20*time.Second)
	if _, _, attempted, _, markAttempt := ob.state(); attempted != 0 || markAttempt != 0 {
		t.Errorf("%d rows attempted, %d MarkAttempt calls, want none", attempted, markAttempt)
	}
}

// gatedPublisher confirms a publish only when the test lets it.
type gatedPublisher struct {
	release chan struct{}
	calls   atomic.Int64
}

// Publish implements Publisher.
func (p *gatedPublisher) Publish(ctx context.Context, _ []byte) error {
	p.calls.Add(1)
	select {
	case <-p.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestRelayMarksSentOnlyAfterConfirm(t *testing.T) {
	t.Parallel()
	ob := &memOutbox{}
	_, body := testMessage(t, "gated")
	id := ob.add(body)
	p := &gatedPublisher{release: make(chan struct{})}
	runRelay(t, NewRelay(ob, p, testLogger(t), RelayOptions{PollInterval: time.Hour}))

	waitUntil(t, 5*time.Second, "the publish to start", func() bool { return p.calls.Load() > 0 })
	time.Sleep(200 * time.Millisecond)
	if sent, _ := ob.isSent(id); sent {
		t.Fatal("row marked sent before the publisher confirmed it")
	}
	close(p.release)
	waitUntil(t, 5*time.Second, "the row marked sent", func() bool { sent, _ := ob.isSent(id); return sent })
}

// flakyPublisher fails while failing is set and records when it was
// called.
type flakyPublisher struct {
	failing atomic.Bool
	mu      sync.Mutex
	calls   []time.Time
	next    Publisher
}

// Publish implements Publisher.
func (p *flakyPublisher) Publish(ctx context.Context, body []byte) error {
	p.mu.Lock()
	p.calls = append(p.calls, time.Now())
	p.mu.Unlock()
	if p.failing.Load() {
		return errInjected
	}
	return p.next.Publish(ctx, body)
}

// callTimes returns when Publish was called.
func (p *flakyPublisher) callTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func TestRelayKeepsRowsPendingWhilePublisherFails(t *testing.T) {
	t.Parallel()
	local := NewLocal(100)
	p := &flakyPublisher{next: local}
	p.failing.Store(true)
	ob := &memOutbox{}
	for _, id := range ids("flaky", 5) {
		_, body := testMessage(t, id)
		ob.add(body)
	}
	r := NewRelay(ob, p, testLogger(t), RelayOptions{
		PollInterval: 10 * time.Millisecond, // backoff, not polling, must pace the retries
		Concurrency:  1,
		MinBackoff:   20 * time.Millisecond,
		MaxBackoff:   160 * time.Millisecond,
	})
	runRelay(t, r)

	waitUntil(t, 10*time.Second, "six failed attempts", func() bool { return len(p.callTimes()) >= 6 })
	sent, pending, attempted, markSent, markAttempt := ob.state()
	if sent != 0 || pending != 5 || markSent != 0 {
		t.Fatalf("while failing: %d sent, %d pending, %d MarkSent calls; want 0, 5, 0", sent, pending, markSent)
	}
	if attempted == 0 || markAttempt == 0 {
		t.Fatalf("while failing: %d rows attempted, %d MarkAttempt calls; want some", attempted, markAttempt)
	}
	// With Concurrency 1 each round tries one row, then backs off: the
	// gaps grow (jitter keeps each in [d/2, d]) instead of following the
	// 10ms poll.
	calls := p.callTimes()
	if gap := calls[5].Sub(calls[4]); gap < 40*time.Millisecond {
		t.Errorf("fifth retry came %v after the fourth; want the backoff (>= 40ms) to apply", gap)
	}

	p.failing.Store(false)
	waitUntil(t, 10*time.Second, "every row sent after recovery", func() bool {
		_, pending, _, _, _ := ob.state()
		return pending == 0
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ds, _ := local.Consume(ctx, "")
	for range 5 {
		if d := receive(t, ds, 5*time.Second); d.Message.Repository != "acme/sites" {
			t.Fatalf("unexpected message %+v", d.Message)
		}
	}
}

func TestRelayRetriesOutboxErrors(t *testing.T) {
	t.Parallel()
	ob := &memOutbox{failRead: errInjected}
	_, body := testMessage(t, "db-down")
	id := ob.add(body)
	r := NewRelay(ob, NewLocal(10), testLogger(t), RelayOptions{PollInterval: time.Hour, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	runRelay(t, r)
	time.Sleep(100 * time.Millisecond)
	ob.mu.Lock()
	ob.failRead = nil
	ob.mu.Unlock()
	// No Notify: the backoff retry, not the hour-long poll, finds it.
	waitUntil(t, 5*time.Second, "the row sent once the outbox works", func() bool { sent, _ := ob.isSent(id); return sent })
}

func TestRelayNotifyLatency(t *testing.T) {
	t.Parallel()
	url := newVhost(t)
	pub, _ := startAMQP(t, url)
	ob := &memOutbox{}
	r := NewRelay(ob, pub, testLogger(t), RelayOptions{PollInterval: time.Hour})
	runRelay(t, r)
	time.Sleep(100 * time.Millisecond) // let the first, empty drain finish

	var lat []time.Duration
	for i := range 20 {
		_, body := testMessage(t, fmt.Sprint("latency-", i))
		start := time.Now()
		id := ob.add(body)
		r.Notify()
		r.Notify() // merged, never blocks
		var at time.Time
		waitUntil(t, 5*time.Second, "the notified row sent", func() bool {
			var sent bool
			sent, at = ob.isSent(id)
			return sent
		})
		lat = append(lat, at.Sub(start))
	}
	slices.Sort(lat)
	t.Logf("Notify → MarkSent (confirmed publish): median %v, max %v", lat[len(lat)/2], lat[len(lat)-1])
	if lat[len(lat)/2] > 500*time.Millisecond {
		t.Errorf("median latency %v; want far below the poll interval", lat[len(lat)/2])
	}
}

func TestRelayNotifyNeverBlocks(t *testing.T) {
	t.Parallel()
	r := NewRelay(&memOutbox{}, NewLocal(1), nil, RelayOptions{})
	done := make(chan struct{})
	go func() {
		for range 1000 {
			r.Notify()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify blocked without a running relay")
	}
}
