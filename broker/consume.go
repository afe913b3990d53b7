package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultQueue returns the queue name a host uses when none is
// configured: "sitesync.<hostname>".
func DefaultQueue() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("default queue name: %w", err)
	}
	return "sitesync." + h, nil
}

// Delivery is one message received by Consume.
//
// Settle it (Ack, AckUpTo or Reject) once; further calls, and calls for a
// delivery that an AckUpTo already covered, are no-ops. Deliveries are
// values and may be copied; their methods are safe for concurrent use.
// A Delivery from Local, or the zero Delivery, settles as a no-op.
type Delivery struct {
	// Message is the decoded Body.
	Message Message
	// Body is the message body as published.
	Body []byte
	// Redelivered is true when RabbitMQ delivered the message before,
	// to this or another consumer, without getting an ack: a previous
	// consumer crashed or lost its connection mid-pass. The message may
	// or may not have been acted on.
	Redelivered bool

	tag  uint64
	acks *ackChannel
}

// Ack acknowledges this delivery: RabbitMQ forgets the message. Call it
// only after the reconcile pass that covers the message has finished.
//
// When the channel the delivery came from has died (connection loss, a
// Consume whose ctx is done) the ack is dropped silently and Ack returns
// nil: RabbitMQ has already requeued the message and will redeliver it,
// with Redelivered set, to the next consumer of the queue. This is the
// expected at-least-once duplicate, never a loss. Ack never panics.
func (d Delivery) Ack() error { return d.settle(opAck) }

// AckUpTo acknowledges this delivery and every earlier delivery of the
// same Consume stream that is not settled yet (basic.ack with multiple),
// e.g. everything a reconcile pass covered. Deliveries that arrived before
// a reconnect belong to the dead channel and are not covered; their
// redelivery is expected. Only use it when every earlier delivery has been
// dealt with (a single goroutine reading the stream in order). Like Ack,
// it returns nil when the channel has died.
func (d Delivery) AckUpTo() error { return d.settle(opAckUpTo) }

// Reject refuses the delivery. With requeue, RabbitMQ puts the message back
// in the queue for another attempt; without, it drops it (it is only meant
// for a message that can never be processed; log it first). Like Ack, it
// returns nil when the channel has died, in which case the message is
// redelivered whatever requeue says.
func (d Delivery) Reject(requeue bool) error {
	if requeue {
		return d.settle(opRequeue)
	}
	return d.settle(opReject)
}

// settle applies op to the delivery, or does nothing without a channel.
func (d Delivery) settle(op settleOp) error {
	if d.acks == nil {
		return nil
	}
	return d.acks.settle(d.tag, op)
}

// settleOp is a way to settle a delivery.
type settleOp int

// The settleOps.
const (
	opAck settleOp = iota
	opAckUpTo
	opReject
	opRequeue
)

// String names the operation for errors.
func (op settleOp) String() string {
	switch op {
	case opAck:
		return "ack"
	case opAckUpTo:
		return "ack up to"
	case opReject:
		return "reject"
	default:
		return "requeue"
	}
}

// ackChannel settles the deliveries of one consumer channel. Delivery tags
// are per channel, so a delivery always settles on the channel it came
// from, never on the channel of a later subscription, whose tags restart at
// 1 and would settle the wrong message. It remembers what it settled, as
// RabbitMQ closes a channel that acks an unknown or already-acked tag
// (PRECONDITION_FAILED), which would redeliver everything in flight.
type ackChannel struct {
	ch  *amqp.Channel
	log *slog.Logger

	mu sync.Mutex
	// floor is the highest tag such that every tag up to it is settled.
	floor uint64
	// settled holds the settled tags above floor.
	settled map[uint64]struct{}
}

// newAckChannel returns the settlement tracker of ch.
func newAckChannel(ch *amqp.Channel, log *slog.Logger) *ackChannel {
	return &ackChannel{ch: ch, log: log, settled: map[uint64]struct{}{}}
}

