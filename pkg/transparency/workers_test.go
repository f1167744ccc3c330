package transparency

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestWorkers checks every function runs once, idle workers are reused
// (most recent first) rather than one goroutine per call, and close stops
// them (the WaitGroup returns).
func TestWorkers(t *testing.T) {
	var wg sync.WaitGroup
	p := &workers{wg: &wg}
	var ran atomic.Int64
	for range 100 { // one at a time: one worker serves them all
		done := make(chan struct{})
		p.Go(func() { ran.Add(1); close(done) })
		<-done
		for { // wait until the worker is idle again
			p.mu.Lock()
			n := len(p.idle)
			p.mu.Unlock()
			if n > 1 {
				t.Fatalf("%d idle workers after sequential calls, want 1 (a worker per call)", n)
			}
			if n == 1 {
				break
			}
		}
	}
	if got := ran.Load(); got != 100 {
		t.Fatalf("ran %d functions, want 100", got)
	}
	release := make(chan struct{})
	var started sync.WaitGroup
	for range 10 { // ten at once: ten workers
		started.Add(1)
		p.Go(func() { started.Done(); <-release; ran.Add(1) })
	}
	started.Wait()
	close(release)
	p.close()
	wg.Wait()
	if got := ran.Load(); got != 110 {
		t.Fatalf("ran %d functions, want 110", got)
	}
	p.Go(func() { ran.Add(1) }) // after close: still runs
	wg.Wait()
	if got := ran.Load(); got != 111 {
		t.Fatalf("after close: ran %d functions, want 111", got)
	}
}
