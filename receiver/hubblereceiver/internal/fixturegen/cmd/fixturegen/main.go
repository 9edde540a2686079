// Command fixturegen writes the hubble receiver's replay fixture (see package fixturegen).
//
//	go run ./internal/fixturegen/cmd/fixturegen -o testdata/flows.pb.gz
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/fixturegen"
)

func main() {
	out := flag.String("o", "testdata/flows.pb.gz", "output file")
	seed := flag.Uint64("seed", fixturegen.DefaultSeed, "random seed")
	n := flag.Int("n", fixturegen.DefaultFlows, "minimum number of flows")
	flag.Parse()
	if err := write(*out, *seed, *n); err != nil {
		fmt.Fprintln(os.Stderr, "fixturegen:", err)
		os.Exit(1)
	}
}

func write(path string, seed uint64, n int) error {
	f, err := os.Create(path) //nolint:gosec // the output file the developer named with -o
	if err != nil {
		return err
	}
	if err := fixturegen.Write(f, fixturegen.Generate(seed, n)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
