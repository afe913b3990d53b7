package broker

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sitesync/sitesync/internal/testenv"
)

// TestBrokerRestart stops and restarts the RabbitMQ application in the
// middle of a stream of 200 outbox rows. It is the only test of the
// package that does so, and it is not parallel: Go runs the package's
// parallel tests only after every sequential one has finished, so nothing
// else of this package is connected meanwhile. stop_app stops every vhost
// of the node, so the test holds the broker lock exclusively: tests of
// other packages that use RabbitMQ (through testenv) wait for it.
func TestBrokerRestart(t *testing.T) {
	requireBroker(t)
	url := testenv.RabbitMQURLExclusive(t)
	var pubState, conState transitions
	opts := []AMQPOption{WithReconnectBackoff(50*time.Millisecond, time.Second), WithPublishTimeout(3 * time.Second)}
	pub, _ := startAMQP(t, url, append(opts, WithConnectedFunc(pubState.record))...)
	con, _ := startAMQP(t, url, append(opts, WithConnectedFunc(conState.record))...)
	// The host acks once per 300ms "pass", so messages are in flight,
	// unacked, when the broker goes away.
	got := collectInPasses(consume(t, con, "sitesync.host-a"), 300*time.Millisecond)

	ob := &memOutbox{}
	r := NewRelay(ob, pub, testLogger(t), RelayOptions{PollInterval: 200 * time.Millisecond, MaxBackoff: time.Second})
	runRelay(t, r)

	want := ids("restart", 200)
	bodies := make([][]byte, len(want))
	for i, id := range want {
		_, bodies[i] = testMessage(t, id)
	}
	halfway := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i, body := range bodies {
			if i == len(bodies)/2 {
				close(halfway)
			}
			ob.add(body)
			r.Notify()
			time.Sleep(20 * time.Millisecond)
		}
	}()

	<-halfway
	restartBrokerApp(t, url, 2*time.Second)
	<-produced

	waitUntil(t, 90*time.Second, "every outbox row marked sent", func() bool {
		_, pending, _, _, _ := ob.state()
		return pending == 0
	})
	got.waitFor(t, want, 60*time.Second)

	sent, _, attempted, markSent, markAttempt := ob.state()
	total, distinct, redelivered := got.stats()
	t.Logf("outbox: %d rows sent in %d MarkSent calls; %d rows needed retries (%d MarkAttempt calls)", sent, markSent, attempted, markAttempt)
	t.Logf("consumer: %d deliveries of %d messages, %d redelivered, %d duplicates", total, distinct, redelivered, total-distinct)
	if distinct != len(want) {
		t.Errorf("consumer saw %d distinct messages, want %d", distinct, len(want))
	}
	for name, tr := range map[string]*transitions{"publisher": &pubState, "consumer": &conState} {
		if !tr.sawReconnect() {
			t.Errorf("%s connectivity went %s, want true, false, true", name, tr)
		}
	}
	if !pub.Connected() || !con.Connected() {
		t.Errorf("Connected() = %v (publisher), %v (consumer) after the restart", pub.Connected(), con.Connected())
	}
}

// restartBrokerApp stops the RabbitMQ application, waits down, starts it
// again and waits until rawURL accepts connections. Whatever happens, the
// application is running again when the test ends.
func restartBrokerApp(t *testing.T, rawURL string, down time.Duration) {
	t.Helper()
	stopped := false
	t.Cleanup(func() {
		if stopped {
			rabbitmqctl(t, nil, "start_app")
			waitBrokerUp(t, rawURL)
		}
	})
	stopped = true
	rabbitmqctl(t, nil, "stop_app")
	t.Log("RabbitMQ application stopped")
	time.Sleep(down)
	rabbitmqctl(t, nil, "start_app")
	rabbitmqctl(t, nil, "await_startup")
	waitBrokerUp(t, rawURL)
	stopped = false
	t.Log("RabbitMQ application started")
}

// waitBrokerUp waits until a connection to rawURL succeeds.
func waitBrokerUp(t *testing.T, rawURL string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		conn, err := amqp.Dial(rawURL)
		if err == nil {
			_ = conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RabbitMQ did not accept connections again within 90s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
