package webhook

import (
	"net/http"
	"time"
)

// serverTimeouts are the limits NewServer puts on a connection.
type serverTimeouts struct {
	readHeader, read, write, idle time.Duration
}

// defaultTimeouts returns the limits of NewServer. A delivery has 5 s to
// send its headers and 15 s for the whole request, so a client trickling
// its body is cut off; GitHub itself gives up after 10 s.
func defaultTimeouts() serverTimeouts {
	return serverTimeouts{
		readHeader: 5 * time.Second,
		read:       15 * time.Second,
		write:      15 * time.Second,
		idle:       60 * time.Second,
	}
}

// maxHeaderBytes bounds the request headers NewServer accepts.
const maxHeaderBytes = 64 << 10

// NewServer returns an *http.Server listening on addr and serving h, with
// timeouts suited to an endpoint exposed to the internet:
// ReadHeaderTimeout 5 s, ReadTimeout 15 s (a slow body is cut off and the
// handler answers 408, Result "timeout"), WriteTimeout 15 s, IdleTimeout
// 60 s and MaxHeaderBytes 64 KiB. The caller starts it (ListenAndServe)
// and stops it (Shutdown).
func NewServer(addr string, h http.Handler) *http.Server {
	return newServer(addr, h, defaultTimeouts())
}

// newServer is NewServer with the timeouts as a parameter, for tests.
func newServer(addr string, h http.Handler, t serverTimeouts) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}
