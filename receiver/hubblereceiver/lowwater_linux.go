package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import "syscall"

// setLowWater sets the socket's receive low-water mark. For TCP, Linux then holds back the
// reader's wake-up until mark bytes are queued (or the receive buffer is under pressure).
func setLowWater(fd uintptr, mark int) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, mark)
}