// settle sends op for tag unless tag is settled already. The lock is held
// across the send so that the broker sees the operations in the order of
// the bookkeeping.
func (c *ackChannel) settle(tag uint64, op settleOp) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	send := tag
	if op == opAckUpTo {
		// A multiple ack of the highest unsettled tag up to tag covers
		// every unsettled one below it and names no settled tag.
		for send > c.floor && c.isSettled(send) {
			send--
		}
	}
	if c.isSettled(send) {
		return nil
	}
	var err error
	switch op {
	case opAck:
		err = c.ch.Ack(send, false)
	case opAckUpTo:
		err = c.ch.Ack(send, true)
	case opReject:
		err = c.ch.Reject(send, false)
	case opRequeue:
		err = c.ch.Reject(send, true)
	}
	if op == opAckUpTo {
		c.floor = tag
		for t := range c.settled {
			if t <= tag {
				delete(c.settled, t)
			}
		}
	} else {
		c.settled[send] = struct{}{}
	}
	for c.isSettled(c.floor + 1) {
		delete(c.settled, c.floor+1)
		c.floor++
	}
	if err != nil {
		if errors.Is(err, amqp.ErrClosed) || c.ch.IsClosed() {
			c.log.Debug("settlement dropped: its channel is closed; RabbitMQ redelivers the message", "op", op.String(), "tag", send)
			return nil
		}
		return fmt.Errorf("%s delivery %d: %w", op, send, err)
	}
	return nil
}

// isSettled reports whether tag was settled; c.mu must be held.
func (c *ackChannel) isSettled(tag uint64) bool {
	if tag <= c.floor {
		return true
	}
	_, ok := c.settled[tag]
	return ok
}

// subscription is one consumer channel.
type subscription struct {
	ch     *amqp.Channel
	msgs   <-chan amqp.Delivery
	closed chan *amqp.Error
	acks   *ackChannel
}

// reason returns why the subscription's channel closed, if it did.
func (s *subscription) reason() error {
	select {
	case e := <-s.closed:
		return closeError("channel", e)
	default:
		return errors.New("consumer canceled")
	}
}

// Consume declares the durable queue named queue (DefaultQueue() when
// empty), binds it to the exchange, sets the prefetch (WithPrefetch),
// starts consuming with manual acks and delivers every message on the
// returned channel, in the order RabbitMQ sends them.
//
// Consume returns once the first subscription is in place, so that
// every message published after it returns reaches the queue. While
// disconnected it waits for Run to connect; it returns an error when ctx
// ends first, and at once when RabbitMQ refuses the declarations (access
// refused, a queue with other arguments). Run must be running.
//
// Afterwards, whenever the channel or the connection closes, Consume
// re-declares and resumes on the next connection; RabbitMQ redelivers the
// messages that were unacked, with Redelivered set. Bodies that do not
// decode as a Message are logged and rejected without requeue, never
// delivered. When ctx is done the channel is closed (RabbitMQ requeues
// what was not acked) and so is the returned channel. Consume may be
// called more than once, with the same or other queues; each call uses its
// own AMQP channel.
func (a *AMQP) Consume(ctx context.Context, queue string) (<-chan Delivery, error) {
	if queue == "" {
		q, err := DefaultQueue()
		if err != nil {
			return nil, fmt.Errorf("consume: %w", err)
		}
		queue = q
	}
	bo := newBackoff(a.cfg.minBackoff, a.cfg.maxBackoff)
	var sub *subscription
	for {
		conn, _, err := a.waitLink(ctx, false)
		if err != nil {
			return nil, fmt.Errorf("consume %s: %w", queue, err)
		}
		sub, err = a.subscribe(conn, queue)
		if err == nil {
			break
		}
		if refused(err) {
			return nil, fmt.Errorf("consume %s: %w", queue, err)
		}
		d := bo.next()
		a.log.Warn("subscribing failed; retrying", "queue", queue, "err", err, "retry_in", d)
		if !sleepCtx(ctx, d) {
			return nil, fmt.Errorf("consume %s: %w", queue, ctx.Err())
		}
	}
	out := make(chan Delivery)
	go a.consumeLoop(ctx, queue, sub, out)
	return out, nil
}

