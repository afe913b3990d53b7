package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sitesync/sitesync/internal/testenv"
)

// brokerAddr is the RabbitMQ every test uses; scripts/test.sh starts it.
const brokerAddr = "127.0.0.1:5672"

// ctlRetryFor bounds how long rabbitmqctl commands are retried: another
// package's test may be restarting the broker app.
const ctlRetryFor = 90 * time.Second

// rabbitmqctl runs rabbitmqctl with args (argv, no shell), retrying
// failures for a while, and fails the test if it keeps failing. accept,
// when not nil, turns a failure whose output it accepts into success.
func rabbitmqctl(t testing.TB, accept func(out string) bool, args ...string) string {
	t.Helper()
	bin := testenv.RequireTool(t, "rabbitmqctl")
	deadline := time.Now().Add(ctlRetryFor)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		cancel()
		if err == nil || (accept != nil && accept(string(out))) {
			return string(out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		time.Sleep(time.Second)
	}
}

// requireBroker fails the test when RabbitMQ does not accept connections on
// brokerAddr within a minute. A missing broker is a failure, never a skip.
func requireBroker(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", brokerAddr, 2*time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RabbitMQ is not reachable on %s (%v); run scripts/test.sh, which installs and starts it", brokerAddr, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// newVhost creates a vhost of its own for the test, deleted at cleanup, and
// returns the URL to connect to it as guest. It holds the shared broker
// lock, so the restart test never runs at the same time as another test of
// any package that uses RabbitMQ.
func newVhost(t testing.TB) string {
	t.Helper()
	requireBroker(t)
	return testenv.RabbitMQURL(t, brokerAddr)
}

// vhostOf returns the vhost of a URL made by newVhost.
func vhostOf(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := amqp.ParseURI(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Vhost
}

// testLogger returns a logger that writes to the test log until the test
// ends and drops what comes later.
func testLogger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testLogWriter is the io.Writer behind testLogger.
type testLogWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

// Write logs p unless the test is over.
func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAMQP runs a new AMQP until the returned stop is called (at the
// latest at cleanup) and waits until it is connected.
func startAMQP(t testing.TB, rawURL string, opts ...AMQPOption) (a *AMQP, stop func()) {
	t.Helper()
	return startAMQPLog(t, rawURL, testLogger(t), true, opts...)
}

// startAMQPLog is startAMQP with a logger of the caller's, optionally
// without waiting for the connection.
func startAMQPLog(t testing.TB, rawURL string, log *slog.Logger, waitConnected bool, opts ...AMQPOption) (a *AMQP, stop func()) {
	t.Helper()
	opts = append([]AMQPOption{WithReconnectBackoff(50*time.Millisecond, time.Second)}, opts...)
	a = NewAMQP(rawURL, "", log, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("AMQP.Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("AMQP.Run did not return within 15s of its ctx being canceled")
			}
		})
	}
	t.Cleanup(stop)
	if waitConnected {
		waitUntil(t, 30*time.Second, "AMQP connected", a.Connected)
	}
	return a, stop
}

// waitUntil polls cond until it holds or fails the test after timeout.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// consume starts consuming queue on a for the rest of the test, failing
// the test if the first subscription takes more than a minute.
func consume(t testing.TB, a *AMQP, queue string) <-chan Delivery {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	timer := time.AfterFunc(time.Minute, cancel)
	ds, err := a.Consume(ctx, queue)
	if !timer.Stop() {
		t.Fatalf("Consume(%q) took more than a minute: %v", queue, err)
	}
	if err != nil {
		t.Fatalf("Consume(%q): %v", queue, err)
	}
	return ds
}

// receive returns the next delivery or fails the test after timeout.
func receive(t testing.TB, ds <-chan Delivery, timeout time.Duration) Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return d
	case <-time.After(timeout):
		t.Fatalf("no delivery within %v", timeout)
	}
	return Delivery{}
}

