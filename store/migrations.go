package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// ErrSchemaTooNew is wrapped by the error of Open when the database holds
// migrations that this sitesync does not know: a newer sitesync migrated it.
// Open then changes nothing.
var ErrSchemaTooNew = errors.New("database schema is newer than this sitesync")

// migration is one step of the schema. Its up function must not drop or
// rewrite data, and must only use the frozen per-version models or explicit
// DDL, never the live models, so that it does the same thing forever.
type migration struct {
	version int
	name    string
	up      func(tx *gorm.DB) error
}

// migrations is the schema's history, oldest first. Only ever append.
func migrations() []migration {
	return []migration{
		{1, "deliveries, outbox and passes", migrate1},
		{2, "indexes on passes(started) and deliveries(received_at)", migrate2},
	}
}

// LatestSchemaVersion is the schema version this sitesync migrates to.
func LatestSchemaVersion() int { return len(migrations()) }

// checkMigrations tells whether migs is numbered 1, 2, 3... in order.
func checkMigrations(migs []migration) error {
	for i, m := range migs {
		if m.version != i+1 {
			return fmt.Errorf("migration %d (%s) is listed at position %d", m.version, m.name, i+1)
		}
	}
	return nil
}

// schemaMigration is a row of schema_migrations: one applied migration.
type schemaMigration struct {
	Version   int       `gorm:"primaryKey;autoIncrement:false"`
	Name      string    `gorm:"not null"`
	AppliedAt time.Time `gorm:"not null"`
}

// TableName is the table of applied migrations.
func (schemaMigration) TableName() string { return "schema_migrations" }

// migrate creates the schema and schema_migrations if missing, then applies
// the migrations of migs that the database lacks, each in its own
// transaction, in order.
func (s *Store) migrate(ctx context.Context, schema string, migs []migration) error {
	key := lockKey(schema)
	err := s.migrationTx(ctx, key, func(tx *gorm.DB) error {
		if s.dialect == dialectPostgres && schema != "" {
			var exists bool
			if err := tx.Raw("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ?)", schema).Scan(&exists).Error; err != nil {
				return fmt.Errorf("look for schema: %w", err)
			}
			if !exists {
				if err := tx.Exec("CREATE SCHEMA " + pgx.Identifier{schema}.Sanitize()).Error; err != nil {
					return fmt.Errorf("create schema: %w", err)
				}
			}
		}
		if tx.Migrator().HasTable(&schemaMigration{}) {
			return nil
		}
		if err := tx.Migrator().CreateTable(&schemaMigration{}); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	applied, err := s.appliedVersions(s.db.WithContext(ctx), len(migs))
	if err != nil {
		return err
	}
	for _, m := range migs {
		if applied[m.version] {
			continue
		}
		err := s.migrationTx(ctx, key, func(tx *gorm.DB) error {
			// Another process may have applied it since we looked.
			applied, err := s.appliedVersions(tx, len(migs))
			if err != nil || applied[m.version] {
				return err
			}
			if err := m.up(tx); err != nil {
				return err
			}
			return tx.Create(&schemaMigration{Version: m.version, Name: m.name, AppliedAt: now()}).Error
		})
		if err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// migrationTx runs fn in a transaction that no other migrating process runs
// at the same time: on PostgreSQL it holds an advisory lock on key until it
// ends, on SQLite it holds the write lock from its start.
func (s *Store) migrationTx(ctx context.Context, key int64, fn func(tx *gorm.DB) error) error {
	return s.write(ctx, func(tx *gorm.DB) error {
		if s.dialect == dialectPostgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", key).Error; err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
		}
		return fn(tx)
	})
}

// appliedVersions is the set of migrations recorded in db. It fails with
// ErrSchemaTooNew when one of them is newer than latest.
func (s *Store) appliedVersions(db *gorm.DB, latest int) (map[int]bool, error) {
	var versions []int
	if err := db.Model(&schemaMigration{}).Order("version").Pluck("version", &versions).Error; err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	if len(versions) > 0 && versions[len(versions)-1] > latest {
		return nil, fmt.Errorf("%w: it is at version %d, this sitesync knows versions up to %d; upgrade sitesync",
			ErrSchemaTooNew, slices.Max(versions), latest)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}

// lockKey is the PostgreSQL advisory lock key that serialises the
// migrations of schema.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("sitesync/store/migrate/" + schema))
	return int64(h.Sum64())
}

// Frozen models of migration 1. Never change them: migration 1 must create
// the same tables forever. Later changes go into new migrations.

// deliveryV1 is the deliveries table as migration 1 creates it.
type deliveryV1 struct {
	ID         string    `gorm:"primaryKey"`
	Event      string    `gorm:"not null"`
	Repository string    `gorm:"not null"`
	Ref        string    `gorm:"not null"`
	HeadCommit string    `gorm:"not null"`
	ReceivedAt time.Time `gorm:"not null"`
}

// TableName is the table migration 1 creates.
func (deliveryV1) TableName() string { return "deliveries" }

// outboxV1 is the outbox table as migration 1 creates it.
type outboxV1 struct {
	ID         int64     `gorm:"primaryKey;autoIncrement"`
	DeliveryID string    `gorm:"not null;uniqueIndex:outbox_delivery_id_key"`
	Body       []byte    `gorm:"not null"`
	CreatedAt  time.Time `gorm:"not null"`
	SentAt     *time.Time
	Attempts   int `gorm:"not null;default:0"`
}

// TableName is the table migration 1 creates.
func (outboxV1) TableName() string { return "outbox" }

// passV1 is the passes table as migration 1 creates it.
type passV1 struct {
	ID          string    `gorm:"primaryKey"`
	Host        string    `gorm:"not null"`
	Started     time.Time `gorm:"not null"`
	Finished    *time.Time
	Triggers    string `gorm:"not null"` // JSON array of strings
	Revision    string `gorm:"not null"`
	Actions     int    `gorm:"not null"`
	Written     int    `gorm:"not null"`
	Deleted     int    `gorm:"not null"`
	Issued      int    `gorm:"not null"`
	IssueFailed int    `gorm:"not null"`
	Reloaded    bool   `gorm:"not null"`
	Outcome     string `gorm:"not null"`
	Error       string `gorm:"not null"`
	Deliveries  string `gorm:"not null"` // JSON array of delivery ids
}

// TableName is the table migration 1 creates.
func (passV1) TableName() string { return "passes" }

// migrate1 creates deliveries, outbox and passes, and the partial indexes
// the outbox relay reads by: unsent rows in id order, sent rows by age.
func migrate1(tx *gorm.DB) error {
	m := tx.Migrator()
	for _, model := range []any{&deliveryV1{}, &outboxV1{}, &passV1{}} {
		if err := m.CreateTable(model); err != nil {
			return err
		}
	}
	for _, ddl := range []string{
		"CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL",
		"CREATE INDEX outbox_sent_at_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL",
	} {
		if err := tx.Exec(ddl).Error; err != nil {
			return err
		}
	}
	return nil
}

// migrate2 indexes the columns that RecentPasses and LastDelivery sort by.
func migrate2(tx *gorm.DB) error {
	for _, ddl := range []string{
		"CREATE INDEX passes_started_idx ON passes (started)",
		"CREATE INDEX deliveries_received_at_idx ON deliveries (received_at)",
	} {
		if err := tx.Exec(ddl).Error; err != nil {
			return err
		}
	}
	return nil
}
