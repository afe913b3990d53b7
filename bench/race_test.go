//go:build race

package bench

// raceEnabled is true when the test binary runs under the race detector.
const raceEnabled = true
