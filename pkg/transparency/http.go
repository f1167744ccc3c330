package transparency

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// HandlerOptions tunes [Service.Handler].
type HandlerOptions struct {
	// MaxInflight bounds concurrent registrations; more get 503 with
	// Retry-After (SCRAPI's DoS mitigation). Requests waiting for a receipt
	// are bounded at 4×MaxInflight; beyond that they are answered 303/302 at
	// once. Default 8192.
	MaxInflight int
	// BodyTimeout bounds the time a client may take to send a registration
	// body; the body is read before a registration slot is taken, so a slow
	// client holds a connection, never a slot. Default DefaultBodyTimeout.
	BodyTimeout time.Duration
}

// DefaultBodyTimeout is the default HandlerOptions.BodyTimeout: 10 s, about
// 100 KiB/s for a statement at the default 1 MiB limit.
const DefaultBodyTimeout = 10 * time.Second

// Handler returns the HTTP handler tree of the service:
//
//	POST /entries                          register (201 + receipt, or 303)
//	GET  /entries/{id}                     receipt (200), pending (302), unknown (404), malformed id (400)
//	GET  /entries/{id}/statement           the registered statement
//	GET  /.well-known/scitt-keys[/{kid}]   COSE_KeySet / COSE_Key
//	GET  /.well-known/transparency-configuration   legacy configuration
//	GET  /jwks                             the key set as a JWK Set (legacy clients)
//	GET  /consistency?from=N[&to=M]        consistency receipt (non-standard)
//	GET  /checkpoint, /tile/…              the log, read-only (C2SP tlog-tiles)
//	GET  /log/vkey                         the checkpoint verifier key (signed-note vkey, text)
//	GET  /healthz                          liveness
//
// Errors are RFC 9290 concise problem details in CBOR. docs/design/
// conformance.md compares every status code and header with SCRAPI.
func (s *Service) Handler(o HandlerOptions) http.Handler {
	if o.MaxInflight <= 0 {
		o.MaxInflight = 8192
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	h := &handler{s: s, sem: make(chan struct{}, o.MaxInflight), waiters: make(chan struct{}, 4*o.MaxInflight), bodyTimeout: o.BodyTimeout}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /entries", h.postEntry)
	mux.HandleFunc("GET /entries/{id}", h.getEntry)
	mux.HandleFunc("GET /entries/{id}/statement", h.getStatement)
	mux.HandleFunc("GET /.well-known/scitt-keys", h.getKeys)
	mux.HandleFunc("GET /.well-known/scitt-keys/{kid}", h.getKey)
	mux.HandleFunc("GET /.well-known/transparency-configuration", h.getConfiguration)
	mux.HandleFunc("GET /jwks", h.getJWKS)
	mux.HandleFunc("GET /consistency", h.getConsistency)
	mux.HandleFunc("GET /checkpoint", h.getCheckpoint)
	mux.HandleFunc("GET /log/vkey", h.getVKey)
	mux.HandleFunc("GET /tile/{path...}", h.getTile)
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.problem(w, r, http.StatusNotFound, "Not Found", fmt.Sprintf("no resource %s %s", r.Method, r.URL.Path))
	})
	return mux
}

type handler struct {
	s           *Service
	sem         chan struct{} // registrations in flight
	waiters     chan struct{} // requests waiting for a receipt
	bodyTimeout time.Duration
}

