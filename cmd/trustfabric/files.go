package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/trustfabric/trustfabric/internal/atomicfile"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
)

// maxInputFile bounds the files the CLI reads (statements, payloads).
const maxInputFile = 64 << 20

func readInput(path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInputFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxInputFile {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, maxInputFile>>20)
	}
	return b, nil
}

// writeOutput writes b to path atomically (temp file + rename) with mode.
func writeOutput(path string, b []byte, mode os.FileMode) error {
	if path == "-" {
		_, err := os.Stdout.Write(b)
		return err
	}
	return atomicfile.WriteFile(path, b, mode)
}

// loadKeys reads and concatenates every key file given.
func loadKeys(paths []string) (keys.Set, error) {
	var ks keys.Set
	for _, p := range paths {
		k, err := keys.LoadPublic(p)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k...)
	}
	return ks, nil
}

// loadServiceKeys is loadKeys that also accepts a Transparency Service URL,
// whose key set (/.well-known/scitt-keys) is fetched.
func loadServiceKeys(ctx context.Context, sources []string) (keys.Set, error) {
	return scrapi.LoadServiceKeys(ctx, sources)
}
