// Package bench holds sitesync's end-to-end benchmark report.
//
// Its one test, TestReport, measures on one machine, in one run, what a
// reconcile pass costs compared with its floor (the least any tool would
// have to do for the same change: write the same files, run nginx -t once,
// reload once), the peak memory of the sitesync binary, the webhook
// receiver's throughput and latency against PostgreSQL and RabbitMQ, the
// time from a push to the reload that applies it, and the overhead of a
// pass that issues certificates over bare certbot runs. It writes the
// results as Markdown:
//
//	go test ./bench -run TestReport -timeout 0 -args -sizes 100,1000,10000 -out BENCHMARKS.md
//
// Run plainly, as part of go test ./..., it runs the smallest configuration
// (100 sites, two repetitions, a small webhook load, two certificates),
// writes its report to a temporary directory and asserts only correctness
// (no-op passes write nothing, reload nothing and run no certbot; every
// change is served by nginx), never timing, so the command cannot rot.
//
// The package has no non-test code: everything lives in _test.go files so
// that it can use internal/testenv, which needs a testing.TB.
package bench
