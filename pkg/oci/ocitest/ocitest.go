// Package ocitest runs real OCI registries in-process for tests and for `trustfabric
// quickstart`: olareg (github.com/olareg/olareg), which serves the OCI 1.1 referrers API
// with artifactType filtering and Link pagination. CNCF distribution v3 (no referrers API,
// so clients use the tag schema) is in the sub-package distreg, kept apart because it is a
// heavy dependency. Middleware here adds the faults real registries show (429 with
// Retry-After, ignored filters, small pages, corrupt content).
package ocitest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
)

// Registry is a registry served on a loopback address.
type Registry struct {
	// Host is host:port, usable in image references (plain HTTP: loopback).
	Host string
	srv  *httptest.Server
	stop func()
}

// Close stops the registry.
func (r *Registry) Close() {
	r.srv.Close()
	if r.stop != nil {
		r.stop()
	}
}

// Serve serves h on a loopback address.
func Serve(h http.Handler, stop func()) *Registry {
	srv := httptest.NewServer(h)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), srv: srv, stop: stop}
}

// OlaregConfig is olareg's configuration.
type OlaregConfig = config.Config

// NewOlaregHandler returns an in-memory olareg handler with the referrers API, and a
// function that releases it. tune, when non-nil, edits the configuration first.
func NewOlaregHandler(tune func(*OlaregConfig)) (http.Handler, func()) {
	conf := config.Config{Storage: config.ConfigStorage{StoreType: config.StoreMem}}
	if tune != nil {
		tune(&conf)
	}
	h := olareg.New(conf)
	return h, func() { _ = h.Close() }
}

// NewOlareg serves an in-memory olareg on loopback.
func NewOlareg(tune func(*OlaregConfig)) *Registry {
	h, stop := NewOlaregHandler(tune)
	return Serve(h, stop)
}

// Counter counts requests by method and path (query excluded).
type Counter struct {
	Next http.Handler
	mu   sync.Mutex
	hits map[string]int
}

func (c *Counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.hits == nil {
		c.hits = map[string]int{}
	}
	c.hits[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	c.Next.ServeHTTP(w, r)
}

// Hits returns a copy of the counts.
func (c *Counter) Hits() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.hits))
	for k, v := range c.hits {
		out[k] = v
	}
	return out
}

// Reset clears the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.hits = nil
	c.mu.Unlock()
}
