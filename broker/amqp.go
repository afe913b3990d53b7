package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultExchange is the exchange NewAMQP declares when none is given.
const DefaultExchange = "sitesync"

// Defaults of the AMQP options.
const (
	defaultMinReconnect   = 100 * time.Millisecond
	defaultMaxReconnect   = 30 * time.Second
	defaultDialTimeout    = 10 * time.Second
	defaultPublishTimeout = 10 * time.Second
	defaultPrefetch       = 1000
	// closeTimeout bounds the graceful close of a connection that Run
	// gives up, so that a dead peer cannot stall Run.
	closeTimeout = 2 * time.Second
	// stableAfter is how long a connection must have lived for the next
	// reconnect to start again at the minimum delay.
	stableAfter = time.Second
)

// contentType is the content type of every published body.
const contentType = "application/json"

// AMQPOption configures NewAMQP.
type AMQPOption func(*amqpConfig)

// amqpConfig holds the settings AMQPOptions change.
type amqpConfig struct {
	minBackoff, maxBackoff time.Duration
	dialTimeout            time.Duration
	publishTimeout         time.Duration
	prefetch               int
	onConnected            func(connected bool)
}

// WithReconnectBackoff sets the delays between reconnection attempts: the
// first retry waits about minDelay, each further one twice as long, up to
// maxDelay, with jitter. Defaults: 100ms and 30s.
func WithReconnectBackoff(minDelay, maxDelay time.Duration) AMQPOption {
	return func(c *amqpConfig) { c.minBackoff, c.maxBackoff = minDelay, maxDelay }
}

// WithDialTimeout bounds the TCP connect and the AMQP handshake of one
// connection attempt. Default: 10s.
func WithDialTimeout(d time.Duration) AMQPOption {
	return func(c *amqpConfig) {
		if d > 0 {
			c.dialTimeout = d
		}
	}
}

// WithPublishTimeout bounds one Publish call, including the wait for a
// connection and for the publisher confirm, on top of the caller's ctx.
// Default: 10s.
func WithPublishTimeout(d time.Duration) AMQPOption {
	return func(c *amqpConfig) {
		if d > 0 {
			c.publishTimeout = d
		}
	}
}

// WithPrefetch sets the consumer prefetch (basic.qos): how many unacked
// deliveries RabbitMQ sends ahead of the acks. Deliveries stay unacked
// until the reconcile pass that covers them ends, so it should cover the
// burst that arrives during one pass; what does not fit waits in the queue
// and costs an extra pass. Default: 1000.
func WithPrefetch(n int) AMQPOption {
	return func(c *amqpConfig) {
		if n > 0 {
			c.prefetch = n
		}
	}
}

// WithConnectedFunc registers f, called from Run's goroutine with true
// each time the connection (with its publisher channel) becomes ready and
// with false each time it is lost; e.g. to set a sitesync_broker_connected
// gauge. f must not block.
func WithConnectedFunc(f func(connected bool)) AMQPOption {
	return func(c *amqpConfig) { c.onConnected = f }
}

// AMQP is a RabbitMQ connection manager used by both the relay (Publish)
// and the reconcilers (Consume). Run keeps one connection up; Publish and
// Consume use it and are safe for concurrent use. See the package
// documentation for the delivery guarantees.
type AMQP struct {
	url      string
	redacted string
	red      redactor
	exchange string
	connName string
	log      *slog.Logger
	cfg      amqpConfig

	connected atomic.Bool

	mu sync.Mutex
	// conn is the current connection, nil while disconnected.
	conn *amqp.Connection
	// pub is the confirm-mode publisher channel on conn, nil while it is
	// not ready.
	pub *amqp.Channel
	// changed is closed, and replaced, whenever conn or pub change.
	changed chan struct{}
	// lastErr is why the last connection attempt or connection failed,
	// already redacted; nil while connected.
	lastErr error
	// blocked is the reason RabbitMQ gave for blocking publishers
	// (connection.blocked, a resource alarm); empty when it does not.
	blocked string
}

