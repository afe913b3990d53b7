package store

import (
	"fmt"
	"testing"
	"time"
)

func TestOutbox(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		s := openStore(t, o)
		ctx := testCtx(t)
		if msgs, err := s.PendingOutbox(ctx, 10); err != nil || len(msgs) != 0 {
			t.Fatalf("PendingOutbox of an empty store = %v, %v", msgs, err)
		}
		for i := range 5 {
			if _, err := s.RecordDelivery(ctx, Delivery{ID: fmt.Sprintf("d%d", i)}, fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		msgs, err := s.PendingOutbox(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 3 {
			t.Fatalf("PendingOutbox(3) returned %d messages", len(msgs))
		}
		for i, m := range msgs {
			if m.DeliveryID != fmt.Sprintf("d%d", i) || string(m.Body) != fmt.Sprintf("m%d", i) {
				t.Fatalf("message %d = %+v, want the oldest first", i, m)
			}
		}

		// Failed publishes count attempts and keep messages pending.
		if err := s.MarkAttempt(ctx, msgs[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkAttempt(ctx, msgs[0].ID, msgs[1].ID, 999999); err != nil {
			t.Fatal(err)
		}
		msgs, err = s.PendingOutbox(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 5 || msgs[0].Attempts != 2 || msgs[1].Attempts != 1 || msgs[2].Attempts != 0 {
			t.Fatalf("after attempts: %+v", msgs)
		}

		// Sent messages leave the pending list; marking twice is harmless.
		if err := s.MarkSent(ctx, msgs[0].ID, msgs[2].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkSent(ctx, msgs[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkSent(ctx); err != nil {
			t.Fatalf("MarkSent of nothing: %v", err)
		}
		if n, err := s.OutboxPending(ctx); err != nil || n != 3 {
			t.Fatalf("OutboxPending = %d, %v; want 3", n, err)
		}
		left, err := s.PendingOutbox(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 3 || left[0].ID != msgs[1].ID || left[1].ID != msgs[3].ID || left[2].ID != msgs[4].ID {
			t.Fatalf("pending after MarkSent = %+v", left)
		}

		// Prune deletes only sent messages older than the cut-off.
		if n, err := s.PruneSent(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("PruneSent(an hour ago) = %d, %v; want 0", n, err)
		}
		if n, err := s.PruneSent(ctx, time.Now().Add(time.Hour)); err != nil || n != 2 {
			t.Fatalf("PruneSent(in an hour) = %d, %v; want 2", n, err)
		}
		if n, err := s.PruneSent(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("second PruneSent = %d, %v; want 0", n, err)
		}
		if n, err := s.OutboxPending(ctx); err != nil || n != 3 {
			t.Fatalf("OutboxPending after prune = %d, %v; want 3", n, err)
		}
		var total int64
		if err := s.db.WithContext(ctx).Model(&outboxRow{}).Count(&total).Error; err != nil || total != 3 {
			t.Fatalf("outbox rows after prune = %d, %v; want 3", total, err)
		}

		if _, err := s.PendingOutbox(ctx, 0); err == nil {
			t.Error("PendingOutbox(0) succeeded")
		}
	})
}

// TestMarkManyIDs marks more ids than fit in one IN list.
func TestMarkManyIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		s := openStore(t, o)
		ctx := testCtx(t)
		const n = 3*idChunk + 7
		// Insert directly: n deliveries one by one would be slow on SQLite.
		rows := make([]outboxRow, n)
		for i := range rows {
			rows[i] = outboxRow{DeliveryID: fmt.Sprintf("bulk-%d", i), Body: []byte("x"), CreatedAt: now()}
		}
		if err := s.db.WithContext(ctx).CreateInBatches(rows, 500).Error; err != nil {
			t.Fatal(err)
		}
		msgs, err := s.PendingOutbox(ctx, n+10)
		if err != nil || len(msgs) != n {
			t.Fatalf("PendingOutbox = %d messages, %v", len(msgs), err)
		}
		ids := make([]int64, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
		}
		if err := s.MarkAttempt(ctx, ids...); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkSent(ctx, ids[1:]...); err != nil {
			t.Fatal(err)
		}
		left, err := s.PendingOutbox(ctx, 10)
		if err != nil || len(left) != 1 || left[0].ID != ids[0] || left[0].Attempts != 1 {
			t.Fatalf("pending = %+v, %v", left, err)
		}
	})
}
