package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Delivery is one GitHub webhook delivery.
type Delivery struct {
	// ID is the X-GitHub-Delivery header, unique per delivery.
	ID string
	// Event is the X-GitHub-Event header, such as "push".
	Event string
	// Repository is the full name of the repository, "owner/name".
	Repository string
	// Ref is the ref that was pushed, such as "refs/heads/main".
	Ref string
	// HeadCommit is the commit the ref points to after the push.
	HeadCommit string
	// ReceivedAt is when sitesync received the delivery. RecordDelivery
	// sets it to the current time when it is zero.
	ReceivedAt time.Time
}

// deliveryRow is the live model of the deliveries table.
type deliveryRow struct {
	ID         string `gorm:"primaryKey"`
	Event      string
	Repository string
	Ref        string
	HeadCommit string
	ReceivedAt time.Time
}

// TableName is the table of deliveries.
func (deliveryRow) TableName() string { return "deliveries" }

// delivery converts r to a Delivery.
func (r deliveryRow) delivery() Delivery {
	return Delivery{
		ID:         r.ID,
		Event:      r.Event,
		Repository: r.Repository,
		Ref:        r.Ref,
		HeadCommit: r.HeadCommit,
		ReceivedAt: r.ReceivedAt.UTC(),
	}
}

// RecordDelivery stores d and, in the same transaction, an outbox row whose
// body is msg. If a delivery with d.ID is stored already, it writes nothing
// and returns duplicate true with a nil error; of any number of concurrent
// calls with the same id, exactly one returns duplicate false.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery, msg []byte) (duplicate bool, err error) {
	if d.ID == "" {
		return false, errors.New("store: record delivery: empty delivery id")
	}
	received := now()
	if !d.ReceivedAt.IsZero() {
		received = dbTime(d.ReceivedAt)
	}
	if msg == nil {
		msg = []byte{}
	}
	row := deliveryRow{
		ID:         d.ID,
		Event:      d.Event,
		Repository: d.Repository,
		Ref:        d.Ref,
		HeadCommit: d.HeadCommit,
		ReceivedAt: received,
	}
	out := outboxRow{DeliveryID: d.ID, Body: msg, CreatedAt: now()}
	if s.dialect == dialectPostgres {
		duplicate, err = s.recordDeliveryPostgres(ctx, row, out)
	} else {
		duplicate, err = s.recordDeliveryTx(ctx, row, out)
	}
	if err != nil {
		return false, fmt.Errorf("store: record delivery %q: %w", d.ID, err)
	}
	return duplicate, nil
}

// recordDeliveryTx inserts the delivery unless its id exists, and then its
// outbox row, in a transaction.
func (s *Store) recordDeliveryTx(ctx context.Context, row deliveryRow, out outboxRow) (duplicate bool, err error) {
	err = s.write(ctx, func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoNothing: true}).Create(&row)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			duplicate = true
			return nil
		}
		return tx.Create(&out).Error
	})
	return duplicate, err
}

// recordDeliveryPostgres is recordDeliveryTx in one statement, so one round
// trip, which is atomic like a transaction: the outbox row is inserted from
// what the delivery insert returned, nothing when its id existed. It makes
// RecordDelivery about two and a half times as fast one caller at a time
// (see BenchmarkRecordDelivery). A concurrent insert of the same id waits
// for the first to commit and then inserts nothing.
func (s *Store) recordDeliveryPostgres(ctx context.Context, row deliveryRow, out outboxRow) (duplicate bool, err error) {
	n, err := s.exec(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Exec(`WITH d AS (
	INSERT INTO deliveries (id, event, repository, ref, head_commit, received_at)
	VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO NOTHING
	RETURNING id
)
INSERT INTO outbox (delivery_id, body, created_at, attempts)
SELECT id, ?, ?, 0 FROM d`,
			row.ID, row.Event, row.Repository, row.Ref, row.HeadCommit, row.ReceivedAt,
			out.Body, out.CreatedAt)
	})
	return n == 0 && err == nil, err
}

// LastDelivery is the delivery received last, or nil if there is none.
func (s *Store) LastDelivery(ctx context.Context) (*Delivery, error) {
	var rows []deliveryRow
	err := s.db.WithContext(ctx).Order("received_at DESC").Order("id DESC").Limit(1).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: last delivery: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	d := rows[0].delivery()
	return &d, nil
}
