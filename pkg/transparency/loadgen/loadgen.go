// Package loadgen is the registration load generator behind `trustfabric
// bench register`: it pre-signs distinct Signed Statements with an issuer key
// the service trusts, registers them from concurrent clients through the
// SCRAPI client, and reports registrations per second and receipt latency
// percentiles. Every receipt is verified against the service's key set (after
// the clock stops, so the verifier does not compete with the service for CPU
// on a shared machine).
package loadgen

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
)

// Config configures [Run].
type Config struct {
	// TS is the service base URL.
	TS string
	// Key signs the statements; the service must trust it.
	Key *keys.PrivateKey
	// Count statements are registered by Concurrency clients.
	Count, Concurrency int
	// PayloadSize is the size of each statement's (random) payload. Default 1024.
	PayloadSize int
	// Sync makes every registration one POST that waits for its receipt
	// (201, or 303 then GET); each client keeps Window such requests open.
	// By default clients pipeline: each submits with Prefer: respond-async,
	// gets 303 as soon as the statement is durable, and a fetcher collects
	// the receipt from the Location while the client submits the next one,
	// with at most Window registrations awaiting their receipt.
	Sync bool
	// Window is the number of registrations a client may have in flight.
	// Default 16. Sync with Window 1 is a closed loop: Concurrency clients,
	// each with exactly one request in flight.
	Window int
	// Duration, when positive, makes a timed run: clients start
	// registrations until Duration has passed since the first submission,
	// then those in flight finish (they are verified, but not measured).
	// Rate and latency are measured over the receipts that arrive in the
	// steady window from Warmup to Duration (or to the moment the pool ran
	// out, if earlier). Count is then the size of the pre-signed pool.
	// Default 0: run until Count registrations are done, and measure them all.
	Duration time.Duration
	// Warmup is the start of the measured window of a timed run (default 0).
	Warmup time.Duration
}

// Report is the outcome of a run.
type Report struct {
	// Count is the number of registrations done (with Duration, those
	// started before it passed).
	Count, Concurrency, PayloadSize, Window int
	Sync                                    bool
	// Duration and Warmup are Config's.
	Duration, Warmup time.Duration
	// Measured is the number of receipts in the measured window (all of
	// them unless Duration is set) and WindowStart, WindowEnd its bounds
	// from the first submission.
	Measured               int
	WindowStart, WindowEnd time.Duration
	// Elapsed runs from the first submission to the last receipt.
	Elapsed time.Duration
	// SubmitElapsed runs from the first submission to the last 303/201.
	SubmitElapsed time.Duration
	// Latency percentiles from submission to receipt in hand, of the
	// receipts in the measured window.
	P50, P90, P99, Max time.Duration
	// Verified receipts (must equal Count).
	Verified int
	// VerifyElapsed is the time spent verifying every receipt (one goroutine
	// per CPU, after the clock).
	VerifyElapsed time.Duration
}

// Rate is registrations (with receipt) per second in the measured window.
func (r *Report) Rate() float64 { return float64(r.Measured) / (r.WindowEnd - r.WindowStart).Seconds() }

// String formats the report.
func (r *Report) String() string {
	mode := "pipelined (Prefer: respond-async; 303 once durable, receipt fetched from the Location)"
	switch {
	case r.Sync && r.Window == 1:
		mode = "closed loop (one POST per registration, answered 201 with the receipt; one request in flight per client)"
	case r.Sync:
		mode = "synchronous (one POST per registration, answered 201 with the receipt; window = open requests per client)"
	}
	measured := ""
	if r.Duration > 0 {
		mode += fmt.Sprintf("; clients start registrations for %s", r.Duration)
		measured = fmt.Sprintf(" in the window %s-%s (%d receipts; warm-up and drain not measured)", r.WindowStart, r.WindowEnd.Round(time.Millisecond), r.Measured)
	}
	return fmt.Sprintf(`mode:           %s
registrations:  %d with %d concurrent clients (window %d), %d-byte payloads
elapsed:        %s (all submitted after %s)
throughput:     %.0f registrations/s (receipt in hand)%s
receipt latency p50 %s  p90 %s  p99 %s  max %s
verified:       %d/%d receipts (%s, %.0f verifications/s)
`, mode, r.Count, r.Concurrency, r.Window, r.PayloadSize, r.Elapsed.Round(time.Millisecond), r.SubmitElapsed.Round(time.Millisecond),
		r.Rate(), measured, ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max), r.Verified, r.Count, r.VerifyElapsed.Round(time.Millisecond),
		float64(r.Verified)/r.VerifyElapsed.Seconds())
}

func ms(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }

// ErrUnverified is returned when a receipt does not verify.
var ErrUnverified = errors.New("receipt does not verify")

type result struct {
	stmt    []byte
	receipt []byte
	latency time.Duration
	end     time.Duration // since the start of the run
	err     error
}

