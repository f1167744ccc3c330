package ocitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
)

// isReferrers reports whether r is a referrers API call.
func isReferrers(r *http.Request) bool { return strings.Contains(r.URL.Path, "/referrers/") }

// TooManyRequests answers the first n requests whose path contains match with 429 and
// Retry-After: retryAfter.
func TooManyRequests(next http.Handler, match string, n int32, retryAfter string) http.Handler {
	var count atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, match) && count.Add(1) <= n {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// NoReferrersAPI answers every referrers call with 404, like registries without the API.
func NoReferrersAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isReferrers(r) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"NOT_FOUND","message":"no referrers API"}]}`)
			return
		}
		next.ServeHTTP(noSubjectHeader{w}, r)
	})
}

// noSubjectHeader removes OCI-Subject from responses (only registries with the API send it).
type noSubjectHeader struct{ http.ResponseWriter }

func (w noSubjectHeader) WriteHeader(code int) {
	w.Header().Del("OCI-Subject")
	w.ResponseWriter.WriteHeader(code)
}

func (w noSubjectHeader) Write(b []byte) (int, error) {
	w.Header().Del("OCI-Subject")
	return w.ResponseWriter.Write(b)
}

// IgnoreFilter drops the artifactType query and the OCI-Filters-Applied header, like a
// registry that does not implement filtering.
func IgnoreFilter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isReferrers(r) {
			q := r.URL.Query()
			q.Del("artifactType")
			r.URL.RawQuery = q.Encode()
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			rec.Header().Del("OCI-Filters-Applied")
			copyResponse(w, rec.Result().StatusCode, rec.Header(), rec.Body.Bytes())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Paginate splits referrers responses into pages of n entries linked with
// Link: <…>; rel="next" (relative URLs, as olareg and distribution send them).
func Paginate(next http.Handler, n int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isReferrers(r) {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		page, _ := strconv.Atoi(q.Get("tf-page"))
		q.Del("tf-page")
		inner := r.Clone(r.Context())
		inner.URL.RawQuery = q.Encode()
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, inner)
		res := rec.Result()
		var ix map[string]any
		if res.StatusCode != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &ix) != nil {
			copyResponse(w, res.StatusCode, rec.Header(), rec.Body.Bytes())
			return
		}
		all, _ := ix["manifests"].([]any)
		lo, hi := page*n, page*n+n
		lo, hi = min(lo, len(all)), min(hi, len(all))
		ix["manifests"] = all[lo:hi]
		body, _ := json.Marshal(ix)
		h := rec.Header().Clone()
		h.Del("Link")
		h.Del("Content-Length")
		if hi < len(all) {
			nq := r.URL.Query()
			nq.Set("tf-page", strconv.Itoa(page+1))
			h.Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, nq.Encode()))
		}
		copyResponse(w, http.StatusOK, h, body)
	})
}

// Rewrite replaces the body of responses whose path contains match with f(body).
func Rewrite(next http.Handler, match string, f func([]byte) []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, match) || r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		h := rec.Header().Clone()
		h.Del("Content-Length")
		copyResponse(w, rec.Result().StatusCode, h, f(rec.Body.Bytes()))
	})
}

// Static answers requests whose path contains match with a fixed response.
func Static(next http.Handler, match string, status int, contentType string, body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, match) && r.Method == http.MethodGet {
			h := http.Header{"Content-Type": {contentType}}
			copyResponse(w, status, h, body)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func copyResponse(w http.ResponseWriter, status int, h http.Header, body []byte) {
	for k, v := range h {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = bytes.NewReader(body).WriteTo(w)
}
