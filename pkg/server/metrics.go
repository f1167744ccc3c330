package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// Operations routes, served next to the services.
const (
	// ReadyPath answers 200 once the log is open and has published a
	// checkpoint, and 503 from the start of a shutdown (GET /healthz, the
	// Transparency Service's, answers while the process lives).
	ReadyPath = "/readyz"
	// MetricsPath serves Prometheus metrics (text exposition format).
	MetricsPath = "/metrics"
)

// metrics are the server's Prometheus metrics, on a registry of its own (no
// global state: two servers in one process do not share counters).
//
//	trustfabric_http_requests_total{route,code}          every request, by route and status
//	trustfabric_http_request_duration_seconds{route}     latency histogram by route
//	trustfabric_registrations_total                      accepted POST /entries (2xx, 3xx; registering a statement again counts again)
//	trustfabric_registration_refusals_total{reason}      refused registrations, by HTTP status (400, 401, 403, 413, 429, …)
//	trustfabric_identity_exchanges_total{result}         POST /token: ok or refused
//	trustfabric_log_size                                 durable log entries
//	trustfabric_checkpoint_size                          entries covered by the published checkpoint
//	trustfabric_checkpoint_age_seconds                   time since the published checkpoint last grew (0 until it does)
type metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	registrations prometheus.Counter
	refusals      *prometheus.CounterVec
	exchanges     *prometheus.CounterVec

	cpSize    atomic.Uint64
	cpChanged atomic.Int64 // unix nanoseconds
}

func newMetrics(ts *transparency.Service) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trustfabric_http_requests_total",
			Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "trustfabric_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"route"}),
		registrations: prometheus.NewCounter(prometheus.CounterOpts{Name: "trustfabric_registrations_total",
			Help: "Signed Statements accepted for registration."}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trustfabric_registration_refusals_total",
			Help: "Registrations refused, by HTTP status (the reason class)."}, []string{"reason"}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trustfabric_identity_exchanges_total",
			Help: "Identity Server token exchanges, ok or refused."}, []string{"result"}),
	}
	size := func(f func(ctx context.Context) (uint64, error)) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n, err := f(ctx)
			if err != nil {
				return 0
			}
			return float64(n)
		}
	}
	m.reg.MustRegister(m.requests, m.duration, m.registrations, m.refusals, m.exchanges,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trustfabric_log_size", Help: "Durable log entries."},
			size(ts.Log().IntegratedSize)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trustfabric_checkpoint_size",
			Help: "Entries covered by the published checkpoint."}, size(func(ctx context.Context) (uint64, error) {
			return m.checkpointSize(ctx, ts)
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trustfabric_checkpoint_age_seconds",
			Help: "Seconds since the published checkpoint last grew, as seen by this process (0 until it grows)."}, func() float64 {
			if t := m.cpChanged.Load(); t != 0 {
				return time.Since(time.Unix(0, t)).Seconds()
			}
			return 0
		}),
	)
	return m
}

// checkpointSize reads the published checkpoint's size (its second line, C2SP
// tlog-checkpoint) and notes when it grew.
func (m *metrics) checkpointSize(ctx context.Context, ts *transparency.Service) (uint64, error) {
	cp, err := ts.Log().ReadCheckpoint(ctx)
	if err != nil {
		return 0, err
	}
	lines := strings.SplitN(string(cp), "\n", 3)
	if len(lines) < 2 {
		return 0, nil
	}
	n, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return 0, err
	}
	if old := m.cpSize.Swap(n); old != n {
		m.cpChanged.Store(time.Now().UnixNano())
	}
	return n, nil
}

// route is the metrics label of a request: a fixed set, never the raw path.
func route(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/entries" && r.Method == http.MethodPost:
		return "register"
	case strings.HasPrefix(p, "/entries/"):
		return "entry"
	case p == wimse.TokenPath:
		return "token"
	case p == wimse.BundlePath:
		return "wit-bundle"
	case strings.HasPrefix(p, "/.well-known/"), p == "/jwks":
		return "keys-and-configuration"
	case strings.HasPrefix(p, "/tile/"):
		return "tile"
	case p == "/checkpoint", p == "/consistency", p == "/healthz", p == ReadyPath, p == MetricsPath:
		return strings.TrimPrefix(p, "/")
	}
	return "other"
}

// statusRecorder keeps the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// instrument counts and times every request to next.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt := route(r)
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(rt, strconv.Itoa(code)).Inc()
		m.duration.WithLabelValues(rt).Observe(time.Since(start).Seconds())
		switch rt {
		case "register":
			if code < 400 {
				m.registrations.Inc()
			} else {
				m.refusals.WithLabelValues(strconv.Itoa(code)).Inc()
			}
		case "token":
			if r.Method == http.MethodPost {
				result := "ok"
				if code >= 400 {
					result = "refused"
				}
				m.exchanges.WithLabelValues(result).Inc()
			}
		}
	})
}

// operations adds /readyz and /metrics in front of h, and instruments h.
func (s *Server) operations(h http.Handler) http.Handler {
	s.metrics = newMetrics(s.TS)
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+ReadyPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if s.draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if _, err := s.TS.Log().ReadCheckpoint(r.Context()); err != nil {
			http.Error(w, "no checkpoint published yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("/", h)
	return s.metrics.instrument(mux)
}
