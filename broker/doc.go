// Package broker carries "the repository is dirty" notifications from the
// webhook receiver to the reconcilers through RabbitMQ.
//
// # Flow
//
// The webhook receiver stores each GitHub delivery and an outbox row (a
// Message, see Message.Marshal) in one database transaction, then calls
// Relay.Notify. The Relay reads pending rows from the Outbox, publishes
// them with a Publisher (AMQP, or Local without a broker) and marks them
// sent. Every reconciler host consumes its own durable queue, bound to a
// durable fanout exchange (DefaultExchange), so every host gets every
// message; it acks a message only after the reconcile pass that covers it
// has finished.
//
// # Delivery guarantees
//
// Delivery is at-least-once; duplicates are normal, loss is not:
//
//   - A row is marked sent only after Publish returned nil, that is after
//     RabbitMQ's publisher confirm (basic.ack) for a persistent message
//     (delivery mode 2): the message is then on disk in every queue bound
//     to the exchange. A nack, a channel or connection lost before the
//     confirm, or a timeout leave the row pending (MarkAttempt) and it is
//     published again: if the lost confirm was for a stored message, that
//     is a duplicate.
//   - A confirmed row whose MarkSent fails is published again, a
//     duplicate.
//   - A consumer acks (Delivery.Ack, Delivery.AckUpTo) after the pass
//     that covered the message. If the reconciler or its connection dies
//     first, RabbitMQ requeues the message and redelivers it, with
//     Delivery.Redelivered set. Acks for deliveries of a channel that has
//     died are dropped silently (they return nil): the redelivery is the
//     expected outcome. A malformed body is logged and rejected without
//     requeue (dropped).
//   - The exchange drops messages that no queue is bound to: a host
//     only receives messages published after its queue was first
//     declared. Reconcilers do a full pass at start-up, which covers
//     anything earlier.
//   - Ordering is not guaranteed (concurrent publishes, redeliveries);
//     reconcilers are level-based and do not need it.
//
// Consumers deduplicate nothing: a duplicate costs one no-op reconcile
// pass. Message.DeliveryID identifies duplicates for logs.
//
// # Reconnects
//
// AMQP.Run owns the connection. When the connection or the publisher
// channel closes (NotifyClose) it redials with capped exponential backoff
// and jitter (WithReconnectBackoff; reset once a connection has lived a
// while), re-declares the exchange and reopens the confirm-mode publisher
// channel. Connected and the WithConnectedFunc callback report the state,
// for a sitesync_broker_connected gauge. Publish calls made while
// disconnected wait for the reconnect within their timeout. Each Consume
// stream re-declares its queue and binding and resumes on the new
// connection by itself; messages unacked at the disconnect are
// redelivered. amqp091-go's own automatic recovery is not used.
//
// URLs with a password never appear in errors or logs with the password:
// see RedactURL.
//
// # Concurrency and contexts
//
//   - AMQP: Run is called once and blocks until its ctx is done. Publish,
//     Consume and Connected are safe for concurrent use from any number of
//     goroutines; Publish and Consume only work while Run runs. Publish's
//     ctx bounds that call (wait for a connection, send, confirm); Consume's
//     ctx bounds the whole stream: when it is done the consumer channel is
//     closed and the Delivery channel with it.
//   - Delivery: a value; Ack, AckUpTo and Reject are safe for concurrent
//     use, and settling twice is a no-op. They take no ctx: they only
//     write one frame.
//   - Relay: Run is called once and blocks until its ctx is done; Notify
//     never blocks and may be called from any goroutine. Run calls the
//     Outbox from one goroutine at a time and the Publisher from up to
//     RelayOptions.Concurrency goroutines at once, with Run's ctx (outbox
//     marks after a publish use a ctx detached from cancellation, so that
//     a shutdown still records confirmed rows).
//   - Local: Publish and Consume are safe for concurrent use; Publish's
//     ctx bounds the wait for buffer room, Consume's ctx the stream.
//
// No type stores a context; there is no package-level mutable state.
package broker
