package identity

import (
	"crypto"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

const cryptoSHA256 = crypto.SHA256

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeJSON(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

func writeFile(name string, data []byte) error { return os.WriteFile(name, data, 0o600) }

func newKeyNoT() (*keys.PrivateKey, error) { return keys.Generate(cose.AlgorithmES256) }

func newReplay() *wimse.ReplayCache { return wimse.NewReplayCache(1000) }

func wimseCurve() elliptic.Curve { return elliptic.P256() }
