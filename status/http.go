package status

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health says what /readyz checks.
type Health struct {
	// MaxFailing is how long passes may keep failing (since the last
	// successful one) before the host is reported not ready.
	MaxFailing time.Duration
	// LockHeld reports whether this process holds the host lock (nil: not
	// a reconciler, not checked).
	LockHeld func() bool
	// Ping checks the database (nil: not configured).
	Ping func(ctx context.Context) error
}

// Check is one readiness check's result.
type Check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	Why  string `json:"why,omitempty"`
}

// Readiness is the body of /readyz.
type Readiness struct {
	Ready  bool    `json:"ready"`
	Checks []Check `json:"checks"`
}

// Ready evaluates the readiness checks against the tracker's snapshot.
func (t *Tracker) Ready(ctx context.Context, h Health) Readiness {
	s := t.Snapshot()
	var checks []Check
	if h.LockHeld != nil {
		c := Check{Name: "lock", OK: h.LockHeld()}
		if !c.OK {
			c.Why = "this process does not hold the host lock"
		}
		checks = append(checks, c)
	}
	if h.Ping != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := h.Ping(ctx)
		cancel()
		c := Check{Name: "database", OK: err == nil}
		if err != nil {
			c.Why = err.Error()
		}
		checks = append(checks, c)
	}
	if h.LockHeld != nil {
		checks = append(checks, passCheck(s, h.MaxFailing))
	}
	r := Readiness{Ready: true, Checks: checks}
	for _, c := range checks {
		r.Ready = r.Ready && c.OK
	}
	return r
}

func passCheck(s Snapshot, maxFailing time.Duration) Check {
	c := Check{Name: "reconcile", OK: true}
	if len(s.Passes) == 0 {
		c.OK, c.Why = false, "no pass has finished yet"
		return c
	}
	last := s.Passes[0]
	if last.Outcome != "error" && last.Outcome != "partial" {
		return c
	}
	for _, p := range s.Passes {
		if p.Outcome == "success" || p.Outcome == "noop" {
			if failing := s.GeneratedAt.Sub(p.Started.Add(p.Duration)); failing > maxFailing {
				c.OK, c.Why = false, "passes have failed for "+failing.Round(time.Second).String()+": "+last.Error
			}
			return c
		}
	}
	c.OK, c.Why = false, "no pass has succeeded since start: "+last.Error
	return c
}

// Handler serves the status page (/), /status.json, /metrics (from g),
// /healthz and /readyz.
func Handler(t *Tracker, page *Page, g prometheus.Gatherer, h Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rd := t.Ready(r.Context(), h)
		code := http.StatusOK
		if !rd.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, rd)
	})
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, t.Snapshot())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_ = page.Write(w, t.Snapshot())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
