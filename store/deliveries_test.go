package store

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRecordDelivery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		s := openStore(t, o)
		ctx := testCtx(t)
		if d, err := s.LastDelivery(ctx); err != nil || d != nil {
			t.Fatalf("LastDelivery of an empty store = %v, %v", d, err)
		}
		d := Delivery{
			ID:         "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			Event:      "push",
			Repository: "acme/sites",
			Ref:        "refs/heads/main",
			HeadCommit: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
			ReceivedAt: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600)),
		}
		msg := []byte(`{"delivery":"72d3162e","revision":"0d1a26e"}`)
		dup, err := s.RecordDelivery(ctx, d, msg)
		if err != nil || dup {
			t.Fatalf("first RecordDelivery = %v, %v", dup, err)
		}
		dup, err = s.RecordDelivery(ctx, Delivery{ID: d.ID, Event: "ping"}, []byte("other"))
		if err != nil || !dup {
			t.Fatalf("second RecordDelivery = %v, %v; want a duplicate", dup, err)
		}

		got, err := s.LastDelivery(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := d
		want.ReceivedAt = time.Date(2026, 3, 1, 11, 0, 0, 123456000, time.UTC)
		if got == nil || *got != want {
			t.Fatalf("LastDelivery = %+v, want %+v", got, want)
		}

		pending, err := s.PendingOutbox(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 1 || pending[0].DeliveryID != d.ID || string(pending[0].Body) != string(msg) || pending[0].Attempts != 0 {
			t.Fatalf("outbox = %+v, want one row with the first message", pending)
		}
		if age := time.Since(pending[0].CreatedAt); age < 0 || age > time.Minute {
			t.Errorf("outbox CreatedAt = %v", pending[0].CreatedAt)
		}

		// A delivery without a time gets the current one; a nil message an
		// empty body. The newest delivery is the last one.
		before := time.Now().Add(-time.Second)
		if dup, err := s.RecordDelivery(ctx, Delivery{ID: "second", Event: "push"}, nil); err != nil || dup {
			t.Fatalf("RecordDelivery(second) = %v, %v", dup, err)
		}
		got, err = s.LastDelivery(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || got.ID != "second" || got.ReceivedAt.Before(before) || got.ReceivedAt.Location() != time.UTC {
			t.Fatalf("LastDelivery = %+v, want the second delivery, received now, in UTC", got)
		}
		if n, err := s.OutboxPending(ctx); err != nil || n != 2 {
			t.Fatalf("OutboxPending = %d, %v; want 2", n, err)
		}

		if _, err := s.RecordDelivery(ctx, Delivery{}, nil); err == nil {
			t.Error("RecordDelivery without an id succeeded")
		}
	})
}

// TestRecordDeliveryRace races 50 recordings of the same delivery: exactly
// one of them must record it, with exactly one outbox row.
func TestRecordDeliveryRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		s := openStore(t, o)
		ctx := testCtx(t)
		for round := range 3 {
			id := fmt.Sprintf("race-%d", round)
			const racers = 50
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				mu    sync.Mutex
				fresh int
				errs  []error
			)
			for i := range racers {
				wg.Go(func() {
					<-start
					dup, err := s.RecordDelivery(ctx, Delivery{ID: id, Event: "push"}, fmt.Appendf(nil, "racer %d", i))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
					} else if !dup {
						fresh++
					}
				})
			}
			close(start)
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("round %d: %d errors, first: %v", round, len(errs), errs[0])
			}
			if fresh != 1 {
				t.Fatalf("round %d: %d racers recorded the delivery, want exactly 1", round, fresh)
			}
			if n, err := s.OutboxPending(ctx); err != nil || n != int64(round+1) {
				t.Fatalf("round %d: OutboxPending = %d, %v; want %d", round, n, err, round+1)
			}
		}
		var n int64
		if err := s.db.WithContext(ctx).Model(&deliveryRow{}).Count(&n).Error; err != nil || n != 3 {
			t.Fatalf("deliveries = %d, %v; want 3", n, err)
		}
	})
}
