package store

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// appliedMigrations is the schema_migrations table of s, by version.
func appliedMigrations(t *testing.T, s *Store) []schemaMigration {
	t.Helper()
	var rows []schemaMigration
	if err := s.db.WithContext(testCtx(t)).Order("version").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestMigrations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		ctx := testCtx(t)
		latest := LatestSchemaVersion()
		if latest < 2 {
			t.Fatalf("LatestSchemaVersion() = %d, the test needs 2 or more", latest)
		}

		// A database at version 1 only, with data in it.
		s1, err := openWith(ctx, o, migrations()[:1])
		if err != nil {
			t.Fatal(err)
		}
		if rows := appliedMigrations(t, s1); len(rows) != 1 || rows[0].Version != 1 {
			t.Fatalf("after opening at version 1: %+v", rows)
		}
		if s1.db.Migrator().HasIndex("passes", "passes_started_idx") {
			t.Fatal("version 1 already has migration 2's index")
		}
		if _, err := s1.RecordDelivery(ctx, Delivery{ID: "kept", Event: "push", Ref: "refs/heads/main"}, []byte("body")); err != nil {
			t.Fatal(err)
		}
		if err := s1.RecordPass(ctx, Pass{ID: "kept-pass", Started: time.Now(), Outcome: OutcomeSuccess, Triggers: []string{"timer"}}); err != nil {
			t.Fatal(err)
		}
		if err := s1.Close(); err != nil {
			t.Fatal(err)
		}

		// Reopening applies migration 2 and keeps the data.
		s2, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		applied := appliedMigrations(t, s2)
		if len(applied) != latest {
			t.Fatalf("after reopening: %+v, want %d migrations", applied, latest)
		}
		for i, m := range migrations() {
			if applied[i].Version != m.version || applied[i].Name != m.name || applied[i].AppliedAt.IsZero() {
				t.Fatalf("migration row %d = %+v, want version %d %q", i, applied[i], m.version, m.name)
			}
		}
		for table, index := range map[string]string{"passes": "passes_started_idx", "deliveries": "deliveries_received_at_idx"} {
			if !s2.db.Migrator().HasIndex(table, index) {
				t.Errorf("migration 2 did not create %s", index)
			}
		}
		if d, err := s2.LastDelivery(ctx); err != nil || d == nil || d.ID != "kept" || d.Ref != "refs/heads/main" {
			t.Fatalf("delivery after migrating: %+v, %v", d, err)
		}
		if msgs, err := s2.PendingOutbox(ctx, 10); err != nil || len(msgs) != 1 || string(msgs[0].Body) != "body" {
			t.Fatalf("outbox after migrating: %+v, %v", msgs, err)
		}
		if passes, err := s2.RecentPasses(ctx, 10); err != nil || len(passes) != 1 || passes[0].ID != "kept-pass" || passes[0].Triggers[0] != "timer" {
			t.Fatalf("passes after migrating: %+v, %v", passes, err)
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}

		// Reopening again applies nothing.
		s3 := openStore(t, o)
		again := appliedMigrations(t, s3)
		if len(again) != len(applied) {
			t.Fatalf("third open: %+v, want %+v", again, applied)
		}
		for i := range again {
			if !again[i].AppliedAt.Equal(applied[i].AppliedAt) {
				t.Fatalf("migration %d applied again: %v, then %v", again[i].Version, applied[i].AppliedAt, again[i].AppliedAt)
			}
		}

		// An older sitesync refuses the newer database.
		if old, err := openWith(ctx, o, migrations()[:1]); !errors.Is(err, ErrSchemaTooNew) {
			if old != nil {
				old.Close()
			}
			t.Fatalf("opening a version %d database with version 1 code: %v, want ErrSchemaTooNew", latest, err)
		}

		// So does this sitesync a database from the future, and leaves it be.
		future := schemaMigration{Version: latest + 40, Name: "from a newer sitesync", AppliedAt: now()}
		if err := s3.db.WithContext(ctx).Create(&future).Error; err != nil {
			t.Fatal(err)
		}
		s4, err := Open(ctx, o)
		if !errors.Is(err, ErrSchemaTooNew) {
			if s4 != nil {
				s4.Close()
			}
			t.Fatalf("opening a database from the future: %v, want ErrSchemaTooNew", err)
		}
		t.Logf("future database: %v", err)
		if rows := appliedMigrations(t, s3); len(rows) != latest+1 {
			t.Fatalf("refused open changed schema_migrations: %+v", rows)
		}
	})
}

// TestConcurrentOpen opens one fresh database from many goroutines at once:
// each migration must be applied exactly once, and every Open succeed.
func TestConcurrentOpen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		ctx := testCtx(t)
		const openers = 8
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			mu     sync.Mutex
			stores []*Store
			errs   []error
		)
		for range openers {
			wg.Go(func() {
				<-start
				s, err := Open(ctx, o)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				stores = append(stores, s)
			})
		}
		close(start)
		wg.Wait()
		for _, s := range stores {
			defer s.Close()
		}
		if len(errs) > 0 {
			t.Fatalf("%d of %d concurrent opens failed, first: %v", len(errs), openers, errs[0])
		}
		if rows := appliedMigrations(t, stores[0]); len(rows) != LatestSchemaVersion() {
			t.Fatalf("schema_migrations = %+v", rows)
		}
	})
}

func TestCheckMigrations(t *testing.T) {
	if err := checkMigrations(migrations()); err != nil {
		t.Fatal(err)
	}
	bad := []migration{{1, "a", nil}, {3, "c", nil}}
	if err := checkMigrations(bad); err == nil {
		t.Fatal("a gap in the migrations passed the check")
	}
}
