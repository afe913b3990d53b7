package broker

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff computes capped exponential delays with jitter. It is not safe
// for concurrent use; each loop owns one.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

// newBackoff returns a backoff starting at min and doubling up to max.
func newBackoff(minDelay, maxDelay time.Duration) *backoff {
	if minDelay <= 0 {
		minDelay = time.Millisecond
	}
	if maxDelay < minDelay {
		maxDelay = minDelay
	}
	return &backoff{min: minDelay, max: maxDelay}
}

// next returns the next delay: the current step, doubled after each call
// and capped at max, scaled by a random factor in [0.5, 1) ("equal
// jitter") so that many clients do not retry in lockstep.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

// reset makes the next delay start at min again.
func (b *backoff) reset() { b.cur = 0 }

// sleepCtx waits for d or until ctx is done, and reports whether the full
// delay elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
