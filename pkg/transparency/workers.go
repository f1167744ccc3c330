package transparency

import "sync"

// workers runs functions on reused goroutines, the most recently idle one
// first. Registrations' log appends run here: each waits up to a batch
// interval for Tessera to sequence its entry, so a loaded service has
// hundreds in flight. A new goroutine per append grew its stack from the
// minimum on every registration (runtime.copystack was 4 % of the server's
// CPU under `bench register` at 64 × 20 after the verification moved to the
// checkers; docs/benchmarks.md, issue 12); reusing the most recently idle
// goroutine finds its stack already grown, and goroutines left idle by a
// smaller load are shrunk by the collector and never woken.
type workers struct {
	wg     *sync.WaitGroup
	mu     sync.Mutex
	idle   []chan func()
	closed bool
}

// Go runs f on an idle worker, or on a new one.
func (p *workers) Go(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 && !p.closed {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		c <- f
		return
	}
	closed := p.closed
	p.mu.Unlock()
	if closed {
		p.wg.Go(f)
		return
	}
	c := make(chan func(), 1)
	c <- f
	p.wg.Go(func() {
		for f := range c {
			f()
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				return
			}
			p.idle = append(p.idle, c)
			p.mu.Unlock()
		}
	})
}

// close stops the idle workers; busy ones stop when their function returns.
func (p *workers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.idle {
		close(c)
	}
	p.idle = nil
}
