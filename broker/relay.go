package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Outbox is where the relay takes messages from: the rows the webhook
// receiver wrote, in the same transaction as the webhook itself. It is
// implemented by the database store. Its methods are called from the
// relay's goroutines, one call at a time.
type Outbox interface {
	// PendingOutbox returns up to limit rows not marked sent, oldest
	// first. It may leave out rows that failed too often.
	PendingOutbox(ctx context.Context, limit int) ([]Pending, error)
	// MarkSent records that the rows are stored by the broker; they
	// must not be returned by PendingOutbox again.
	MarkSent(ctx context.Context, ids ...int64) error
	// MarkAttempt records a failed attempt to publish the rows, which
	// stay pending.
	MarkAttempt(ctx context.Context, ids ...int64) error
}

// Pending is one unsent outbox row.
type Pending struct {
	// ID identifies the row for MarkSent and MarkAttempt.
	ID int64
	// Body is the message to publish, as produced by Message.Marshal.
	Body []byte
}

// Publisher sends message bodies somewhere durable. Publish returns nil
// only once the message is safely stored (RabbitMQ: the publisher confirm
// ack); after an error the message may or may not have been stored. It
// must be safe for concurrent use. AMQP and Local implement it.
type Publisher interface {
	Publish(ctx context.Context, body []byte) error
}

// RelayOptions tunes a Relay. Zero values select the defaults.
type RelayOptions struct {
	// PollInterval is how often the outbox is read without a Notify, to
	// pick up rows recorded by other processes or left by failures.
	// Default: 2s.
	PollInterval time.Duration
	// BatchSize is how many rows are read at once. Default: 100.
	BatchSize int
	// Concurrency is how many publishes of a batch wait for their
	// confirm at the same time. Default: 16.
	Concurrency int
	// MinBackoff and MaxBackoff bound the delay after a failure (of the
	// outbox or of the publisher): it starts at MinBackoff and doubles up
	// to MaxBackoff, with jitter. Defaults: 100ms and 30s.
	MinBackoff, MaxBackoff time.Duration
}

// Relay defaults.
const (
	defaultPollInterval = 2 * time.Second
	defaultBatchSize    = 100
	defaultConcurrency  = 16
	defaultMinBackoff   = 100 * time.Millisecond
	defaultMaxBackoff   = 30 * time.Second
	// markTimeout bounds MarkSent and MarkAttempt, which run even after
	// Run's ctx is done so that confirmed rows are not published again.
	markTimeout = 10 * time.Second
)

// Relay moves outbox rows to a Publisher (the transactional outbox
// pattern): a row is marked sent only after the publisher confirmed it,
// so every recorded webhook reaches the broker at least once, whatever
// crashes. Run does the work; Notify may be called from any goroutine.
type Relay struct {
	outbox Outbox
	pub    Publisher
	log    *slog.Logger
	opts   RelayOptions
	notify chan struct{}
}

// NewRelay returns a relay from o to p. log may be nil.
func NewRelay(o Outbox, p Publisher, log *slog.Logger, opts RelayOptions) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = defaultPollInterval
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = defaultBatchSize
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = defaultConcurrency
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = defaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = defaultMaxBackoff
	}
	return &Relay{outbox: o, pub: p, log: log, opts: opts, notify: make(chan struct{}, 1)}
}

// Notify tells the relay that a row was recorded, so that Run relays it
// now instead of at the next poll. It never blocks; notifications that
// arrive while one is pending are merged.
func (r *Relay) Notify() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Run relays rows until ctx is done: at start, on Notify and every
// PollInterval it reads pending rows in batches, publishes them, marks the
// confirmed ones sent and the failed ones attempted, and keeps reading
// while batches come back full. After a failure it logs it and retries
// after a backoff that grows while failures repeat. It returns nil once
// ctx is done. Call Run once.
func (r *Relay) Run(ctx context.Context) error {
	bo := newBackoff(r.opts.MinBackoff, r.opts.MaxBackoff)
	poll := time.NewTicker(r.opts.PollInterval)
	defer poll.Stop()
	for {
		err := r.drain(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d := bo.next()
			r.log.Warn("outbox relay failed; retrying", "err", err, "retry_in", d)
			if !sleepCtx(ctx, d) {
				return nil
			}
			continue
		}
		bo.reset()
		select {
		case <-ctx.Done():
			return nil
		case <-r.notify:
		case <-poll.C:
		}
	}
}

// drain relays batches until the outbox has no more pending rows or
// something fails.
func (r *Relay) drain(ctx context.Context) error {
	for {
		rows, err := r.outbox.PendingOutbox(ctx, r.opts.BatchSize)
		if err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		sent, failed, perr := r.publish(ctx, rows)
		// Recording the outcome must survive a shutdown that begins
		// meanwhile: a confirmed row left pending is published again.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
		var errs []error
		if len(sent) > 0 {
			if err := r.outbox.MarkSent(mctx, sent...); err != nil {
				errs = append(errs, fmt.Errorf("mark %d outbox rows sent: %w", len(sent), err))
			}
		}
		if len(failed) > 0 {
			if err := r.outbox.MarkAttempt(mctx, failed...); err != nil {
				errs = append(errs, fmt.Errorf("mark %d outbox rows attempted: %w", len(failed), err))
			}
		}
		cancel()
		if perr != nil {
			errs = append([]error{perr}, errs...)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		if len(rows) < r.opts.BatchSize {
			return nil
		}
	}
}

// publish publishes rows, up to Concurrency at a time, and returns the ids
// of the confirmed and of the failed rows. After the first failure it
// starts no further publish: rows it did not try are in neither list.
// Rows whose publish failed only because ctx ended are in neither list
// either, so a shutdown does not count as an attempt.
func (r *Relay) publish(ctx context.Context, rows []Pending) (sent, failed []int64, err error) {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, r.opts.Concurrency)
	for _, row := range rows {
		sem <- struct{}{}
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			perr := r.pub.Publish(ctx, row.Body)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case perr == nil:
				sent = append(sent, row.ID)
			case ctx.Err() != nil:
				// Interrupted by shutdown: not an attempt.
			default:
				failed = append(failed, row.ID)
				if firstErr == nil {
					firstErr = fmt.Errorf("publish outbox row %d: %w", row.ID, perr)
				}
			}
		})
	}
	wg.Wait()
	return sent, failed, firstErr
}
