package transparency

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// InitLogKey creates the checkpoint key of a new log in opts.Dir (or loads
// the existing one) without starting the service, and returns its verifier
// key. Witnesses must trust the log's key before its first checkpoint is
// published: with witnessing configured and failing closed, run this first,
// give the key to the witnesses, then [Open] (serve --init-log-key).
func InitLogKey(opts Options) (string, error) {
	if opts.Dir == "" {
		return "", errors.New("init log key: a data directory is required")
	}
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return "", fmt.Errorf("create data directory: %w", err)
	}
	var ks *serviceKeys
	if opts.SharedLog {
		var err error
		if ks, err = loadServiceKeys(opts.Dir, opts.KeyFile, false); err != nil {
			return "", err
		}
	}
	_, _, vkey, err := logSigner(opts, ks)
	return vkey, err
}

// logSigner returns the checkpoint signer of the log, its verifier and its
// verifier key. A log in the data directory keeps its key there, created on
// first start with the configured origin or [DefaultOrigin]. A shared log
// (several replicas) derives its key from the receipt key and the origin,
// and nothing records the origin: unless configured it is the origin such
// logs had before the C2SP default, [LegacyOrigin], so that they keep their
// key and checkpoints.
func logSigner(opts Options, ks *serviceKeys) (note.Signer, note.Verifier, string, error) {
	if opts.Origin != "" {
		if err := checkOrigin(opts.Origin); err != nil {
			return nil, nil, "", err
		}
	}
	if !opts.SharedLog {
		origin := opts.Origin
		if origin == "" {
			origin = DefaultOrigin(opts.Issuer)
		}
		return loadNoteSigner(opts.Dir, origin, opts.Origin != "")
	}
	origin := opts.Origin
	if origin == "" {
		origin = LegacyOrigin(opts.Issuer)
	}
	signer, verifier, err := deriveNoteSigner(ks.current, origin)
	if err != nil {
		return nil, nil, "", err
	}
	ds, ok := signer.(*derivedSigner)
	if !ok {
		return nil, nil, "", errors.New("derive checkpoint key: unexpected signer")
	}
	vkey, err := note.NewEd25519VerifierKey(origin, ds.key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, nil, "", fmt.Errorf("derive checkpoint key: %w", err)
	}
	return signer, verifier, vkey, nil
}

// LegacyOrigin is the origin derived from the issuer before the C2SP
// default: "<host><path>/scitt-log". Logs in a data directory created then
// keep it (it is their stored key's name); shared logs use it unless an
// origin is configured.
func LegacyOrigin(issuer string) string { return DefaultOrigin(issuer) + "/scitt-log" }

// DefaultOrigin is the checkpoint origin of a new log served at issuer: the
// log's URL prefix without scheme and trailing slashes, as C2SP
// tlog-checkpoint recommends (the tiles are served at the root of the
// issuer URL, so "https://ts.example.com" gives "ts.example.com").
//
// Logs created before v0.x used "<host><path>/scitt-log"; they keep it,
// since the origin is the name of the checkpoint key stored in the data
// directory (docs/design/transparency.md, "Log identity").
func DefaultOrigin(issuer string) string {
	name := issuer
	if u, err := url.Parse(issuer); err == nil && u.Host != "" {
		name = u.Host + strings.TrimRight(u.Path, "/")
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == '+' || r > 0x7e {
			return '-'
		}
		return r
	}, name)
}

// checkOrigin checks a configured origin is a valid signed-note key name.
func checkOrigin(origin string) error {
	if origin == "" || strings.ContainsFunc(origin, func(r rune) bool { return r <= ' ' || r == '+' || r > 0x7e }) {
		return fmt.Errorf("%w: origin %q must be non-empty printable ASCII without spaces or '+'", ErrConfig, origin)
	}
	return nil
}
