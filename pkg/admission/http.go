package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Paths the Handler serves.
const (
	PathValidate   = "/validate"
	PathMutate     = "/mutate"
	PathGatekeeper = "/gatekeeper"
	PathHealth     = "/healthz"
)

// Handler serves the validating webhook (/validate), the mutating webhook
// (/mutate: the same decision, and a JSONPatch pinning tags to the verified
// digests), Gatekeeper's external data provider (/gatekeeper, and
// /gatekeeper/POLICY for a named policy) and /healthz.
func (w *Webhook) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathValidate, func(rw http.ResponseWriter, r *http.Request) { w.serveReview(rw, r, false) })
	mux.HandleFunc("POST "+PathMutate, func(rw http.ResponseWriter, r *http.Request) { w.serveReview(rw, r, true) })
	mux.HandleFunc("POST "+PathGatekeeper, func(rw http.ResponseWriter, r *http.Request) { w.serveProvider(rw, r, "") })
	mux.HandleFunc("POST "+PathGatekeeper+"/{policy}", func(rw http.ResponseWriter, r *http.Request) {
		w.serveProvider(rw, r, r.PathValue("policy"))
	})
	mux.HandleFunc("GET "+PathHealth, func(rw http.ResponseWriter, r *http.Request) { _, _ = rw.Write([]byte("ok\n")) })
	return mux
}

// requestContext bounds a request by the configured timeout and by the API
// server's own (its ?timeout=10s parameter) less a margin, so that the
// webhook answers with its reason before the API server gives up on it.
func (w *Webhook) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	budget := time.Duration(w.cfg.Timeout)
	if t, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil && t > 0 {
		margin := min(max(t/10, 200*time.Millisecond), time.Second)
		if t-margin < budget {
			budget = max(t-margin, t/2)
		}
	}
	return context.WithTimeout(r.Context(), budget)
}

func (w *Webhook) serveReview(rw http.ResponseWriter, r *http.Request, mutate bool) {
	start := time.Now()
	rv, err := DecodeReview(http.MaxBytesReader(rw, r.Body, MaxReviewSize+1))
	if err != nil {
		// Without a uid there is no AdmissionReview to answer; the API
		// server reports the status and body, and applies failurePolicy.
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	req := rv.Request
	ctx, cancel := w.requestContext(r)
	defer cancel()
	o := w.Decide(ctx, req)
	resp := &Response{UID: req.UID, Allowed: o.Allowed}
	if o.Allowed {
		resp.AuditAnnotations = w.Annotations(o)
		for _, img := range o.Images {
			if img.Digest != "" && img.Ref != "" && !containsAt(img.Image) && !mutate {
				resp.Warnings = append(resp.Warnings, fmt.Sprintf("trustfabric: image %s is given by tag; it was verified at %s (the mutating webhook pins it)", img.Image, img.Digest))
			}
		}
		if mutate {
			patch, err := o.Patch()
			if err != nil {
				resp.Allowed, resp.Result = false, &Status{Code: 500, Reason: "InternalError", Message: "trustfabric: build the patch: " + err.Error()}
			} else if patch != nil {
				resp.Patch, resp.PatchType = patch, "JSONPatch"
			}
		}
	} else {
		reason := "Forbidden"
		if o.Code == 400 {
			reason = "BadRequest"
		}
		resp.Result = &Status{Code: o.Code, Reason: reason, Message: o.Message(req)}
	}
	w.log.LogAttrs(ctx, slog.LevelInfo, "admission",
		slog.String("uid", req.UID), slog.String("namespace", req.Namespace), slog.String("kind", req.Kind.Kind),
		slog.String("name", req.Name), slog.String("operation", req.Operation), slog.Bool("mutate", mutate),
		slog.Bool("allowed", resp.Allowed), slog.Bool("exempt", o.Exempt), slog.String("policy", o.Policy),
		slog.Int("images", len(o.Images)), slog.Duration("duration", time.Since(start)))
	writeJSON(rw, &Review{APIVersion: ReviewAPIVersion, Kind: ReviewKind, Response: resp})
}

func containsAt(s string) bool { return strings.Contains(s, "@") }

func writeJSON(rw http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(rw, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write(b)
}

// Gatekeeper's external data API (externaldata.gatekeeper.sh/v1beta1).
const (
	ProviderAPIVersion = "externaldata.gatekeeper.sh/v1beta1"
	// MaxProviderKeys bounds the keys (images) of one ProviderRequest;
	// Gatekeeper's audit batches the images of many objects.
	MaxProviderKeys = 256
	// MaxProviderRequestSize bounds a ProviderRequest body.
	MaxProviderRequestSize = 1 << 20
)

// ProviderRequest is Gatekeeper's request to an external data provider.
type ProviderRequest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    struct {
		Keys []string `json:"keys"`
	} `json:"request"`
}

// ProviderResponse is the provider's answer: per key, a value (the image by
// digest) or an error (why it is denied).
type ProviderResponse struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   struct {
		Idempotent  bool   `json:"idempotent"`
		Items       []Item `json:"items"`
		SystemError string `json:"systemError,omitempty"`
	} `json:"response"`
}

