package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// sourceFilter decides whether a request comes from an allowed network.
type sourceFilter struct {
	allowed []netip.Prefix
	hops    int
}

// allows reports whether the client of r is in one of the allowed
// networks. An empty allow-list allows every client without looking at
// the request. A client address that cannot be determined is not allowed.
func (f sourceFilter) allows(r *http.Request) bool {
	if len(f.allowed) == 0 {
		return true
	}
	addr, err := clientAddr(r, f.hops)
	if err != nil {
		return false
	}
	for _, p := range f.allowed {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddr returns the address of the client that sent r, behind hops
// trusted reverse proxies.
//
// With hops == 0 it is the peer address of the connection (r.RemoteAddr)
// and X-Forwarded-For is ignored, whatever it says. With hops == N > 0,
// the connection comes from the last of N proxies, and each proxy appended
// the address of its own peer to X-Forwarded-For, so the list ends with
// "client, proxy1, ..., proxyN-1": the client is the N-th entry from the
// right. Everything to its left was written by the client itself and is
// never read. A list with fewer than N entries (the request did not pass
// through every proxy) or an unparsable N-th entry is an error. Several
// X-Forwarded-For header lines are read as one list, in order.
func clientAddr(r *http.Request, hops int) (netip.Addr, error) {
	if hops <= 0 {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("parse remote address: %w", err)
		}
		return normalize(ap.Addr()), nil
	}
	lines := r.Header.Values("X-Forwarded-For")
	seen := 0
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for {
			entry := rest
			cut := strings.LastIndexByte(rest, ',')
			if cut >= 0 {
				entry, rest = rest[cut+1:], rest[:cut]
			}
			seen++
			if seen == hops {
				return parseForwarded(strings.TrimSpace(entry))
			}
			if cut < 0 {
				break
			}
		}
	}
	return netip.Addr{}, errors.New("x-forwarded-for has fewer entries than trusted proxy hops")
}

// parseForwarded parses one X-Forwarded-For entry: an IP address, or an
// address with a port ("192.0.2.1:443", "[2001:db8::1]:443").
func parseForwarded(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("parse x-forwarded-for entry: %w", err)
	}
	return normalize(ap.Addr()), nil
}

// normalize drops an IPv6 zone and unmaps IPv4-mapped IPv6 addresses, so
// that ::ffff:192.0.2.1 matches 192.0.2.0/24.
func normalize(a netip.Addr) netip.Addr {
	return a.WithZone("").Unmap()
}
