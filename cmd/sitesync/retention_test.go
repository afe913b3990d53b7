package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sitesync/sitesync/store"
)

func TestPruneHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, store.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := time.Now().Add(-3 * time.Hour)
	recent := time.Now().Add(-time.Minute)
	for _, p := range []store.Pass{
		{ID: "old", Host: "h", Started: old, Finished: old.Add(time.Second), Outcome: store.OutcomeNoop},
		{ID: "recent", Host: "h", Started: recent, Finished: recent.Add(time.Second), Outcome: store.OutcomeNoop},
	} {
		if err := st.RecordPass(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	var logs syncBuffer
	s := &service{store: st, log: slog.New(slog.NewTextHandler(&logs, nil))}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.pruneHistory(runCtx, time.Hour, 50*time.Millisecond) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		passes, err := st.RecentPasses(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(passes) == 1 {
			if passes[0].ID != "recent" {
				t.Fatalf("pruning kept %q, want the recent pass", passes[0].ID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old pass was not pruned: %d passes", len(passes))
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("pruneHistory = %v", err)
	}
	if out := logs.String(); !strings.Contains(out, "pruned database history") || !strings.Contains(out, "passes=1") {
		t.Errorf("log does not report the pruning:\n%s", out)
	}
}
