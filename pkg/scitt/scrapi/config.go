package scrapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/fxamacker/cbor/v2"
)

// ConfigLeafConvention is the member of the configuration document in which
// a Trustfabric service names the leaf convention of its receipts ("ietf" or
// "direct", see scitt.LeafConvention).
const ConfigLeafConvention = "leaf_convention"

// MaxConfigurationSize bounds the configuration document a client reads.
const MaxConfigurationSize = 64 << 10

// ErrBadConfiguration is wrapped when a configuration document cannot be
// decoded.
var ErrBadConfiguration = errors.New("malformed transparency configuration")

// Configuration is what a client reads from the legacy configuration
// document at /.well-known/transparency-configuration (SCRAPI -05 to -07;
// removed from the draft, still served by Trustfabric, scitt-ccf-ledger and
// others). Unknown members are ignored.
type Configuration struct {
	// Issuer is the service's issuer ("issuer").
	Issuer string
	// LeafConvention is the leaf convention of the service's receipts
	// ([ConfigLeafConvention]); "" when the service does not say.
	LeafConvention string
	// VDS is the verifiable data structure of its receipts
	// ("verifiable_data_structure"); 0 when not said.
	VDS int64
	// LogOrigin and LogVKey identify the log behind the receipts: its
	// checkpoint origin (C2SP tlog-checkpoint) and checkpoint verifier key
	// (signed-note vkey), members [ConfigLogOrigin] and [ConfigLogVKey]; ""
	// when the service does not publish them.
	LogOrigin, LogVKey string
}

// Members of the configuration document naming the log (Trustfabric).
const (
	ConfigLogOrigin = "log_origin"
	ConfigLogVKey   = "log_vkey"
)

var configDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{MaxNestedLevels: 8, MaxMapPairs: 256, MaxArrayElements: 1024, DupMapKey: cbor.DupMapKeyEnforcedAPF}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// ParseConfiguration decodes a configuration document: a CBOR map with text
// keys (or, from servers that answer JSON, a JSON object).
func ParseConfiguration(b []byte, contentType string) (*Configuration, error) {
	if len(b) > MaxConfigurationSize {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadConfiguration, len(b), MaxConfigurationSize)
	}
	raw := map[string]any{}
	if ct, _, _ := mime.ParseMediaType(contentType); ct == "application/json" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfiguration, err)
		}
		for k, v := range m {
			var x any
			if json.Unmarshal(v, &x) == nil {
				raw[k] = x
			}
		}
	} else {
		var m map[string]cbor.RawMessage
		if err := configDec.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%w: want a CBOR map with text keys: %w", ErrBadConfiguration, err)
		}
		for k, v := range m {
			var x any
			if configDec.Unmarshal(v, &x) == nil {
				raw[k] = x
			}
		}
	}
	c := &Configuration{}
	text := func(key string, dst *string) error {
		v, ok := raw[key]
		if !ok {
			return nil
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%w: %s must be a text string", ErrBadConfiguration, key)
		}
		*dst = s
		return nil
	}
	if err := text("issuer", &c.Issuer); err != nil {
		return nil, err
	}
	for _, m := range []struct {
		key string
		dst *string
	}{{ConfigLeafConvention, &c.LeafConvention}, {ConfigLogOrigin, &c.LogOrigin}, {ConfigLogVKey, &c.LogVKey}} {
		if err := text(m.key, m.dst); err != nil {
			return nil, err
		}
	}
	switch v := raw["verifiable_data_structure"].(type) {
	case nil:
	case uint64:
		if v > 1<<31 {
			return nil, fmt.Errorf("%w: verifiable_data_structure %d out of range", ErrBadConfiguration, v)
		}
		c.VDS = int64(v)
	case int64:
		c.VDS = v
	case float64: // JSON
		if v != float64(int64(v)) || v < -(1<<31) || v > 1<<31 {
			return nil, fmt.Errorf("%w: verifiable_data_structure must be an integer", ErrBadConfiguration)
		}
		c.VDS = int64(v)
	default:
		return nil, fmt.Errorf("%w: verifiable_data_structure must be an integer", ErrBadConfiguration)
	}
	return c, nil
}

// Configuration fetches the service's configuration document.
func (c *Client) Configuration(ctx context.Context) (*Configuration, error) {
	resp, body, err := c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/.well-known/transparency-configuration", nil)
		if err == nil {
			req.Header.Set("Accept", MediaTypeCBOR+", "+MediaTypeProblemDetails)
		}
		return req, err
	}, MaxConfigurationSize)
	if err != nil {
		return nil, fmt.Errorf("fetch configuration: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch configuration: %w: status %d", ErrProtocol, resp.StatusCode)
	}
	cfg, err := ParseConfiguration(body, resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("fetch configuration: %w", err)
	}
	return cfg, nil
}

// FetchConfiguration fetches the configuration document of the service at
// baseURL.
func FetchConfiguration(ctx context.Context, baseURL string) (*Configuration, error) {
	c, err := NewClient(baseURL)
	if err != nil {
		return nil, err
	}
	return c.Configuration(ctx)
}
