// Package inventorysources counts the inventory sources (k8s_inventory receivers) started in
// this process. The kestrel exporter asks it whether an empty inventory mirror means
// "nothing listed yet" — then the first InventoryCommit must wait, or the cloud would
// replace the cluster's inventory with nothing — or "no inventory in this collector at
// all", when waiting would only hold back the side streams and cloud requests.
//
// Receivers register in Start, which the collector runs before any extension's Ready, so
// the count is settled before the connection's first snapshot; announcing through the
// pipeline instead would race with batching processors.
package inventorysources

import "sync/atomic"

var running atomic.Int64

// Register records a running source; call the returned function when it shuts down.
func Register() (unregister func()) {
	running.Add(1)
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			running.Add(-1)
		}
	}
}

// Running returns how many sources are registered.
func Running() int { return int(running.Load()) }
