package scrapi

import (
	"context"
	"strings"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// LoadServiceKeys resolves Transparency Service keys from sources, each a key
// or key set file (see keys.LoadPublic) or a service URL whose key set
// (/.well-known/scitt-keys) is fetched.
func LoadServiceKeys(ctx context.Context, sources []string) (keys.Set, error) {
	var ks keys.Set
	for _, p := range sources {
		var k keys.Set
		var err error
		if strings.HasPrefix(p, "https://") || strings.HasPrefix(p, "http://") {
			k, err = FetchKeys(ctx, p)
		} else {
			k, err = keys.LoadPublic(p)
		}
		if err != nil {
			return nil, err
		}
		ks = append(ks, k...)
	}
	return ks, nil
}
