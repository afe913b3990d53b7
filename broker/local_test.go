package broker

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLocalPublishConsume(t *testing.T) {
	t.Parallel()
	l := NewLocal(10)
	want := ids("local", 5)
	for _, id := range want {
		_, body := testMessage(t, id)
		if err := l.Publish(t.Context(), body); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	ds, err := l.Consume(ctx, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range want {
		d := receive(t, ds, 5*time.Second)
		if d.Message.DeliveryID != id || d.Redelivered {
			t.Fatalf("got %q (redelivered %v), want %q in publish order", d.Message.DeliveryID, d.Redelivered, id)
		}
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
		if err := d.AckUpTo(); err != nil {
			t.Fatal(err)
		}
		if err := d.Reject(false); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	select {
	case _, ok := <-ds:
		if ok {
			t.Fatal("delivery after ctx was canceled")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream not closed after ctx was canceled")
	}
}

func TestLocalPublishCopiesBody(t *testing.T) {
	t.Parallel()
	l := NewLocal(1)
	_, body := testMessage(t, "copy")
	if err := l.Publish(t.Context(), body); err != nil {
		t.Fatal(err)
	}
	clear(body)
	ds, _ := l.Consume(t.Context(), "")
	if d := receive(t, ds, 5*time.Second); d.Message.DeliveryID != "copy" {
		t.Fatalf("got %q; the caller's later writes to body leaked into the message", d.Message.DeliveryID)
	}
}

func TestLocalPublishWaitsForRoom(t *testing.T) {
	t.Parallel()
	l := NewLocal(1)
	_, body := testMessage(t, "first")
	if err := l.Publish(t.Context(), body); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := l.Publish(ctx, body); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish into a full buffer: err = %v, want context.DeadlineExceeded", err)
	}
	// A consumer makes room.
	ds, _ := l.Consume(t.Context(), "")
	_, body2 := testMessage(t, "second")
	if err := l.Publish(t.Context(), body2); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"first", "second"} {
		if d := receive(t, ds, 5*time.Second); d.Message.DeliveryID != id {
			t.Fatalf("got %q, want %q", d.Message.DeliveryID, id)
		}
	}
}

func TestLocalRefusesMalformedAndCanceled(t *testing.T) {
	t.Parallel()
	l := NewLocal(1)
	if err := l.Publish(t.Context(), []byte("not json")); err == nil {
		t.Error("Publish accepted a body that is not a Message")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, body := testMessage(t, "late")
	if err := l.Publish(ctx, body); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a canceled ctx: err = %v, want context.Canceled", err)
	}
}

func TestLocalWithRelay(t *testing.T) {
	t.Parallel()
	l := NewLocal(10)
	ob := &memOutbox{}
	r := NewRelay(ob, l, testLogger(t), RelayOptions{PollInterval: time.Hour})
	runRelay(t, r)
	got := collect(func() <-chan Delivery { ds, _ := l.Consume(t.Context(), ""); return ds }())
	want := ids("local-relay", 30)
	for _, id := range want {
		_, body := testMessage(t, id)
		ob.add(body)
		r.Notify()
	}
	got.waitFor(t, want, 10*time.Second)
	waitUntil(t, 5*time.Second, "every row marked sent", func() bool {
		_, pending, _, _, _ := ob.state()
		return pending == 0
	})
}
