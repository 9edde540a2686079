//go:build !linux

package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

// setLowWater leaves the socket as it is where SO_RCVLOWAT does not delay poll wake-ups:
// the reader is then woken as data arrives.
func setLowWater(uintptr, int) error { return nil }
