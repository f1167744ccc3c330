// Package distreg runs CNCF distribution v3 (github.com/distribution/distribution/v3)
// in-process with in-memory storage. Distribution has no referrers API, so OCI 1.1
// clients must use the referrers tag schema against it — exactly what GHCR, Docker Hub and
// the GitLab registry require.
package distreg

import (
	"context"
	"io"
	"net/http"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory" // registers "inmemory"
	"github.com/sirupsen/logrus"
)

// NewHandler returns a distribution v3 registry handler over fresh in-memory storage.
func NewHandler(ctx context.Context) http.Handler {
	logrus.SetOutput(io.Discard)
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory":    configuration.Parameters{},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
	}
	cfg.HTTP.Secret = "trustfabric-test-secret"
	return handlers.NewApp(ctx, cfg)
}
