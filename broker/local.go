package broker

import (
	"bytes"
	"context"
	"fmt"
)

// Local is the in-process replacement for AMQP, used when the broker URL is
// empty (webhook receiver and reconciler in one process). Publish puts the
// body on a buffered channel; Consume hands the bodies out as Deliveries
// whose Ack and Reject are no-ops. It is "durable" only in the sense that
// the outbox row stays unsent until Publish returns nil: a message that
// was published but not yet consumed is lost when the process exits,
// which the reconciler's full pass at start-up makes harmless. Safe for
// concurrent use.
type Local struct {
	ch chan []byte
}

// NewLocal returns a Local that holds up to buffer published messages
// that were not consumed yet (at least 1); beyond that Publish waits.
func NewLocal(buffer int) *Local {
	return &Local{ch: make(chan []byte, max(buffer, 1))}
}

// Publish queues a copy of body, waiting while the buffer is full, and
// returns nil once it is queued, or an error when ctx ends first. A body
// that does not decode as a Message is refused at once, since no consumer
// could process it.
func (l *Local) Publish(ctx context.Context, body []byte) error {
	if _, err := Unmarshal(body); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	select {
	case l.ch <- bytes.Clone(body):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish: %w", ctx.Err())
	}
}

// Consume returns a channel with every published message, in order, until
// ctx is done; then it closes the channel. queue is ignored: there is one
// stream, and concurrent Consume calls share its messages out between them
// (they do not each get every message). A message taken from the buffer
// when ctx ends is put back if there is room. The error is always nil; the
// signature matches AMQP.Consume.
func (l *Local) Consume(ctx context.Context, queue string) (<-chan Delivery, error) {
	out := make(chan Delivery)
	go func() {
		defer close(out)
		for {
			var body []byte
			select {
			case <-ctx.Done():
				return
			case body = <-l.ch:
			}
			m, err := Unmarshal(body)
			if err != nil {
				// Publish refuses such bodies; nothing to deliver.
				continue
			}
			select {
			case out <- Delivery{Message: m, Body: body}:
			case <-ctx.Done():
				select {
				case l.ch <- body:
				default:
				}
				return
			}
		}
	}()
	return out, nil
}