func (h *handler) problem(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	b, _ := (&scrapi.Problem{Title: title, Detail: detail}).MarshalCBOR()
	w.Header().Set("Content-Type", scrapi.MediaTypeProblemDetails)
	if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	w.WriteHeader(status)
	w.Write(b)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	h.s.logger.Log(r.Context(), level, "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.String("title", title), slog.String("detail", detail))
}

// problemFor maps a registration or lookup error to a status and title.
func problemFor(err error) (int, string) {
	switch {
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "Payload Too Large"
	case errors.Is(err, scitt.ErrMalformed):
		return http.StatusBadRequest, "Malformed request" // SCRAPI §2's generic title
	case errors.Is(err, scitt.ErrUnsupportedAlgorithm):
		return http.StatusBadRequest, "Bad Signature Algorithm"
	case errors.Is(err, scitt.ErrMissingClaims):
		return http.StatusBadRequest, "Missing CWT Claims"
	case errors.Is(err, scitt.ErrCriticalHeader):
		return http.StatusBadRequest, "Unknown Critical Header"
	case errors.Is(err, scitt.ErrHeaderPlacement):
		return http.StatusBadRequest, "Invalid Headers"
	case errors.Is(err, scitt.ErrPayloadMismatch):
		return http.StatusBadRequest, "Payload Missing"
	case errors.Is(err, ErrUnknownKey):
		return http.StatusBadRequest, "Unknown Key"
	case errors.Is(err, ErrUntrustedIssuer):
		return http.StatusBadRequest, "Untrusted Issuer"
	case errors.Is(err, scitt.ErrBadSignature), errors.Is(err, scitt.ErrKeyNotFound):
		return http.StatusBadRequest, "Bad Signature"
	case errors.Is(err, ErrRejected):
		return http.StatusBadRequest, "Rejected"
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "Not Found"
	case errors.Is(err, ErrBadRange):
		return http.StatusBadRequest, "Bad Tree Size"
	case errors.Is(err, ErrOverloaded):
		return http.StatusServiceUnavailable, "Service Unavailable"
	case errors.Is(err, ErrStorageFull):
		return http.StatusServiceUnavailable, "Storage Full"
	case errors.Is(err, ErrAppendFailing):
		return http.StatusServiceUnavailable, "Log Append Failing"
	case errors.Is(err, storage.ErrUnavailable):
		return http.StatusServiceUnavailable, "Storage Unavailable"
	case errors.Is(err, ErrStorageBusy):
		return http.StatusServiceUnavailable, "Storage Busy"
	case errors.Is(err, ErrPending):
		return http.StatusServiceUnavailable, "Not Yet Available"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "Request Cancelled"
	}
	return http.StatusInternalServerError, "Internal Error"
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, title := problemFor(err)
	detail := err.Error()
	if errors.Is(err, ErrStorageFull) || errors.Is(err, ErrAppendFailing) {
		// Not a matter of a second: the operator has to free space.
		w.Header().Set("Retry-After", "30")
	}
	if errors.Is(err, storage.ErrUnavailable) && !errors.Is(err, ErrAppendFailing) {
		// The database or bucket is unreachable: its address is the
		// operator's business, not the client's.
		h.s.logger.WarnContext(r.Context(), "storage unavailable", slog.String("path", r.URL.Path), slog.Any("error", err))
		detail = "the service's storage (database or object store) is unreachable; retry later"
	}
	if status == http.StatusInternalServerError {
		h.s.logger.ErrorContext(r.Context(), "internal error", slog.String("path", r.URL.Path), slog.Any("error", err))
		detail = "the service failed to process the request; see the service logs"
	}
	h.problem(w, r, status, title, detail)
}

// waitExpired tells apart, in an error of a receipt wait of at most wait,
// a deadline that passed while the service's storage was still answering
// (the client is still there: 503 Storage Busy, not "Request Cancelled";
// the wait itself running out is ErrPending, 302/303) from the client
// going away.
func waitExpired(r *http.Request, wait time.Duration, err error) error {
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPending) || r.Context().Err() != nil {
		return err
	}
	return fmt.Errorf("%w: the service's storage (database or object store) did not answer within %s, the longest a request waits; retry later (%w)",
		ErrStorageBusy, wait, err)
}

// preferences reads RFC 7240 Prefer: respond-async and wait=N.
func preferences(r *http.Request) (async bool, wait time.Duration) {
	wait = -1
	for _, v := range r.Header.Values("Prefer") {
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			switch {
			case strings.EqualFold(p, "respond-async"):
				async = true
			case strings.HasPrefix(strings.ToLower(p), "wait="):
				if n, err := strconv.Atoi(p[5:]); err == nil && n >= 0 {
					wait = time.Duration(n) * time.Second
				}
			}
		}
	}
	return async, wait
}

// waitFor returns the client's preferences, bounded by the configured wait,
// and a release function: when too many requests already wait for receipts,
// the wait is zero (the answer is then 303/302 at once).
func (h *handler) waitFor(r *http.Request) (bool, time.Duration, func()) {
	async, wait := preferences(r)
	if wait < 0 || wait > h.s.opts.RegistrationWait {
		wait = h.s.opts.RegistrationWait
	}
	if async || wait == 0 {
		return async, 0, func() {}
	}
	select {
	case h.waiters <- struct{}{}:
		return async, wait, func() { <-h.waiters }
	default:
		return async, 0, func() {}
	}
}

