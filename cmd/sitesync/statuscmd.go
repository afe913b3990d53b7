package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/sitesync/sitesync/reconciler"
	"github.com/sitesync/sitesync/status"
)

func cmdStatus(ctx context.Context, e *env, args []string) int {
	var c commonFlags
	fs := newFlagSet(e, "status", &c)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return parseErr(err)
	}
	cfg, err := loadConfig(e, c.config)
	if err != nil {
		fmt.Fprintln(e.stderr, "sitesync:", err)
		return exitError
	}
	snap, err := fetchStatus(ctx, "http://"+cfg.Metrics.Listen+"/status.json")
	if err != nil {
		// Not running (or not reachable): work it out with a dry run.
		fmt.Fprintf(e.stderr, "sitesync status: the service at %s did not answer (%v); computing the status from a dry run\n", cfg.Metrics.Listen, err)
		code := withReconciler(ctx, e, &c, "sitesync status", func(r *reconciler.Reconciler) int {
			res, perr := r.Plan(ctx)
			host, _ := os.Hostname()
			snap = status.FromResult(status.Snapshot{Host: host}, res, perr, []string{"manual"}, nil)
			snap.GeneratedAt = time.Now()
			return exitOK
		})
		if code != exitOK {
			return code
		}
	}
	if *asJSON {
		if err := status.WriteJSON(e.stdout, snap); err != nil {
			return exitError
		}
		return exitOK
	}
	if err := status.WriteTable(e.stdout, snap, isTerminal(e.stdout)); err != nil {
		return exitError
	}
	return exitOK
}

func fetchStatus(ctx context.Context, url string) (status.Snapshot, error) {
	var s status.Snapshot
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("%s", resp.Status)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&s)
	return s, err
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
