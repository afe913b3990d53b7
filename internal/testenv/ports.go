package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free when it was picked.
// The port is released before FreePort returns; see FreePorts for why
// another process is unlikely to take it.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free when
// they were picked. All n listeners are held open until every port is
// chosen, so the ports differ from one another.
//
// The ports are drawn at random from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), which outgoing connections and bind to
// port 0 use: between the pick and the test's own bind, the many
// connections a parallel test run makes cannot take the port, and another
// test process picks the same one only by a 1-in-thousands chance.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := pickRange()
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			t.Fatalf("testenv: no free port in [%d, %d) after %d tries", lo, hi, tries)
		}
		port := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		listeners = append(listeners, l)
		ports = append(ports, port)
	}
	return ports
}

// pickRange returns the ports FreePorts draws from: from 20000 (or 1024)
// up to the start of the ephemeral range.
func pickRange() (lo, hi int) {
	hi = 32768 // Linux's default ip_local_port_range start
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var start, end int
		if _, err := fmt.Sscan(string(b), &start, &end); err == nil && start > 1024 {
			hi = start
		}
	}
	lo = 20000
	if hi-lo < 4096 {
		lo = 1024
	}
	return lo, hi
}
