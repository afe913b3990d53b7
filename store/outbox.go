package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// idChunk bounds the ids in one IN list, well below the bind-parameter
// limits of SQLite and PostgreSQL.
const idChunk = 1000

// OutboxMessage is a message waiting to be published to the broker, written
// in the transaction that recorded its delivery. Publishing is
// at-least-once: a message whose publish succeeded but whose MarkSent did
// not is published again, so consumers deduplicate by DeliveryID.
type OutboxMessage struct {
	// ID orders the messages: lower ids were recorded earlier.
	ID int64
	// DeliveryID is the delivery the message is about.
	DeliveryID string
	// Body is the message to publish.
	Body []byte
	// CreatedAt is when the message was recorded.
	CreatedAt time.Time
	// Attempts counts the failed publishes so far.
	Attempts int
}

// outboxRow is the live model of the outbox table.
type outboxRow struct {
	ID         int64 `gorm:"primaryKey;autoIncrement"`
	DeliveryID string
	Body       []byte
	CreatedAt  time.Time
	SentAt     *time.Time
	Attempts   int
}

// TableName is the table of outbox messages.
func (outboxRow) TableName() string { return "outbox" }

// PendingOutbox is at most limit unsent messages, oldest first. It does not
// claim them: run one relay per database.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]OutboxMessage, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("store: pending outbox: limit %d is not positive", limit)
	}
	var rows []outboxRow
	err := s.db.WithContext(ctx).Where("sent_at IS NULL").Order("id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: pending outbox: %w", err)
	}
	msgs := make([]OutboxMessage, len(rows))
	for i, r := range rows {
		msgs[i] = OutboxMessage{
			ID:         r.ID,
			DeliveryID: r.DeliveryID,
			Body:       r.Body,
			CreatedAt:  r.CreatedAt.UTC(),
			Attempts:   r.Attempts,
		}
	}
	return msgs, nil
}

// MarkSent records that the messages ids were published. Messages already
// marked keep their first sent time; unknown ids are ignored.
func (s *Store) MarkSent(ctx context.Context, ids ...int64) error {
	sent := now()
	if err := s.updateIDs(ctx, ids, func(db *gorm.DB) *gorm.DB {
		return db.Where("sent_at IS NULL").Update("sent_at", sent)
	}); err != nil {
		return fmt.Errorf("store: mark sent: %w", err)
	}
	return nil
}

// MarkAttempt counts a failed publish of each of the messages ids. Unknown
// ids are ignored.
func (s *Store) MarkAttempt(ctx context.Context, ids ...int64) error {
	if err := s.updateIDs(ctx, ids, func(db *gorm.DB) *gorm.DB {
		return db.Update("attempts", gorm.Expr("attempts + 1"))
	}); err != nil {
		return fmt.Errorf("store: mark attempt: %w", err)
	}
	return nil
}

// updateIDs runs update on the outbox rows ids, a chunk of ids at a time,
// all in one transaction.
func (s *Store) updateIDs(ctx context.Context, ids []int64, update func(db *gorm.DB) *gorm.DB) error {
	if len(ids) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *gorm.DB) error {
		for len(ids) > 0 {
			n := min(len(ids), idChunk)
			if err := update(tx.Model(&outboxRow{}).Where("id IN ?", ids[:n])).Error; err != nil {
				return err
			}
			ids = ids[n:]
		}
		return nil
	})
}

// OutboxPending is the number of unsent messages.
func (s *Store) OutboxPending(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&outboxRow{}).Where("sent_at IS NULL").Count(&n).Error; err != nil {
		return 0, fmt.Errorf("store: count pending outbox: %w", err)
	}
	return n, nil
}

// PruneSent deletes the messages that were sent before olderThan and
// returns how many it deleted. It never deletes unsent messages.
func (s *Store) PruneSent(ctx context.Context, olderThan time.Time) (int64, error) {
	n, err := s.exec(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Where("sent_at IS NOT NULL AND sent_at < ?", dbTime(olderThan)).Delete(&outboxRow{})
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune sent outbox: %w", err)
	}
	return n, nil
}
