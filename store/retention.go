package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Pruned counts the rows one Prune deleted.
type Pruned struct {
	Deliveries, Outbox, Passes int64
}

// Total is the number of rows deleted.
func (p Pruned) Total() int64 { return p.Deliveries + p.Outbox + p.Passes }

// Prune deletes history older than before: deliveries received before it,
// outbox messages sent before it, and passes that finished before it. It
// never deletes an unsent outbox message, a delivery whose message is still
// in the outbox, or a pass still running. A delivery pruned this way is no longer recognised
// as a duplicate if GitHub redelivers it; the redelivery then costs one
// pass over an unchanged revision, which changes nothing.
//
// Each table is pruned in its own statement, so a cancelled ctx can leave
// some tables pruned and others not; the next Prune completes the job.
func (s *Store) Prune(ctx context.Context, before time.Time) (Pruned, error) {
	var p Pruned
	t := dbTime(before)
	var err error
	if p.Outbox, err = s.PruneSent(ctx, before); err != nil {
		return p, err
	}
	if p.Deliveries, err = s.exec(ctx, func(db *gorm.DB) *gorm.DB {
		// A delivery goes with its outbox message, never before it.
		queued := db.Session(&gorm.Session{NewDB: true}).Model(&outboxRow{}).Select("delivery_id")
		return db.Where("received_at < ? AND id NOT IN (?)", t, queued).Delete(&deliveryRow{})
	}); err != nil {
		return p, fmt.Errorf("store: prune deliveries: %w", err)
	}
	if p.Passes, err = s.exec(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Where("finished IS NOT NULL AND finished < ?", t).Delete(&passRow{})
	}); err != nil {
		return p, fmt.Errorf("store: prune passes: %w", err)
	}
	return p, nil
}
