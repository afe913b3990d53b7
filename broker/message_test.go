package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	want, body := testMessage(t, "abc")
	for _, key := range []string{`"delivery_id":"abc"`, `"event":"push"`, `"repository":"acme/sites"`, `"received_at":"2026-01-02T03:04:05.000006Z"`} {
		if !strings.Contains(string(body), key) {
			t.Errorf("body %s lacks %s", body, key)
		}
	}
	got, err := Unmarshal(body)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Errorf("Unmarshal(Marshal(m)) = %+v, want %+v", got, want)
	}
}

func TestUnmarshalIgnoresUnknownFields(t *testing.T) {
	t.Parallel()
	m, err := Unmarshal([]byte(` {"repository":"acme/sites","future":{"x":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Repository != "acme/sites" {
		t.Errorf("Repository = %q", m.Repository)
	}
}

func TestUnmarshalRejectsMalformed(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "null", "[]", `"x"`, "not json", `{"repository":`, `{"received_at":"yesterday"}`} {
		if _, err := Unmarshal([]byte(body)); err == nil {
			t.Errorf("Unmarshal(%q) succeeded", body)
		}
	}
	if _, err := Unmarshal([]byte("null")); !errors.Is(err, errNotObject) {
		t.Errorf("Unmarshal(null): %v, want errNotObject", err)
	}
}
