package main

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"github.com/sitesync/sitesync/broker"
	"github.com/sitesync/sitesync/store"
	"github.com/sitesync/sitesync/webhook"
)

// acceptor makes an accepted webhook delivery durable: a delivery record
// and an outbox row in one transaction, relayed to the broker. When the
// database is unavailable it hands the message straight to the broker
// (durable once confirmed): marking the repository dirty twice is harmless,
// losing the mark is not.
type acceptor struct {
	store  *store.Store
	relay  *broker.Relay
	direct broker.Publisher
	log    *slog.Logger
}

func (a *acceptor) Accept(ctx context.Context, d webhook.Delivery) (bool, error) {
	body, err := broker.Message{DeliveryID: d.ID, Event: d.Event, Repository: d.Repository, Ref: d.Ref, Commit: d.HeadCommit, ReceivedAt: d.ReceivedAt}.Marshal()
	if err != nil {
		return false, err
	}
	dup, err := a.store.RecordDelivery(ctx, store.Delivery{ID: d.ID, Event: d.Event, Repository: d.Repository, Ref: d.Ref, HeadCommit: d.HeadCommit, ReceivedAt: d.ReceivedAt}, body)
	if err == nil {
		if !dup {
			a.relay.Notify()
		}
		return dup, nil
	}
	if perr := a.direct.Publish(ctx, body); perr != nil {
		return false, errors.Join(err, perr)
	}
	a.log.Warn("database unavailable: delivery published to the broker directly, without a record", "delivery", d.ID, "err", err)
	return false, nil
}

// outbox adapts the store to the relay.
type outbox struct{ s *store.Store }

func (o outbox) PendingOutbox(ctx context.Context, limit int) ([]broker.Pending, error) {
	rows, err := o.s.PendingOutbox(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]broker.Pending, len(rows))
	for i, r := range rows {
		out[i] = broker.Pending{ID: r.ID, Body: r.Body}
	}
	return out, nil
}

func (o outbox) MarkSent(ctx context.Context, ids ...int64) error { return o.s.MarkSent(ctx, ids...) }
func (o outbox) MarkAttempt(ctx context.Context, ids ...int64) error {
	return o.s.MarkAttempt(ctx, ids...)
}

func listenTCP(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