func (h *handler) postEntry(w http.ResponseWriter, r *http.Request) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (ct != scrapi.MediaTypeCOSE && ct != scrapi.MediaTypeStatement) {
		h.problem(w, r, http.StatusUnsupportedMediaType, "Unsupported Media Type",
			fmt.Sprintf("Content-Type %q; send a Signed Statement as %s or %s", r.Header.Get("Content-Type"), scrapi.MediaTypeCOSE, scrapi.MediaTypeStatement))
		return
	}
	limit := h.s.policy.MaxStatementSize()
	if r.ContentLength > limit {
		h.problem(w, r, http.StatusRequestEntityTooLarge, "Payload Too Large",
			fmt.Sprintf("the statement is %d bytes; this service accepts at most %d", r.ContentLength, limit))
		return
	}
	// The body is read (bounded, with a short deadline) before a slot is
	// taken: slow or idle clients must not hold registration slots.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(h.bodyTimeout)) // unsupported by some writers (tests): ReadTimeout still applies
	body, err := readBody(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			h.problem(w, r, http.StatusRequestEntityTooLarge, "Payload Too Large",
				fmt.Sprintf("the statement is larger than this service's limit of %d bytes", limit))
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			h.problem(w, r, http.StatusRequestTimeout, "Request Timeout",
				fmt.Sprintf("the statement was not received within %s", h.bodyTimeout))
		default:
			h.problem(w, r, http.StatusBadRequest, "Incomplete Request", fmt.Sprintf("reading the statement failed: %v", err))
		}
		return
	}
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	default:
		h.fail(w, r, fmt.Errorf("%w: too many registrations in flight", ErrOverloaded))
		return
	}
	reg, err := h.s.Register(r.Context(), body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// The audit trail: which entry, and, when registration is authenticated
	// with WIMSE headers, which workload asked for it.
	if h.s.logger.Enabled(r.Context(), slog.LevelInfo) {
		attrs := []slog.Attr{slog.String("entry", reg.ID())}
		if id, ok := wimse.FromContext(r.Context()); ok {
			attrs = append(attrs, slog.String("caller", id.WIT.ID.String()))
		}
		h.s.logger.LogAttrs(r.Context(), slog.LevelInfo, "registered", attrs...)
	}
	loc := "/entries/" + reg.ID()
	async, wait, release := h.waitFor(r)
	defer release()
	if !async && wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		receipt, err := h.s.awaitReceipt(ctx, reg.Entry, false)
		cancel()
		err = waitExpired(r, wait, err)
		if err == nil {
			w.Header().Set("Location", loc)
			h.writeReceipt(w, r, http.StatusCreated, receipt)
			return
		}
		// A stored statement whose append fails is accepted all the same:
		// GET /entries/{id} reports the failure while the service retries.
		if !errors.Is(err, ErrPending) && !errors.Is(err, ErrAppendFailing) {
			h.fail(w, r, err)
			return
		}
	}
	// Retry-After tells clients that do not wait on GET (as ours does) when
	// to poll; a receipt usually follows within one checkpoint interval.
	w.Header().Set("Location", loc)
	w.Header().Set("Retry-After", retryAfterSeconds)
	w.WriteHeader(http.StatusSeeOther)
}

// readBody reads a request body of the announced length (the caller has
// checked it against the limit) into one buffer of that size, instead of
// io.ReadAll's doubling; a body without Content-Length, or longer than
// announced, is read the general way (the reader enforces the limit).
func readBody(r io.Reader, announced int64) ([]byte, error) {
	if announced <= 0 {
		return io.ReadAll(r)
	}
	buf := make([]byte, announced, announced+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("the body ended after fewer than the %d bytes of its Content-Length: %w", announced, err)
		}
		return nil, err
	}
	// net/http stops at Content-Length; a reader that does not is read on.
	extra := buf[announced : announced+1]
	n, err := io.ReadAtLeast(r, extra, 1)
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return buf, nil
	case n == 0:
		return nil, err
	}
	rest, err := io.ReadAll(r)
	return append(append(buf, extra[:n]...), rest...), err
}

// retryAfterSeconds is the Retry-After of 303, 302, 429 and 503 answers.
const retryAfterSeconds = "1"

func (h *handler) writeReceipt(w http.ResponseWriter, r *http.Request, status int, receipt []byte) {
	ct := scrapi.MediaTypeCOSE
	if strings.Contains(r.Header.Get("Accept"), scrapi.MediaTypeReceipt) {
		ct = scrapi.MediaTypeReceipt
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(receipt)))
	w.WriteHeader(status)
	w.Write(receipt)
}

func (h *handler) entryID(w http.ResponseWriter, r *http.Request) ([32]byte, bool) {
	id := r.PathValue("id")
	e, err := ParseEntryID(id)
	if err != nil {
		// SCRAPI §2.3/§2.4: a locator not in a valid form is 400 "Invalid
		// locator"; 404 is for well-formed ids the service does not know.
		h.problem(w, r, http.StatusBadRequest, "Invalid locator",
			fmt.Sprintf("%q is not an entry id of this service (64 lowercase hex digits, as in the Location of a registration)", id))
		return e, false
	}
	return e, true
}