// NewAMQP returns a connection manager for the broker at url (amqp:// or
// amqps://) that publishes to, and binds queues to, the durable fanout
// exchange named exchange (DefaultExchange when empty). It does not
// connect: call Run. log may be nil.
func NewAMQP(url, exchange string, log *slog.Logger, opts ...AMQPOption) *AMQP {
	if exchange == "" {
		exchange = DefaultExchange
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := amqpConfig{
		minBackoff:     defaultMinReconnect,
		maxBackoff:     defaultMaxReconnect,
		dialTimeout:    defaultDialTimeout,
		publishTimeout: defaultPublishTimeout,
		prefetch:       defaultPrefetch,
	}
	for _, o := range opts {
		o(&cfg)
	}
	name := "sitesync"
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return &AMQP{
		url:      url,
		redacted: RedactURL(url),
		red:      newRedactor(url),
		exchange: exchange,
		connName: name,
		log:      log.With("broker", RedactURL(url)),
		cfg:      cfg,
		changed:  make(chan struct{}),
	}
}

// Connected reports whether a connection with a ready publisher channel is
// up right now.
func (a *AMQP) Connected() bool { return a.connected.Load() }

// Run connects, declares the exchange, opens the publisher channel and
// keeps them up until ctx is done, reconnecting with capped exponential
// backoff and jitter whenever the connection or the channel closes. It
// logs every failure. It returns nil once ctx is done, having closed the
// connection, and an error only for a URL it cannot parse. Call Run once.
func (a *AMQP) Run(ctx context.Context) error {
	if _, err := amqp.ParseURI(a.url); err != nil {
		return fmt.Errorf("broker url %s: %w", a.redacted, a.red.error(err))
	}
	bo := newBackoff(a.cfg.minBackoff, a.cfg.maxBackoff)
	for {
		uptime, err := a.serve(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if uptime >= stableAfter {
			bo.reset()
		}
		a.setLastErr(err)
		d := bo.next()
		a.log.Warn("broker connection failed; reconnecting", "err", err, "retry_in", d)
		if !sleepCtx(ctx, d) {
			return nil
		}
	}
}

// serve runs one connection: it dials, opens the publisher channel,
// publishes the connection to Publish and Consume, and waits until the
// connection dies or ctx is done. uptime is how long the connection was
// ready; err (redacted) is why it ended.
func (a *AMQP) serve(ctx context.Context) (uptime time.Duration, err error) {
	conn, err := a.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.CloseDeadline(time.Now().Add(closeTimeout)) }()
	// Both notification channels are buffered and always read: amqp091
	// stalls its frame reader (up to 5s per event) on listeners that do
	// not read. Registered before anything else so no close is missed.
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))

	pub, pubClosed, err := a.openPublisher(conn)
	if err != nil {
		return 0, a.red.error(err)
	}
	start := time.Now()
	a.setLink(conn, pub)
	a.log.Info("connected to broker", "exchange", a.exchange)
	defer a.clearLink()

	for {
		select {
		case <-ctx.Done():
			return time.Since(start), nil
		case e := <-connClosed:
			return time.Since(start), a.red.error(closeError("connection", e))
		case e := <-pubClosed:
			pubClosed = nil
			if conn.IsClosed() {
				// The connection died; connClosed reports why.
				continue
			}
			a.log.Warn("publisher channel closed; reopening it", "err", a.red.error(closeError("channel", e)))
			a.setPublisher(nil)
			pub, pubClosed, err = a.openPublisher(conn)
			if err != nil {
				return time.Since(start), a.red.error(fmt.Errorf("reopen publisher channel: %w", err))
			}
			a.setPublisher(pub)
		case b, ok := <-blocked:
			if !ok {
				// Closed with the connection; connClosed reports why.
				blocked = nil
				continue
			}
			a.setBlocked(b)
			if b.Active {
				a.log.Warn("broker blocks publishers", "reason", b.Reason)
			} else {
				a.log.Info("broker unblocked publishers")
			}
		}
	}
}

// closeError describes the close of a connection or channel, e reported
// by NotifyClose; e is nil for a close that was not initiated by an error.
func closeError(what string, e *amqp.Error) error {
	if e == nil {
		return fmt.Errorf("%s closed", what)
	}
	return fmt.Errorf("%s closed: %w", what, e)
}

// dial opens one connection. A canceled ctx aborts the TCP connect.
func (a *AMQP) dial(ctx context.Context) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(a.connName)
	timeout := a.cfg.dialTimeout
	conn, err := amqp.DialConfig(a.url, amqp.Config{
		Properties: props,
		// The dialer uses ctx for the TCP connect only; amqp091 keeps
		// it in the connection's Config but, with Recovery off, never
		// dials again.
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bounds the AMQP handshake; amqp091 clears it once open.
			if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
				_ = c.Close()
				return nil, err
			}
			return c, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", a.redacted, a.red.error(err))
	}
	return conn, nil
}

// declareExchange declares the durable fanout exchange on ch.
func (a *AMQP) declareExchange(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(a.exchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %q: %w", a.exchange, err)
	}
	return nil
}

// openPublisher opens a channel on conn, declares the exchange and puts
// the channel in confirm mode. closed receives the channel's close.
func (a *AMQP) openPublisher(conn *amqp.Connection) (ch *amqp.Channel, closed chan *amqp.Error, err error) {
	ch, err = conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("open publisher channel: %w", err)
	}
	closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := a.declareExchange(ch); err != nil {
		_ = ch.Close()
		return nil, nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	return ch, closed, nil
}

// setLink makes conn and pub current and reports the connection.
func (a *AMQP) setLink(conn *amqp.Connection, pub *amqp.Channel) {
	a.mu.Lock()
	a.conn, a.pub, a.lastErr, a.blocked = conn, pub, nil, ""
	a.signalLocked()
	a.mu.Unlock()
	a.setConnected(true)
}

// clearLink forgets the current connection and reports its loss.
func (a *AMQP) clearLink() {
	a.mu.Lock()
	a.conn, a.pub, a.blocked = nil, nil, ""
	a.signalLocked()
	a.mu.Unlock()
	a.setConnected(false)
}