// Run performs the load test.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Count <= 0 || cfg.Concurrency <= 0 {
		return nil, errors.New("count and concurrency must be positive")
	}
	if cfg.Duration < 0 || cfg.Warmup < 0 || (cfg.Warmup > 0 && cfg.Warmup >= cfg.Duration) {
		return nil, errors.New("duration and warm-up must not be negative, and warm-up must be shorter than the duration")
	}
	if cfg.PayloadSize <= 0 {
		cfg.PayloadSize = 1024
	}
	if cfg.Window <= 0 {
		cfg.Window = 16
	}
	stmts, err := presign(ctx, cfg)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = 4096
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	opts := []scrapi.Option{scrapi.WithHTTPClient(hc), scrapi.WithBackoff(20*time.Millisecond, time.Second), scrapi.WithRetries(20)}
	if !cfg.Sync {
		opts = append(opts, scrapi.WithRespondAsync())
	}
	c, err := scrapi.NewClient(cfg.TS, opts...)
	if err != nil {
		return nil, err
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		return nil, err
	}

	results := make([]result, len(stmts))
	var next atomic.Int64
	var fetchers sync.WaitGroup
	var clients sync.WaitGroup
	var lastSubmit, exhausted atomic.Int64
	start := time.Now()
	workers := cfg.Concurrency
	if cfg.Sync {
		workers *= cfg.Window // each client keeps Window requests open
	}
	for range workers {
		clients.Go(func() {
			window := make(chan struct{}, cfg.Window)
			for {
				if !cfg.Sync {
					window <- struct{}{}
				}
				if cfg.Duration > 0 && time.Since(start) >= cfg.Duration {
					return
				}
				i := int(next.Add(1) - 1)
				if i >= len(stmts) {
					exhausted.CompareAndSwap(0, int64(time.Since(start)))
					return
				}
				if ctx.Err() != nil {
					return
				}
				release := func() {
					if !cfg.Sync {
						<-window
					}
				}
				res := &results[i]
				res.stmt = stmts[i]
				t0 := time.Now()
				loc, reg, err := c.Submit(ctx, stmts[i])
				lastSubmit.Store(int64(time.Since(start)))
				switch {
				case err != nil:
					res.err = err
					release()
				case reg != nil:
					res.receipt, res.latency, res.end = reg.Receipt, time.Since(t0), time.Since(start)
					release()
				case cfg.Sync:
					reg, err := c.Await(ctx, loc)
					res.latency, res.end, res.err = time.Since(t0), time.Since(start), err
					if err == nil {
						res.receipt = reg.Receipt
					}
				default:
					fetchers.Go(func() {
						defer release()
						reg, err := c.Await(ctx, loc)
						res.latency, res.end, res.err = time.Since(t0), time.Since(start), err
						if err == nil {
							res.receipt = reg.Receipt
						}
					})
				}
			}
		})
	}
	clients.Wait()
	fetchers.Wait()
	done := min(int(next.Load()), len(stmts))
	if done == 0 {
		return nil, errors.New("no registration started: duration too short")
	}
	results = results[:done]
	rep := &Report{Count: done, Concurrency: cfg.Concurrency, PayloadSize: cfg.PayloadSize, Window: cfg.Window, Sync: cfg.Sync,
		Duration: cfg.Duration, Warmup: cfg.Warmup, Elapsed: time.Since(start), SubmitElapsed: time.Duration(lastSubmit.Load())}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.WindowEnd = rep.Elapsed
	if cfg.Duration > 0 {
		rep.WindowStart, rep.WindowEnd = cfg.Warmup, cfg.Duration
		if ex := time.Duration(exhausted.Load()); ex > 0 && ex < rep.WindowEnd {
			rep.WindowEnd = ex // the pool ran out: what follows is drain
		}
	}
	lat := make([]time.Duration, 0, len(results))
	for i := range results {
		if results[i].err != nil {
			return nil, fmt.Errorf("registration %d: %w", i, results[i].err)
		}
		if cfg.Duration == 0 || (results[i].end >= rep.WindowStart && results[i].end <= rep.WindowEnd) {
			lat = append(lat, results[i].latency)
		}
	}
	if len(lat) == 0 {
		return nil, errors.New("no receipt arrived in the measured window (warm-up too long, or the pool too small)")
	}
	rep.Measured = len(lat)
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	rep.P50, rep.P90, rep.P99, rep.Max = pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1]

	vstart := time.Now()
	n, err := verifyAll(results, keys)
	rep.VerifyElapsed, rep.Verified = time.Since(vstart), n
	if err != nil {
		return rep, err
	}
	return rep, nil
}

// presign signs Count distinct statements on every CPU.
func presign(ctx context.Context, cfg Config) ([][]byte, error) {
	stmts := make([][]byte, cfg.Count)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			payload := make([]byte, cfg.PayloadSize)
			for i := w; i < cfg.Count; i += len(errs) {
				rand.Read(payload)
				s, err := scitt.SignStatement(ctx, cfg.Key, scitt.Claims{Issuer: "https://bench.trustfabric.test", Subject: fmt.Sprintf("bench/%d", i)},
					payload, scitt.WithContentType("application/octet-stream"))
				if err != nil {
					errs[w] = fmt.Errorf("sign statement %d: %w", i, err)
					return
				}
				stmts[i] = s
			}
		})
	}
	wg.Wait()
	return stmts, errors.Join(errs...)
}

func verifyAll(results []result, keys keys.Set) (int, error) {
	var ok atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(results); i += workers {
				err := verifyOne(results[i].stmt, results[i].receipt, keys)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("registration %d: %w", i, err)
					}
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ok.Load()), firstErr
}

func verifyOne(stmt, receipt []byte, keys keys.Set) error {
	r, err := scitt.ParseReceipt(receipt)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	if _, err := r.VerifyInclusion(stmt, keys, scitt.LeafIETF); err != nil {
		return fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	return nil
}
