package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Pass outcomes. A pass is recorded with OutcomeRunning when it starts and
// with one of the others when it ends.
const (
	OutcomeRunning = "running"
	OutcomeSuccess = "success"
	OutcomeNoop    = "noop"
	OutcomeError   = "error"
)

// Pass is one reconcile pass.
type Pass struct {
	// ID identifies the pass.
	ID string
	// Host is the host the pass reconciled.
	Host string
	// Started is when the pass began.
	Started time.Time
	// Finished is when the pass ended, zero while it runs.
	Finished time.Time
	// Triggers are what caused the pass, such as "webhook" and "timer".
	Triggers []string
	// Revision is the commit of the site repository the pass applied.
	Revision string
	// Actions is the number of actions the pass planned.
	Actions int
	// Written is the number of files the pass wrote.
	Written int
	// Deleted is the number of files the pass deleted.
	Deleted int
	// Issued is the number of certificates the pass issued.
	Issued int
	// IssueFailed is the number of certificates the pass failed to issue.
	IssueFailed int
	// Reloaded tells whether the pass reloaded nginx.
	Reloaded bool
	// Outcome is OutcomeRunning, OutcomeSuccess, OutcomeNoop or
	// OutcomeError.
	Outcome string
	// Error is what went wrong when Outcome is OutcomeError.
	Error string
	// Deliveries are the ids of the webhook deliveries the pass covered.
	Deliveries []string
}

// passRow is the live model of the passes table.
type passRow struct {
	ID          string `gorm:"primaryKey"`
	Host        string
	Started     time.Time
	Finished    *time.Time
	Triggers    string
	Revision    string
	Actions     int
	Written     int
	Deleted     int
	Issued      int
	IssueFailed int
	Reloaded    bool
	Outcome     string
	Error       string
	Deliveries  string
}

// TableName is the table of passes.
func (passRow) TableName() string { return "passes" }

// RecordPass stores p, replacing the pass with the same ID if there is one.
func (s *Store) RecordPass(ctx context.Context, p Pass) error {
	if p.ID == "" {
		return errors.New("store: record pass: empty pass id")
	}
	row, err := newPassRow(p)
	if err != nil {
		return fmt.Errorf("store: record pass %q: %w", p.ID, err)
	}
	_, err = s.exec(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, UpdateAll: true}).Create(&row)
	})
	if err != nil {
		return fmt.Errorf("store: record pass %q: %w", p.ID, err)
	}
	return nil
}

// RecentPasses is the n passes that started last, newest first.
func (s *Store) RecentPasses(ctx context.Context, n int) ([]Pass, error) {
	if n <= 0 {
		return nil, fmt.Errorf("store: recent passes: count %d is not positive", n)
	}
	var rows []passRow
	err := s.db.WithContext(ctx).Order("started DESC").Order("id DESC").Limit(n).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: recent passes: %w", err)
	}
	passes := make([]Pass, len(rows))
	for i, r := range rows {
		if passes[i], err = r.pass(); err != nil {
			return nil, fmt.Errorf("store: recent passes: pass %q: %w", r.ID, err)
		}
	}
	return passes, nil
}

// newPassRow converts p to its row.
func newPassRow(p Pass) (passRow, error) {
	triggers, err := encodeList(p.Triggers)
	if err != nil {
		return passRow{}, fmt.Errorf("encode triggers: %w", err)
	}
	deliveries, err := encodeList(p.Deliveries)
	if err != nil {
		return passRow{}, fmt.Errorf("encode deliveries: %w", err)
	}
	var finished *time.Time
	if !p.Finished.IsZero() {
		f := dbTime(p.Finished)
		finished = &f
	}
	return passRow{
		ID:          p.ID,
		Host:        p.Host,
		Started:     dbTime(p.Started),
		Finished:    finished,
		Triggers:    triggers,
		Revision:    p.Revision,
		Actions:     p.Actions,
		Written:     p.Written,
		Deleted:     p.Deleted,
		Issued:      p.Issued,
		IssueFailed: p.IssueFailed,
		Reloaded:    p.Reloaded,
		Outcome:     p.Outcome,
		Error:       p.Error,
		Deliveries:  deliveries,
	}, nil
}

// pass converts r to a Pass.
func (r passRow) pass() (Pass, error) {
	triggers, err := decodeList(r.Triggers)
	if err != nil {
		return Pass{}, fmt.Errorf("decode triggers: %w", err)
	}
	deliveries, err := decodeList(r.Deliveries)
	if err != nil {
		return Pass{}, fmt.Errorf("decode deliveries: %w", err)
	}
	var finished time.Time
	if r.Finished != nil {
		finished = r.Finished.UTC()
	}
	return Pass{
		ID:          r.ID,
		Host:        r.Host,
		Started:     r.Started.UTC(),
		Finished:    finished,
		Triggers:    triggers,
		Revision:    r.Revision,
		Actions:     r.Actions,
		Written:     r.Written,
		Deleted:     r.Deleted,
		Issued:      r.Issued,
		IssueFailed: r.IssueFailed,
		Reloaded:    r.Reloaded,
		Outcome:     r.Outcome,
		Error:       r.Error,
		Deliveries:  deliveries,
	}, nil
}

// encodeList is list as a JSON array, "[]" when empty.
func encodeList(list []string) (string, error) {
	if len(list) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(list)
	return string(b), err
}

// decodeList is the JSON array s as a list, nil when empty.
func decodeList(s string) ([]string, error) {
	var list []string
	if s == "" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}
