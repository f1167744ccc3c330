package monitor_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/monitor"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// BenchmarkMonitor compares, in the same run and on the same service, the
// rate at which the monitor processes entries from the tiles (verify the
// checkpoint, read tiles and entry bundles, check every leaf, fetch and
// hash every statement, parse it and match the watch list) with the rate
// at which the service registers statements (1,280 synchronous
// registrations in flight, as the registration figure of
// docs/benchmarks.md: 64 clients × 20 outstanding). The monitor must be faster (design.md §7).
//
//	go test ./pkg/monitor -run '^$' -bench Monitor -benchtime 4096x -count 3
func BenchmarkMonitor(b *testing.B) {
	key, keyFile := newKey(b)
	s := startTS(b, b.TempDir(), key, keyFile)
	sign := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			var err error
			out[i], err = scitt.SignStatement(context.Background(), key, scitt.Claims{Issuer: watched + rand.Text()[:4], Subject: "pkg:oci/app"}, []byte(rand.Text()))
			if err != nil {
				b.Fatal(err)
			}
		}
		return out
	}
	b.Run("register", func(b *testing.B) {
		stmts := sign(b.N)
		var next atomic.Int64
		b.SetParallelism(640) // 1,280 in flight on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.client.Register(context.Background(), stmts[next.Add(1)-1]); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
	b.Run("monitor", func(b *testing.B) {
		// Each iteration follows the log from a fresh state; the log holds at
		// least b.N entries (registered by the sub-benchmark above, topped up).
		res, _, err := stepB(b, s.srv.URL, filepath.Join(b.TempDir(), "probe"))
		if err != nil {
			b.Fatal(err)
		}
		if missing := int64(b.N) - res; missing > 0 {
			stmts := sign(int(missing))
			var wg sync.WaitGroup
			sem := make(chan struct{}, 1024)
			for _, st := range stmts {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					if _, err := s.client.Register(context.Background(), st); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		b.ResetTimer()
		var done int64
		for done < int64(b.N) {
			n, reported, err := stepB(b, s.srv.URL, filepath.Join(b.TempDir(), "state"))
			if err != nil {
				b.Fatal(err)
			}
			if reported == 0 {
				b.Fatal("nothing reported")
			}
			done += n
		}
		b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "entries/s")
	})
}

func stepB(b *testing.B, url, state string) (int64, int, error) {
	m, err := monitor.New(url, state, monitor.WithWatch(watched))
	if err != nil {
		b.Fatal(err)
	}
	res, err := m.Step(b.Context(), func(monitor.Report) error { return nil })
	if err != nil {
		return 0, 0, err
	}
	return res.Entries, res.Reported, nil
}