// refused reports whether err is a refusal by RabbitMQ that retrying the
// same declarations will not fix.
func refused(err error) bool {
	var e *amqp.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case amqp.AccessRefused, amqp.NotFound, amqp.ResourceLocked, amqp.PreconditionFailed:
		return true
	}
	return false
}

// subscribe opens a channel on conn and starts consuming queue on it.
func (a *AMQP) subscribe(conn *amqp.Connection, queue string) (*subscription, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, a.red.error(fmt.Errorf("open consumer channel: %w", err))
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	msgs, err := a.declareAndConsume(ch, queue)
	if err != nil {
		_ = ch.Close()
		return nil, a.red.error(err)
	}
	return &subscription{ch: ch, msgs: msgs, closed: closed, acks: newAckChannel(ch, a.log)}, nil
}

// declareAndConsume declares the exchange and queue, binds them, sets the
// prefetch and starts a manual-ack consumer on ch.
func (a *AMQP) declareAndConsume(ch *amqp.Channel, queue string) (<-chan amqp.Delivery, error) {
	if err := a.declareExchange(ch); err != nil {
		return nil, err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return nil, fmt.Errorf("declare queue %q: %w", queue, err)
	}
	if err := ch.QueueBind(queue, "", a.exchange, false, nil); err != nil {
		return nil, fmt.Errorf("bind queue %q to exchange %q: %w", queue, a.exchange, err)
	}
	if err := ch.Qos(a.cfg.prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("set prefetch: %w", err)
	}
	msgs, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume queue %q: %w", queue, err)
	}
	return msgs, nil
}

// consumeLoop forwards sub's deliveries to out and resubscribes whenever
// the subscription dies, until ctx is done; then it closes out.
func (a *AMQP) consumeLoop(ctx context.Context, queue string, sub *subscription, out chan<- Delivery) {
	defer close(out)
	bo := newBackoff(a.cfg.minBackoff, a.cfg.maxBackoff)
	for {
		a.forward(ctx, queue, sub, out)
		// Closing the channel requeues whatever was not acked.
		_ = sub.ch.Close()
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("consumer stopped; resubscribing", "queue", queue, "err", a.red.error(sub.reason()))
		for {
			conn, _, err := a.waitLink(ctx, false)
			if err != nil {
				return
			}
			next, err := a.subscribe(conn, queue)
			if err == nil {
				sub = next
				bo.reset()
				a.log.Info("consumer resubscribed", "queue", queue)
				break
			}
			d := bo.next()
			a.log.Warn("resubscribing failed; retrying", "queue", queue, "err", err, "retry_in", d)
			if !sleepCtx(ctx, d) {
				return
			}
		}
	}
}

// forward copies deliveries from sub to out until sub's delivery channel
// closes or ctx is done.
func (a *AMQP) forward(ctx context.Context, queue string, sub *subscription, out chan<- Delivery) {
	for {
		var d amqp.Delivery
		var ok bool
		select {
		case <-ctx.Done():
			return
		case d, ok = <-sub.msgs:
			if !ok {
				return
			}
		}
		m, err := Unmarshal(d.Body)
		if err != nil {
			a.log.Warn("rejecting malformed message", "queue", queue, "bytes", len(d.Body), "redelivered", d.Redelivered, "err", err)
			if err := sub.acks.settle(d.DeliveryTag, opReject); err != nil {
				a.log.Warn("rejecting malformed message failed", "queue", queue, "err", err)
			}
			continue
		}
		select {
		case out <- Delivery{Message: m, Body: d.Body, Redelivered: d.Redelivered, tag: d.DeliveryTag, acks: sub.acks}:
		case <-ctx.Done():
			return
		}
	}
}
