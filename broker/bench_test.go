package broker

import (
	"testing"
)

// BenchmarkPublish measures confirmed publishes per second: each Publish
// returns only after RabbitMQ's confirm for a persistent message routed to
// a durable queue, with many publishes in flight at once on the shared
// confirm-mode channel (as the relay does with RelayOptions.Concurrency).
func BenchmarkPublish(b *testing.B) {
	url := newVhost(b)
	a, _ := startAMQP(b, url)
	raw := rawChannel(b, url)
	if _, err := raw.QueueDeclare("bench", true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	if err := raw.QueueBind("bench", "", DefaultExchange, false, nil); err != nil {
		b.Fatal(err)
	}
	_, body := testMessage(b, "bench")
	for _, bc := range []struct {
		name        string
		parallelism int
	}{{"serial", 0}, {"parallel", 16}} {
		b.Run(bc.name, func(b *testing.B) {
			// An ever longer queue would slow later runs down.
			if _, err := raw.QueuePurge("bench", false); err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			if bc.parallelism == 0 {
				for b.Loop() {
					if err := a.Publish(ctx, body); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism(bc.parallelism)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := a.Publish(ctx, body); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
