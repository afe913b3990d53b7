package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv names the state directory a helper process writes to.
const helperEnv = "SITESYNC_STORE_TEST_HELPER_STATEDIR"

// sharedWorkload records 100 deliveries of its own and races 50 deliveries
// whose ids every process uses, and records a pass per 10 deliveries. It
// returns how many of the shared deliveries it recorded first.
func sharedWorkload(ctx context.Context, s *Store, name string) (int, error) {
	fresh := 0
	for i := range 100 {
		if _, err := s.RecordDelivery(ctx, Delivery{ID: fmt.Sprintf("%s-%d", name, i), Event: "push"}, []byte(name)); err != nil {
			return 0, err
		}
		if i%2 == 0 {
			dup, err := s.RecordDelivery(ctx, Delivery{ID: fmt.Sprintf("shared-%d", i/2), Event: "push"}, []byte(name))
			if err != nil {
				return 0, err
			}
			if !dup {
				fresh++
			}
		}
		if i%10 == 0 {
			if err := s.RecordPass(ctx, Pass{ID: fmt.Sprintf("%s-pass-%d", name, i), Started: time.Now(), Outcome: OutcomeSuccess}); err != nil {
				return 0, err
			}
			if _, err := s.RecentPasses(ctx, 5); err != nil {
				return 0, err
			}
		}
	}
	return fresh, nil
}

// TestSQLiteHelperProcess is the child of TestSQLiteSharedByProcesses; run
// on its own it does nothing.
func TestSQLiteHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		return
	}
	s := openStore(t, Options{StateDir: dir})
	fresh, err := sharedWorkload(testCtx(t), s, "child-"+strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("fresh=%d\n", fresh)
}

// TestSQLiteSharedByProcesses has three processes (two children and this
// one) write the same SQLite file at once, as the webhook and reconcile
// processes will: none may fail with "database is locked", and shared
// delivery ids must be recorded exactly once across processes.
func TestSQLiteSharedByProcesses(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{StateDir: dir})
	ctx := testCtx(t)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		fresh   int
		outputs []string
	)
	for range 2 {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSQLiteHelperProcess$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), helperEnv+"="+dir)
			out, err := cmd.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("helper process: %v\n%s", err, out)
				return
			}
			outputs = append(outputs, string(out))
			for line := range strings.Lines(string(out)) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "fresh="); ok {
					n, _ := strconv.Atoi(v)
					fresh += n
				}
			}
		})
	}
	n, err := sharedWorkload(ctx, s, "parent")
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	mu.Lock()
	fresh += n
	mu.Unlock()
	if t.Failed() {
		return
	}
	if fresh != 50 {
		t.Errorf("shared deliveries recorded first %d times across processes, want 50\n%s", fresh, strings.Join(outputs, "\n"))
	}
	if pending, err := s.OutboxPending(ctx); err != nil || pending != 3*100+50 {
		t.Errorf("OutboxPending = %d, %v; want %d", pending, err, 3*100+50)
	}
	if passes, err := s.RecentPasses(ctx, 100); err != nil || len(passes) != 30 {
		t.Errorf("RecentPasses = %d passes, %v; want 30", len(passes), err)
	}
}
