// Command trustfabric brings the IETF supply-chain standards (WIMSE, in-toto/SLSA,
// SCITT, OCI referrers) into CI pipelines. Every subcommand is a thin layer over
// the library in pkg/: parse flags, call one package function, map the error to
// an exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"
)

func main() {
	// Tessera logs through klog, a process-wide logger: set it once, before
	// any goroutine can read it. Its informational lines are noise to a CLI
	// user (and to quickstart's story); warnings and errors still show.
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes shared by every subcommand.
const (
	exitOK      = 0 // success, or "valid"
	exitInvalid = 1 // the object was checked and found invalid, or the gate denied
	exitUsage   = 2 // bad flags, unreadable input, unreachable service
)

// invalidError marks a verification failure (exit 1) as opposed to a usage or
// input error (exit 2).
type invalidError struct{ err error }

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var inv *invalidError
	if errors.As(err, &inv) {
		fmt.Fprintf(stderr, "trustfabric: invalid: %v\n", inv.err)
		return exitInvalid
	}
	fmt.Fprintf(stderr, "trustfabric: %v\n", err)
	return exitUsage
}