// testMessage returns a message and its body for delivery id.
func testMessage(t testing.TB, id string) (Message, []byte) {
	t.Helper()
	m := Message{
		DeliveryID: id,
		Event:      "push",
		Repository: "acme/sites",
		Ref:        "refs/heads/main",
		Commit:     "0123456789abcdef0123456789abcdef01234567",
		ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return m, b
}

// collector reads a delivery stream, acks everything and counts deliveries
// per DeliveryID.
type collector struct {
	mu          sync.Mutex
	seen        map[string]int
	redelivered int
}

// collect starts a collector on ds.
func collect(ds <-chan Delivery) *collector {
	c := &collector{seen: map[string]int{}}
	go func() {
		for d := range ds {
			c.record(d)
			_ = d.Ack()
		}
	}()
	return c
}

// collectInPasses starts a collector on ds that acks like a reconciler:
// once per pass, with AckUpTo on the last delivery the pass covered.
func collectInPasses(ds <-chan Delivery, pass time.Duration) *collector {
	c := &collector{seen: map[string]int{}}
	go func() {
		tick := time.NewTicker(pass)
		defer tick.Stop()
		var last *Delivery
		for {
			select {
			case d, ok := <-ds:
				if !ok {
					return
				}
				c.record(d)
				last = &d
			case <-tick.C:
				if last != nil {
					_ = last.AckUpTo()
					last = nil
				}
			}
		}
	}()
	return c
}

// record counts d.
func (c *collector) record(d Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[d.Message.DeliveryID]++
	if d.Redelivered {
		c.redelivered++
	}
}

// missing returns the ids not received yet.
func (c *collector) missing(ids []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, id := range ids {
		if c.seen[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// stats returns the number of deliveries, of distinct ids and of
// redeliveries.
func (c *collector) stats() (total, distinct, redelivered int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.seen {
		total += n
	}
	return total, len(c.seen), c.redelivered
}

// waitFor waits until every id was received at least once.
func (c *collector) waitFor(t testing.TB, ids []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := c.missing(ids)
		if len(m) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if len(m) > 10 {
				m = append(m[:10], "...")
			}
			t.Fatalf("after %v, %d of %d messages never arrived: %v", timeout, len(c.missing(ids)), len(ids), m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memOutbox is an in-memory Outbox.
type memOutbox struct {
	mu       sync.Mutex
	rows     []*memRow
	failRead error
	// beforeMarkSent, when set, is called with the ids of each MarkSent.
	beforeMarkSent func(ids []int64)
	markSent       int
	markAttempt    int
}

// memRow is one row of a memOutbox.
type memRow struct {
	id       int64
	body     []byte
	sent     bool
	attempts int
	sentAt   time.Time
}

// add records a row and returns its id.
func (o *memOutbox) add(body []byte) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := int64(len(o.rows) + 1)
	o.rows = append(o.rows, &memRow{id: id, body: body})
	return id
}

// PendingOutbox implements Outbox.
func (o *memOutbox) PendingOutbox(_ context.Context, limit int) ([]Pending, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failRead != nil {
		return nil, o.failRead
	}
	var out []Pending
	for _, r := range o.rows {
		if len(out) == limit {
			break
		}
		if !r.sent {
			out = append(out, Pending{ID: r.id, Body: r.body})
		}
	}
	return out, nil
}

// MarkSent implements Outbox.
func (o *memOutbox) MarkSent(_ context.Context, ids ...int64) error {
	o.mu.Lock()
	hook := o.beforeMarkSent
	o.mu.Unlock()
	if hook != nil {
		hook(ids)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.markSent++
	for _, id := range ids {
		r := o.rows[id-1]
		if r.sent {
			return fmt.Errorf("row %d marked sent twice", id)
		}
		r.sent, r.sentAt = true, time.Now()
	}
	return nil
}

// MarkAttempt implements Outbox.
func (o *memOutbox) MarkAttempt(_ context.Context, ids ...int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.markAttempt++
	for _, id := range ids {
		o.rows[id-1].attempts++
	}
	return nil
}

// state returns the number of rows sent, pending and attempted (at least
// once), and the MarkSent and MarkAttempt call counts.
func (o *memOutbox) state() (sent, pending, attempted, markSent, markAttempt int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.rows {
		if r.sent {
			sent++
		} else {
			pending++
		}
		if r.attempts > 0 {
			attempted++
		}
	}
	return sent, pending, attempted, o.markSent, o.markAttempt
}

// isSent reports whether row id is marked sent, and when.
func (o *memOutbox) isSent(id int64) (bool, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.rows[id-1]
	return r.sent, r.sentAt
}

// runRelay runs r until cleanup.
func runRelay(t testing.TB, r *Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Relay.Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Relay.Run did not return within 15s of its ctx being canceled")
		}
	})
}

// rawChannel opens a plain amqp091 connection and channel to rawURL for
// checks behind the package's back, closed at cleanup.
func rawChannel(t testing.TB, rawURL string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(rawURL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

// queueDepth returns the number of ready (not unacked) messages in queue.
func queueDepth(t testing.TB, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect queue %s: %v", queue, err)
	}
	return q.Messages
}

// ids returns n delivery ids with prefix.
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

// transitions records the values passed to a WithConnectedFunc callback.
type transitions struct {
	mu sync.Mutex
	v  []bool
}

// record is the callback.
func (tr *transitions) record(c bool) {
	tr.mu.Lock()
	tr.v = append(tr.v, c)
	tr.mu.Unlock()
}

// sawReconnect reports whether the values contain true, false, true in
// that order.
func (tr *transitions) sawReconnect() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	want := []bool{true, false, true}
	i := 0
	for _, v := range tr.v {
		if i < len(want) && v == want[i] {
			i++
		}
	}
	return i == len(want)
}

// String shows the values.
func (tr *transitions) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return fmt.Sprint(slices.Clone(tr.v))
}

// errInjected is the error of failing fakes.
var errInjected = errors.New("injected failure")
