package transparency

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// checkers run the registration policy's checks (the statement's signature
// verification is most of a registration's CPU) on one long-lived goroutine
// per CPU instead of on each connection's goroutine.
//
// Why: a signature verification needs a deep stack. Every GC shrinks the
// stacks of the hundreds of idle connection goroutines a loaded service has,
// and each one grew its stack back (a copy) on its next verification: 12 %
// of the server's CPU under `bench register` at 64 × 20 (runtime.copystack
// and newstack, most of it under ecdsa.Verify; docs/benchmarks.md, issue
// 12). A few busy goroutines keep their stacks. The checks are CPU-bound, so
// one goroutine per CPU loses no parallelism.
type checkers struct {
	jobs chan checkJob
	stop <-chan struct{}
}

type checkJob struct {
	ctx  context.Context
	st   *scitt.Statement
	now  time.Time
	done chan error
}

func startCheckers(ctx context.Context, p *Policy, logger *slog.Logger, track func(func())) *checkers {
	c := &checkers{jobs: make(chan checkJob), stop: ctx.Done()}
	for range runtime.GOMAXPROCS(0) {
		track(func() {
			for {
				select {
				case j := <-c.jobs:
					j.done <- runCheck(p, logger, j)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	return c
}

// runCheck applies the policy; a panic in it (a bug, on untrusted input)
// fails this registration, not the process (as net/http would for a
// handler).
func runCheck(p *Policy, logger *slog.Logger, j checkJob) (err error) {
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 8<<10)
			buf = buf[:runtime.Stack(buf, false)]
			logger.ErrorContext(j.ctx, "panic in the registration checks", slog.Any("panic", r), slog.String("stack", string(buf)))
			err = fmt.Errorf("internal error checking the statement: %v", r)
		}
	}()
	return p.Check(j.ctx, j.st, j.now)
}

var doneChans = make(chan chan error, 4096)

// check applies the policy on a checker goroutine, or on the caller's once
// the service is closing.
func (c *checkers) check(ctx context.Context, p *Policy, st *scitt.Statement, now time.Time) error {
	var done chan error
	select {
	case done = <-doneChans:
	default:
		done = make(chan error, 1)
	}
	select {
	case c.jobs <- checkJob{ctx: ctx, st: st, now: now, done: done}:
	case <-c.stop:
		return p.Check(ctx, st, now)
	}
	err := <-done
	select {
	case doneChans <- done:
	default:
	}
	return err
}
