package store

import (
	"bytes"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRecordDelivery measures RecordDelivery end to end (a delivery
// and its outbox row, committed): one caller at a time, and many callers at
// once as concurrent webhook requests would be. It reports deliveries/s.
func BenchmarkRecordDelivery(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	for _, dialect := range []string{dialectPostgres, dialectSQLite} {
		for _, callers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/callers=%d", dialect, callers), func(b *testing.B) {
				s := openStore(b, freshOptions(b, dialect))
				ctx := testCtx(b)
				var seq atomic.Int64
				record := func() {
					id := fmt.Sprintf("bench-%d", seq.Add(1))
					d := Delivery{ID: id, Event: "push", Repository: "acme/sites", Ref: "refs/heads/main", HeadCommit: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}
					if dup, err := s.RecordDelivery(ctx, d, body); err != nil || dup {
						b.Errorf("RecordDelivery(%s) = %v, %v", id, dup, err)
					}
				}
				b.ResetTimer()
				start := time.Now()
				if callers == 1 {
					for b.Loop() {
						record()
					}
				} else {
					// RunParallel starts SetParallelism×GOMAXPROCS goroutines.
					b.SetParallelism(max(1, callers/max(1, testingProcs())))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							record()
						}
					})
				}
				b.ReportMetric(float64(seq.Load())/time.Since(start).Seconds(), "deliveries/s")
			})
		}
	}
}

// testingProcs is GOMAXPROCS.
func testingProcs() int { return runtime.GOMAXPROCS(0) }