// Item is one key's result.
type Item struct {
	Key   string `json:"key"`
	Value any    `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

// ParseProviderRequest decodes a ProviderRequest within the limits.
func ParseProviderRequest(b []byte) (*ProviderRequest, error) {
	if len(b) > MaxProviderRequestSize {
		return nil, fmt.Errorf("%w: ProviderRequest larger than %d bytes", ErrBadReview, MaxProviderRequestSize)
	}
	if err := checkJSON(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReview, err)
	}
	var pr ProviderRequest
	if err := json.Unmarshal(b, &pr); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReview, err)
	}
	if pr.APIVersion != ProviderAPIVersion || pr.Kind != "ProviderRequest" {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q: want %s ProviderRequest", ErrBadReview, trunc(pr.APIVersion), trunc(pr.Kind), ProviderAPIVersion)
	}
	if len(pr.Request.Keys) > MaxProviderKeys {
		return nil, fmt.Errorf("%w: %d keys; the limit is %d", ErrTooMany, len(pr.Request.Keys), MaxProviderKeys)
	}
	for i, k := range pr.Request.Keys {
		if k == "" || len(k) > MaxImageRefLength {
			return nil, fmt.Errorf("%w: keys[%d] is empty or longer than %d bytes", ErrBadReview, i, MaxImageRefLength)
		}
	}
	return &pr, nil
}

// Provide answers a ProviderRequest with the named policy ("" = the
// configuration's default).
func (w *Webhook) Provide(ctx context.Context, pr *ProviderRequest, policyName string) *ProviderResponse {
	resp := &ProviderResponse{APIVersion: ProviderAPIVersion, Kind: "ProviderResponse"}
	resp.Response.Idempotent = true
	if policyName == "" {
		policyName = w.cfg.Default
	}
	st, ok := w.verifiers[policyName]
	if !ok {
		resp.Response.SystemError = fmt.Sprintf("trustfabric: no policy %q (the provider URL is /gatekeeper for the default policy or /gatekeeper/NAME)", policyName)
		return resp
	}
	v, err := st.build(ctx)
	if err != nil {
		resp.Response.SystemError = "trustfabric: cannot verify (denied, fail closed): " + explain(ctx, err).Error()
		return resp
	}
	cs := make([]Container, len(pr.Request.Keys))
	for i, k := range pr.Request.Keys {
		cs[i] = Container{Image: k}
	}
	for _, r := range w.verifyImages(ctx, v, cs) {
		it := Item{Key: r.Image}
		if r.Allowed() {
			it.Value = r.Ref
		} else {
			it.Error = "denied by policy " + policyName
			for _, reason := range r.Reasons() {
				it.Error += "; " + reason
			}
		}
		resp.Response.Items = append(resp.Response.Items, it)
	}
	return resp
}

func (w *Webhook) serveProvider(rw http.ResponseWriter, r *http.Request, policyName string) {
	b, err := readAll(http.MaxBytesReader(rw, r.Body, MaxProviderRequestSize+1))
	var pr *ProviderRequest
	if err == nil {
		pr, err = ParseProviderRequest(b)
	}
	if err != nil {
		resp := &ProviderResponse{APIVersion: ProviderAPIVersion, Kind: "ProviderResponse"}
		resp.Response.SystemError = "trustfabric: " + err.Error()
		writeJSON(rw, resp)
		return
	}
	ctx, cancel := w.requestContext(r)
	defer cancel()
	writeJSON(rw, w.Provide(ctx, pr, policyName))
}

func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(r)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrBadReview, mbe.Limit-1)
	}
	return b, err
}
