package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Message is what travels from the webhook receiver to reconcilers: it only
// says "the repository is dirty" and why. Reconcilers are level-based, so a
// Message is a trigger, never a description of the desired state; losing
// the details of one (but not the fact that it arrived) is harmless.
type Message struct {
	// DeliveryID is the webhook delivery id (X-GitHub-Delivery). It
	// identifies duplicates when a message is delivered more than once.
	DeliveryID string `json:"delivery_id"`
	// Event is the webhook event name (X-GitHub-Event), e.g. "push".
	Event string `json:"event"`
	// Repository is the full name of the repository, e.g. "acme/sites".
	Repository string `json:"repository"`
	// Ref is the pushed ref, e.g. "refs/heads/main"; empty when the event
	// has none.
	Ref string `json:"ref,omitempty"`
	// Commit is the commit the ref points to after the event; empty when
	// the event has none.
	Commit string `json:"commit,omitempty"`
	// ReceivedAt is when the webhook receiver accepted the delivery.
	ReceivedAt time.Time `json:"received_at"`
}

// Marshal encodes m as the JSON body that is stored in the outbox and
// published (content type application/json).
func (m Message) Marshal() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal message: %w", err)
	}
	return b, nil
}

// errNotObject is returned by Unmarshal for JSON that is not an object.
var errNotObject = errors.New("body is not a JSON object")

// Unmarshal decodes a body produced by Message.Marshal. Unknown fields are
// ignored, so that newer senders can add fields; a body that is not a JSON
// object is an error.
func Unmarshal(b []byte) (Message, error) {
	var m Message
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Message{}, fmt.Errorf("unmarshal message: %w", errNotObject)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, fmt.Errorf("unmarshal message: %w", err)
	}
	return m, nil
}
