package store

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestRecordPass(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		s := openStore(t, o)
		ctx := testCtx(t)
		if passes, err := s.RecentPasses(ctx, 5); err != nil || len(passes) != 0 {
			t.Fatalf("RecentPasses of an empty store = %v, %v", passes, err)
		}
		started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		p := Pass{
			ID:         "pass-1",
			Host:       "web1",
			Started:    started,
			Triggers:   []string{"webhook", "timer"},
			Outcome:    OutcomeRunning,
			Deliveries: []string{"d1", "d2"},
		}
		if err := s.RecordPass(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, err := s.RecentPasses(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], p) {
			t.Fatalf("running pass = %+v, want %+v", got, p)
		}

		p.Finished = started.Add(1500 * time.Millisecond).In(time.FixedZone("X", 7200))
		p.Revision = "0d1a26e67d8f"
		p.Actions, p.Written, p.Deleted, p.Issued, p.IssueFailed = 5, 2, 1, 1, 1
		p.Reloaded = true
		p.Outcome = OutcomeError
		p.Error = "issue cert for example.org: rate limited"
		p.Deliveries = []string{"d1", "d2", "d3"}
		if err := s.RecordPass(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, err = s.RecentPasses(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		want := p
		want.Finished = p.Finished.UTC()
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Fatalf("finished pass = %+v, want %+v", got, want)
		}

		// A pass without lists reads back with nil lists.
		bare := Pass{ID: "pass-0", Host: "web1", Started: started.Add(-time.Hour), Outcome: OutcomeNoop}
		if err := s.RecordPass(ctx, bare); err != nil {
			t.Fatal(err)
		}
		got, err = s.RecentPasses(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || !reflect.DeepEqual(got[1], bare) {
			t.Fatalf("passes = %+v, want the bare pass second", got)
		}

		if err := s.RecordPass(ctx, Pass{}); err == nil {
			t.Error("RecordPass without an id succeeded")
		}
		if _, err := s.RecentPasses(ctx, 0); err == nil {
			t.Error("RecentPasses(0) succeeded")
		}
	})
}

func TestRecentPassesOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		s := openStore(t, o)
		ctx := testCtx(t)
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		// Recorded out of order, with sub-second steps that sort wrongly as
		// text if the store wrote times carelessly (.5s vs .45s vs 1s).
		offsets := []time.Duration{
			3 * time.Second, 500 * time.Millisecond, 0, 450 * time.Millisecond,
			time.Second, 10 * time.Minute, 1500 * time.Microsecond,
		}
		for i, off := range offsets {
			started := base.Add(off)
			if i%2 == 0 {
				started = started.In(time.FixedZone("east", 5*3600))
			}
			if err := s.RecordPass(ctx, Pass{ID: fmt.Sprintf("p-%v", off), Started: started, Outcome: OutcomeSuccess}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.RecentPasses(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range got {
			ids = append(ids, p.ID)
		}
		want := []string{"p-10m0s", "p-3s", "p-1s", "p-500ms"}
		if !reflect.DeepEqual(ids, want) {
			t.Fatalf("RecentPasses(4) = %v, want %v", ids, want)
		}
		all, err := s.RecentPasses(ctx, 100)
		if err != nil || len(all) != len(offsets) {
			t.Fatalf("RecentPasses(100) = %d passes, %v", len(all), err)
		}
		for i := 1; i < len(all); i++ {
			if all[i].Started.After(all[i-1].Started) {
				t.Fatalf("passes out of order: %v after %v", all[i].Started, all[i-1].Started)
			}
		}
	})
}