func (h *handler) getEntry(w http.ResponseWriter, r *http.Request) {
	e, ok := h.entryID(w, r)
	if !ok {
		return
	}
	_, wait, release := h.waitFor(r)
	defer release()
	var receipt []byte
	var err error
	if wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		receipt, err = h.s.AwaitReceipt(ctx, e)
		cancel()
		err = waitExpired(r, wait, err)
	} else {
		receipt, err = h.s.Receipt(r.Context(), e)
	}
	switch {
	case err == nil:
		// SCRAPI's 200 carries the entry's locator too.
		w.Header().Set("Location", "/entries/"+r.PathValue("id"))
		h.writeReceipt(w, r, http.StatusOK, receipt)
	case errors.Is(err, ErrPending):
		w.Header().Set("Location", "/entries/"+r.PathValue("id"))
		w.Header().Set("Retry-After", retryAfterSeconds)
		w.WriteHeader(http.StatusFound)
	default:
		h.fail(w, r, err)
	}
}

func (h *handler) getStatement(w http.ResponseWriter, r *http.Request) {
	e, ok := h.entryID(w, r)
	if !ok {
		return
	}
	b, err := h.s.Statement(r.Context(), e)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", scrapi.MediaTypeStatement)
	w.Write(b)
}

func (h *handler) getKeys(w http.ResponseWriter, r *http.Request) {
	b, err := keys.MarshalCOSEKeySet(h.s.Keys())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", scrapi.MediaTypeCBOR)
	w.Write(b)
}

func (h *handler) getKey(w http.ResponseWriter, r *http.Request) {
	kid := r.PathValue("kid")
	var candidates [][]byte
	if b, err := base64.RawURLEncoding.DecodeString(kid); err == nil {
		candidates = append(candidates, b)
	}
	if b, err := hex.DecodeString(kid); err == nil {
		candidates = append(candidates, b)
	}
	for _, k := range h.s.Keys() {
		for _, c := range candidates {
			if len(c) == 0 || !bytes.Equal(k.KID, c) {
				continue
			}
			b, err := k.MarshalCOSEKey()
			if err != nil {
				h.fail(w, r, err)
				return
			}
			w.Header().Set("Content-Type", scrapi.MediaTypeCBOR)
			w.Write(b)
			return
		}
	}
	h.problem(w, r, http.StatusNotFound, "No such key", fmt.Sprintf("no service key has kid %q (base64url without padding of the COSE key thumbprint)", kid))
}

func (h *handler) getJWKS(w http.ResponseWriter, r *http.Request) {
	b, err := keys.MarshalJWKSet(h.s.Keys())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Write(b)
}

// LeafConvention is the leaf convention of this service's log: entry =
// SHA-256(registered statement), leaf = SHA-256(0x00 ‖ entry), as the IETF
// SCITT WG example vectors (docs/design/scitt.md). It is published in the
// configuration document and named in every inclusion receipt.
const LeafConvention = scitt.LeafIETF

// getConfiguration serves the legacy configuration document (SCRAPI -05 to
// -07; peers still serve it): a CBOR map with text keys, unknown members to
// be ignored. Besides issuer and the key URIs it says how receipts are to be
// verified: the verifiable data structure and the leaf convention.
func (h *handler) getConfiguration(w http.ResponseWriter, r *http.Request) {
	base := baseURL(r)
	b, err := cbor.Marshal(map[string]any{
		"issuer":                    h.s.Issuer(),
		"jwks_uri":                  base + "/jwks",
		"scitt_keys_uri":            base + "/.well-known/scitt-keys",
		"registration_policy_entry": h.s.PolicyEntry(),
		"verifiable_data_structure": scitt.VDSRFC9162SHA256,
		scrapi.ConfigLeafConvention: LeafConvention.String(),
		scrapi.ConfigLogOrigin:      h.s.Origin(),
		scrapi.ConfigLogVKey:        h.s.VerifierKey(),
		"log_vkey_uri":              base + "/log/vkey",
		"leaf_definition":           "leaf = SHA-256(0x00 || SHA-256(signed statement with unprotected header {})), RFC 9162 tree",
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", scrapi.MediaTypeCBOR)
	w.Write(b)
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	if h.s.follow.latest() == nil {
		h.problem(w, r, http.StatusServiceUnavailable, "Starting", "no checkpoint published yet")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n") // the client went away: nothing to do
}

// NewServer wraps a handler in an http.Server with timeouts on every phase.
func NewServer(addr string, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
