package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestAMQPRoundTrip(t *testing.T) {
	t.Parallel()
	url := newVhost(t)
	a, _ := startAMQP(t, url)

	// A plain queue bound behind the package's back shows what is on
	// the wire.
	raw := rawChannel(t, url)
	if _, err := raw.QueueDeclare("wire", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueueBind("wire", "", DefaultExchange, false, nil); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ds, err := a.Consume(ctx, "host-a")
	if err != nil {
		t.Fatal(err)
	}
	want, body := testMessage(t, "round-trip")
	if err := a.Publish(t.Context(), body); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	d := receive(t, ds, 10*time.Second)
	if d.Message != want {
		t.Errorf("Message = %+v, want %+v", d.Message, want)
	}
	if string(d.Body) != string(body) {
		t.Errorf("Body = %s, want %s", d.Body, body)
	}
	if d.Redelivered {
		t.Error("Redelivered = true on a first delivery")
	}
	if err := d.Ack(); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if err := d.Ack(); err != nil {
		t.Fatalf("second Ack: %v", err)
	}

	var got amqp.Delivery
	waitUntil(t, 10*time.Second, "the message in the wire queue", func() bool {
		var ok bool
		got, ok, err = raw.Get("wire", true)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	if got.DeliveryMode != amqp.Persistent {
		t.Errorf("DeliveryMode = %d, want %d (persistent)", got.DeliveryMode, amqp.Persistent)
	}
	if got.ContentType != "application/json" {
		t.Errorf("ContentType = %q, want application/json", got.ContentType)
	}
	if string(got.Body) != string(body) {
		t.Errorf("wire body = %s, want %s", got.Body, body)
	}

	// The double Ack did not kill the consumer channel (RabbitMQ closes
	// a channel that acks an unknown tag): the next message arrives as
	// a first delivery.
	_, body2 := testMessage(t, "after-double-ack")
	if err := a.Publish(t.Context(), body2); err != nil {
		t.Fatal(err)
	}
	d2 := receive(t, ds, 10*time.Second)
	if d2.Message.DeliveryID != "after-double-ack" || d2.Redelivered {
		t.Fatalf("got %q (redelivered %v), want a first delivery of after-double-ack", d2.Message.DeliveryID, d2.Redelivered)
	}
	if err := d2.Ack(); err != nil {
		t.Fatal(err)
	}

	// Stopping the consumer closes the stream; the acked messages are
	// gone for good.
	cancel()
	for range ds {
	}
	if n := queueDepth(t, raw, "host-a"); n != 0 {
		t.Errorf("queue host-a holds %d messages after every one was acked", n)
	}
	if !a.Connected() {
		t.Error("Connected() = false")
	}
}

func TestAMQPSettlement(t *testing.T) {
	t.Parallel()
	url := newVhost(t)
	a, _ := startAMQP(t, url)
	raw := rawChannel(t, url)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ds, err := a.Consume(ctx, "host-a")
	if err != nil {
		t.Fatal(err)
	}

	var got []Delivery
	for _, id := range ids("settle", 3) {
		_, body := testMessage(t, id)
		if err := a.Publish(t.Context(), body); err != nil {
			t.Fatal(err)
		}
		got = append(got, receive(t, ds, 10*time.Second))
	}
	// One pass covered all three. The last one was acked on its own
	// already, so AckUpTo must ack the two before it without naming the
	// acked tag (RabbitMQ closes a channel that acks a tag twice); the
	// stray individual acks of a sloppy caller afterwards are no-ops.
	if err := got[2].Ack(); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if err := got[2].AckUpTo(); err != nil {
		t.Fatalf("AckUpTo: %v", err)
	}
	for _, d := range got {
		if err := d.Ack(); err != nil {
			t.Fatalf("Ack after AckUpTo: %v", err)
		}
	}

	// A malformed body is rejected, not delivered, and does not stop the
	// stream.
	if err := a.Publish(t.Context(), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	_, body := testMessage(t, "after-malformed")
	if err := a.Publish(t.Context(), body); err != nil {
		t.Fatal(err)
	}
	d := receive(t, ds, 10*time.Second)
	if d.Message.DeliveryID != "after-malformed" || d.Redelivered {
		t.Fatalf("got %q (redelivered %v), want a first delivery of after-malformed", d.Message.DeliveryID, d.Redelivered)
	}

	// Reject with requeue hands the message out again.
	if err := d.Reject(true); err != nil {
		t.Fatal(err)
	}
	again := receive(t, ds, 10*time.Second)
	if again.Message.DeliveryID != "after-malformed" || !again.Redelivered {
		t.Fatalf("got %q (redelivered %v), want a redelivery of after-malformed", again.Message.DeliveryID, again.Redelivered)
	}
	if err := again.Ack(); err != nil {
		t.Fatal(err)
	}

	cancel()
	for range ds {
	}
	if n := queueDepth(t, raw, "host-a"); n != 0 {
		t.Errorf("queue holds %d messages; want 0 (all acked or rejected)", n)
	}
	// The zero Delivery settles as a no-op.
	if err := (Delivery{}).Ack(); err != nil {
		t.Error(err)
	}
}

func TestAMQPFanOutToEveryHost(t *testing.T) {
	t.Parallel()
	url := newVhost(t)
	hostA, _ := startAMQP(t, url)
	hostB, _ := startAMQP(t, url)
	relay, _ := startAMQP(t, url)

	gotA := collect(consume(t, hostA, "sitesync.host-a"))
	gotB := collect(consume(t, hostB, "sitesync.host-b"))
	want := ids("fanout", 50)
	for _, id := range want {
		_, body := testMessage(t, id)
		if err := relay.Publish(t.Context(), body); err != nil {
			t.Fatal(err)
		}
	}
	gotA.waitFor(t, want, 20*time.Second)
	gotB.waitFor(t, want, 20*time.Second)
	for name, c := range map[string]*collector{"host-a": gotA, "host-b": gotB} {
		if total, distinct, _ := c.stats(); total != len(want) || distinct != len(want) {
			t.Errorf("%s: %d deliveries of %d messages, want %d of %d (no reconnect happened, so no duplicates)", name, total, distinct, len(want), len(want))
		}
	}
}

func TestAMQPRedeliveryAfterConsumerCrash(t *testing.T) {
	t.Parallel()
	url := newVhost(t)
	pub, _ := startAMQP(t, url)
	crashing, stopCrashing := startAMQP(t, url)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ds, err := crashing.Consume(ctx, "host-a")
	if err != nil {
		t.Fatal(err)
	}
	_, body := testMessage(t, "crash")
	if err := pub.Publish(t.Context(), body); err != nil {
		t.Fatal(err)
	}
	first := receive(t, ds, 10*time.Second)
	if first.Redelivered {
		t.Fatal("first delivery has Redelivered set")
	}
	// The host dies mid-pass: its connection closes without an ack.
	stopCrashing()
	if crashing.Connected() {
		t.Fatal("Connected() = true after Run returned")
	}

	// The restarted host (a new connection) gets the message again.
	restarted, _ := startAMQP(t, url)
	ds2 := consume(t, restarted, "host-a")
	again := receive(t, ds2, 10*time.Second)
	if again.Message.DeliveryID != "crash" || !again.Redelivered {
		t.Fatalf("got %q (redelivered %v), want a redelivery of crash", again.Message.DeliveryID, again.Redelivered)
	}
	// The late ack of the dead host's delivery is dropped silently: it
	// must neither fail nor ack anything on the new channel.
	if err := first.Ack(); err != nil {
		t.Fatalf("Ack of a delivery from a dead channel: %v", err)
	}
	if err := again.Ack(); err != nil {
		t.Fatal(err)
	}
	_, body = testMessage(t, "after-crash")
	if err := pub.Publish(t.Context(), body); err != nil {
		t.Fatal(err)
	}
	if d := receive(t, ds2, 10*time.Second); d.Message.DeliveryID != "after-crash" || d.Redelivered {
		t.Fatalf("got %q (redelivered %v), want a first delivery of after-crash", d.Message.DeliveryID, d.Redelivered)
	}
}

func TestAMQPConsumerResumesAfterConnectionLoss(t *testing.T) {
	t.Parallel()
	url := newVhost(t)
	var pubState, conState transitions
	pub, _ := startAMQP(t, url, WithConnectedFunc(pubState.record))
	con, _ := startAMQP(t, url, WithConnectedFunc(conState.record))
	ds := consume(t, con, "host-a")

	_, body := testMessage(t, "in-flight")
	if err := pub.Publish(t.Context(), body); err != nil {
		t.Fatal(err)
	}
	stale := receive(t, ds, 10*time.Second)

	// RabbitMQ drops every connection of the vhost (as on a network
	// failure or a forced close); the unacked delivery comes back on the
	// new connection, on the same stream.
	rabbitmqctl(t, nil, "close_all_connections", "-p", vhostOf(t, url), "sitesync test: connection loss")
	again := receive(t, ds, 30*time.Second)
	if again.Message.DeliveryID != "in-flight" || !again.Redelivered {
		t.Fatalf("got %q (redelivered %v), want a redelivery of in-flight", again.Message.DeliveryID, again.Redelivered)
	}
	if err := stale.Ack(); err != nil {
		t.Fatalf("Ack of a delivery from the dead channel: %v", err)
	}
	if err := again.Ack(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "publisher reconnected", pub.Connected)
	_, body = testMessage(t, "after-loss")
	if err := pub.Publish(t.Context(), body); err != nil {
		t.Fatal(err)
	}
	if d := receive(t, ds, 10*time.Second); d.Message.DeliveryID != "after-loss" || d.Redelivered {
		t.Fatalf("got %q (redelivered %v), want a first delivery of after-loss", d.Message.DeliveryID, d.Redelivered)
	} else if err := d.Ack(); err != nil {
		t.Fatal(err)
	}
	for name, tr := range map[string]*transitions{"publisher": &pubState, "consumer": &conState} {
		if !tr.sawReconnect() {
			t.Errorf("%s connectivity went %s, want true, false, true", name, tr)
		}
	}
	raw := rawChannel(t, url)
	waitUntil(t, 10*time.Second, "queue drained", func() bool { return queueDepth(t, raw, "host-a") == 0 })
}

func TestAMQPPublishFailsWithoutBroker(t *testing.T) {
	t.Parallel()
	a, _ := startAMQPLog(t, "amqp://guest:guest@127.0.0.1:1/", testLogger(t), false, WithPublishTimeout(300*time.Millisecond))
	_, body := testMessage(t, "nowhere")
	start := time.Now()
	err := a.Publish(t.Context(), body)
	if err == nil {
		t.Fatal("Publish succeeded without a broker")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errNotConnected) {
		t.Errorf("err = %v; want it to wrap errNotConnected and context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Publish took %v with a 300ms publish timeout", el)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := a.Consume(ctx, "q"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Consume err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if a.Connected() {
		t.Error("Connected() = true without a broker")
	}
}

func TestAMQPConsumeRefusedDeclaration(t *testing.T) {
	t.Parallel()
	url := newVhost(t)
	a, _ := startAMQP(t, url)
	// A queue that exists with other arguments cannot be redeclared:
	// Consume reports it at once instead of retrying forever.
	raw := rawChannel(t, url)
	if _, err := raw.QueueDeclare("taken", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := a.Consume(ctx, "taken")
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
		t.Fatalf("Consume of a queue declared with other arguments: err = %v, want PRECONDITION_FAILED", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Consume retried until ctx ended instead of returning the refusal")
	}
}

func TestAMQPPublisherChannelRecovers(t *testing.T) {
	t.Parallel()
	url := newVhost(t)
	var state transitions
	a, _ := startAMQP(t, url, WithConnectedFunc(state.record))
	// Publishing to a missing exchange is a channel error (404): the
	// broker closes the publisher channel, not the connection.
	raw := rawChannel(t, url)
	if err := raw.ExchangeDelete(DefaultExchange, false, false); err != nil {
		t.Fatal(err)
	}
	_, body := testMessage(t, "lost-exchange")
	err := a.Publish(t.Context(), body)
	if !errors.Is(err, errUnconfirmed) {
		t.Fatalf("Publish to a deleted exchange: err = %v, want errUnconfirmed", err)
	}
	// Run reopens the channel and re-declares the exchange on the same
	// connection.
	if err := a.Publish(t.Context(), body); err != nil {
		t.Fatalf("Publish after the channel was reopened: %v", err)
	}
	if err := raw.ExchangeDeclarePassive(DefaultExchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		t.Fatalf("exchange not re-declared: %v", err)
	}
	if state.String() != "[true]" {
		t.Errorf("connectivity went %s; want [true]: the connection never dropped", state.String())
	}
}
