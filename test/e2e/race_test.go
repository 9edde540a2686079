//go:build race

package e2e

// raceEnabled: the race detector multiplies allocations and slows every goroutine, so
// memory bounds are not asserted under it and load is scaled down.
const raceEnabled = true
