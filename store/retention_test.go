package store

import (
	"fmt"
	"testing"
	"time"
)

func TestPrune(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		s := openStore(t, o)
		ctx := testCtx(t)
		for i := range 4 {
			if _, err := s.RecordDelivery(ctx, Delivery{ID: fmt.Sprintf("d%d", i)}, []byte("m")); err != nil {
				t.Fatal(err)
			}
		}
		msgs, err := s.PendingOutbox(ctx, 10)
		if err != nil || len(msgs) != 4 {
			t.Fatalf("PendingOutbox = %v, %v", msgs, err)
		}
		if err := s.MarkSent(ctx, msgs[0].ID, msgs[1].ID); err != nil {
			t.Fatal(err)
		}
		started := time.Now().Add(-time.Minute)
		done := Pass{ID: "done", Host: "h", Started: started, Finished: started.Add(time.Second), Outcome: OutcomeNoop}
		running := Pass{ID: "running", Host: "h", Started: started, Outcome: OutcomeRunning}
		for _, p := range []Pass{done, running} {
			if err := s.RecordPass(ctx, p); err != nil {
				t.Fatal(err)
			}
		}

		// Nothing is older than an hour ago, except d0's receipt: it stays
		// while its (recently sent) message is in the outbox.
		if err := s.db.Model(&deliveryRow{}).Where("id = ?", "d0").Update("received_at", now().Add(-2*time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		if p, err := s.Prune(ctx, time.Now().Add(-time.Hour)); err != nil || p.Total() != 0 {
			t.Fatalf("Prune(an hour ago) = %+v, %v; want nothing", p, err)
		}
		// Everything is older than an hour from now, but unsent messages,
		// their deliveries and the running pass stay.
		p, err := s.Prune(ctx, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want := (Pruned{Deliveries: 2, Outbox: 2, Passes: 1}); p != want {
			t.Errorf("Prune = %+v, want %+v", p, want)
		}
		if n, err := s.OutboxPending(ctx); err != nil || n != 2 {
			t.Errorf("OutboxPending after Prune = %d, %v; want 2", n, err)
		}
		passes, err := s.RecentPasses(ctx, 10)
		if err != nil || len(passes) != 1 || passes[0].ID != "running" {
			t.Errorf("passes after Prune = %+v, %v; want the running one", passes, err)
		}
		// An unsent delivery is still a duplicate; a pruned one is new again.
		if dup, err := s.RecordDelivery(ctx, Delivery{ID: "d2"}, []byte("m")); err != nil || !dup {
			t.Errorf("redelivery of unsent d2: duplicate=%v, %v", dup, err)
		}
		if dup, err := s.RecordDelivery(ctx, Delivery{ID: "d0"}, []byte("m")); err != nil || dup {
			t.Errorf("redelivery of pruned d0: duplicate=%v, %v", dup, err)
		}
	})
}