// setPublisher replaces the publisher channel of the current connection.
func (a *AMQP) setPublisher(pub *amqp.Channel) {
	a.mu.Lock()
	a.pub = pub
	a.signalLocked()
	a.mu.Unlock()
}

// setLastErr records why the connection is down, for Publish's errors.
func (a *AMQP) setLastErr(err error) {
	a.mu.Lock()
	a.lastErr = err
	a.mu.Unlock()
}

// setBlocked records a connection.blocked or connection.unblocked.
func (a *AMQP) setBlocked(b amqp.Blocking) {
	a.mu.Lock()
	a.blocked = ""
	if b.Active {
		a.blocked = b.Reason
		if a.blocked == "" {
			a.blocked = "no reason given"
		}
	}
	a.mu.Unlock()
}

// signalLocked wakes everyone waiting for a change; a.mu must be held.
func (a *AMQP) signalLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// setConnected updates Connected and calls the callback on a change.
func (a *AMQP) setConnected(v bool) {
	if a.connected.Swap(v) != v && a.cfg.onConnected != nil {
		a.cfg.onConnected(v)
	}
}

// errNotConnected is returned, wrapped, when no connection came up in time.
var errNotConnected = errors.New("not connected")

// waitLink waits until a connection is up (and, with needPub, its
// publisher channel is ready) and returns it, or returns an error saying
// why the broker is unreachable once ctx is done.
func (a *AMQP) waitLink(ctx context.Context, needPub bool) (*amqp.Connection, *amqp.Channel, error) {
	for {
		a.mu.Lock()
		conn, pub, changed := a.conn, a.pub, a.changed
		a.mu.Unlock()
		if conn != nil && !conn.IsClosed() && (!needPub || (pub != nil && !pub.IsClosed())) {
			return conn, pub, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			a.mu.Lock()
			lastErr := a.lastErr
			a.mu.Unlock()
			if lastErr != nil {
				return nil, nil, fmt.Errorf("%w to %s (last error: %v): %w", errNotConnected, a.redacted, lastErr, ctx.Err())
			}
			return nil, nil, fmt.Errorf("%w to %s: %w", errNotConnected, a.redacted, ctx.Err())
		}
	}
}

// errNacked is returned, wrapped, when RabbitMQ refuses a message.
var errNacked = errors.New("broker nacked the message")

// errBlocked is returned, wrapped, while RabbitMQ blocks publishers
// (connection.blocked, raised by a memory or disk alarm).
var errBlocked = errors.New("broker blocks publishers")

// errUnconfirmed is returned, wrapped, when the channel closes before the
// publisher confirm arrives: the message may or may not be stored.
var errUnconfirmed = errors.New("channel closed before the broker confirmed the message")

// Publish sends body to the exchange as a persistent message (delivery
// mode 2, content type application/json) on the confirm-mode publisher
// channel, and returns nil only once RabbitMQ has confirmed it, that is
// stored it durably in every queue bound to the exchange. A nack, a
// channel or connection that closes first, ctx ending or the publish
// timeout (WithPublishTimeout) passing make it return an error; the
// message may then still have been stored, so a retry can duplicate it.
// While disconnected, Publish waits for Run to reconnect within the same
// limits. Safe for concurrent use; ordering between concurrent calls is
// not preserved. body is copied.
func (a *AMQP) Publish(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.publishTimeout)
	defer cancel()
	_, pub, err := a.waitLink(ctx, true)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	a.mu.Lock()
	blocked := a.blocked
	a.mu.Unlock()
	if blocked != "" {
		return fmt.Errorf("publish: %w: %s", errBlocked, blocked)
	}
	msg := amqp.Publishing{
		ContentType:  contentType,
		DeliveryMode: amqp.Persistent,
		Timestamp:    time.Now(),
		Body:         bytes.Clone(body),
	}
	// The write itself can block on a full socket while RabbitMQ blocks
	// publishers, and amqp091 checks ctx only before it; running it aside
	// lets ctx bound the call.
	type sent struct {
		dc  *amqp.DeferredConfirmation
		err error
	}
	res := make(chan sent, 1)
	go func() {
		dc, err := pub.PublishWithDeferredConfirm(a.exchange, "", false, false, msg)
		res <- sent{dc, err}
	}()
	var s sent
	select {
	case s = <-res:
	case <-ctx.Done():
		return fmt.Errorf("publish: %w", ctx.Err())
	}
	if s.err != nil {
		return fmt.Errorf("publish: %w", a.red.error(s.err))
	}
	select {
	case <-s.dc.Done():
	case <-ctx.Done():
		return fmt.Errorf("publish: wait for confirm: %w", ctx.Err())
	}
	if !s.dc.Acked() {
		// amqp091 reports a channel that closed with confirms pending as
		// nacks; tell the two apart.
		if pub.IsClosed() {
			return fmt.Errorf("publish: %w", errUnconfirmed)
		}
		return fmt.Errorf("publish: %w", errNacked)
	}
	return nil
}
