package transparency

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/veraison/go-cose"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/internal/atomicfile"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
)

// Files in the keys directory of the data directory (all private files 0600):
//
//	keys/service.jwk        the current receipt signing key (ES256, private JWK)
//	keys/public/<kid>.cbor  every service public key ever used (COSE_Key), so
//	                        retired keys stay in the published key set
//	keys/checkpoint.key     the checkpoint note signer (Ed25519, note format)
const (
	keysDir         = "keys"
	serviceKeyFile  = "service.jwk"
	publicKeysDir   = "public"
	noteKeyFile     = "checkpoint.key"
	noteVerifierExt = ".vkey"
)

// serviceKeys is the receipt signing key plus every public key the service
// has used, current first.
type serviceKeys struct {
	current *keys.PrivateKey
	all     keys.Set
}

// loadServiceKeys loads the service key from keyFile (when set) or from the
// data directory, generating it on first start; rotate retires the current key
// and generates a new one. Every public key ever used is kept.
func loadServiceKeys(dataDir, keyFile string, rotate bool) (*serviceKeys, error) {
	dir := filepath.Join(dataDir, keysDir)
	if err := os.MkdirAll(filepath.Join(dir, publicKeysDir), 0o700); err != nil {
		return nil, fmt.Errorf("create keys directory: %w", err)
	}
	var key *keys.PrivateKey
	var err error
	switch {
	case keyFile != "":
		if rotate {
			return nil, errors.New("--rotate-key rotates the key kept in the data directory; it cannot be combined with a key file")
		}
		key, err = keys.LoadPrivate(keyFile)
		if err != nil {
			return nil, fmt.Errorf("load service key: %w", err)
		}
	default:
		path := filepath.Join(dir, serviceKeyFile)
		key, err = keys.LoadPrivate(path)
		if errors.Is(err, fs.ErrNotExist) || rotate {
			key, err = keys.Generate(cose.AlgorithmES256)
			if err != nil {
				return nil, fmt.Errorf("generate service key: %w", err)
			}
			jwk, err := key.MarshalJWK()
			if err != nil {
				return nil, fmt.Errorf("encode service key: %w", err)
			}
			if err := atomicfile.WriteFile(path, jwk, 0o600); err != nil {
				return nil, fmt.Errorf("write service key: %w", err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("load service key: %w", err)
		}
	}
	// Receipts name the service key by its RFC 9679 COSE key thumbprint.
	key.KID = key.Public().COSEThumbprint()
	pub := key.Public()
	coseKey, err := pub.MarshalCOSEKey()
	if err != nil {
		return nil, fmt.Errorf("encode service public key: %w", err)
	}
	pubPath := filepath.Join(dir, publicKeysDir, fmt.Sprintf("%x.cbor", key.KID))
	if _, err := os.Stat(pubPath); errors.Is(err, fs.ErrNotExist) {
		if err := atomicfile.WriteFile(pubPath, coseKey, 0o644); err != nil {
			return nil, fmt.Errorf("record service public key: %w", err)
		}
	}
	all := keys.Set{pub}
	names, err := os.ReadDir(filepath.Join(dir, publicKeysDir))
	if err != nil {
		return nil, fmt.Errorf("read public keys: %w", err)
	}
	sort.Slice(names, func(i, j int) bool { return names[i].Name() < names[j].Name() })
	for _, n := range names {
		if !strings.HasSuffix(n.Name(), ".cbor") || n.Name() == filepath.Base(pubPath) {
			continue
		}
		ks, err := keys.LoadPublic(filepath.Join(dir, publicKeysDir, n.Name()))
		if err != nil {
			return nil, fmt.Errorf("load retired key: %w", err)
		}
		for _, k := range ks {
			k.KID = k.COSEThumbprint()
			all = append(all, k)
		}
	}
	return &serviceKeys{current: key, all: all}, nil
}

// loadNoteSigner loads the checkpoint signer, or creates one named origin on
// first start. The signer's name is the log origin, which never changes: an
// existing key keeps its name whatever origin is asked for, unless the origin
// was configured explicitly (fixed), in which case a different name is an
// ErrConfig. It returns the signer and its verifier key (signed-note vkey).
func loadNoteSigner(dataDir, origin string, fixed bool) (note.Signer, note.Verifier, string, error) {
	path := filepath.Join(dataDir, keysDir, noteKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		skey, vkey, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			return nil, nil, "", fmt.Errorf("generate checkpoint key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, nil, "", fmt.Errorf("create keys directory: %w", err)
		}
		if err := atomicfile.WriteFile(path, []byte(skey+"\n"), 0o600); err != nil {
			return nil, nil, "", fmt.Errorf("write checkpoint key: %w", err)
		}
		if err := atomicfile.WriteFile(path+noteVerifierExt, []byte(vkey+"\n"), 0o644); err != nil {
			return nil, nil, "", fmt.Errorf("write checkpoint verifier key: %w", err)
		}
		b = []byte(skey)
	} else if err != nil {
		return nil, nil, "", fmt.Errorf("read checkpoint key: %w", err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, nil, "", fmt.Errorf("checkpoint key %s: %w", path, err)
	}
	if fixed && signer.Name() != origin {
		return nil, nil, "", fmt.Errorf("%w: the log in %s has origin %q, not the configured origin %q; a log's origin never changes (remove the origin setting to keep the log)",
			ErrConfig, dataDir, signer.Name(), origin)
	}
	vb, err := os.ReadFile(path + noteVerifierExt)
	if err != nil {
		return nil, nil, "", fmt.Errorf("read checkpoint verifier key: %w", err)
	}
	vkey := strings.TrimSpace(string(vb))
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, "", fmt.Errorf("checkpoint verifier key: %w", err)
	}
	if verifier.Name() != signer.Name() || verifier.KeyHash() != signer.KeyHash() {
		return nil, nil, "", fmt.Errorf("%w: checkpoint verifier key %s does not match the checkpoint key", storage.ErrCorrupt, path+noteVerifierExt)
	}
	return signer, verifier, vkey, nil
}

// noteKeyInfo separates the derived checkpoint key from any other use of
// the receipt key's bytes.
const noteKeyInfo = "trustfabric checkpoint note key v1"

// deriveNoteSigner derives the checkpoint note signer (Ed25519) of a shared
// log from the receipt signing key: HKDF-SHA256 over the key's PKCS #8
// encoding, salted with the origin. Replicas started with the same --key
// sign the same checkpoints without sharing a second secret; rotating the
// receipt key changes the checkpoint key (see docs/design/transparency.md,
// "Replicas").
func deriveNoteSigner(key *keys.PrivateKey, origin string) (note.Signer, note.Verifier, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key.Signer)
	if err != nil {
		return nil, nil, fmt.Errorf("derive checkpoint key: the receipt key must be a private key in a file: %w", err)
	}
	seed, err := hkdf.Key(sha256.New, der, []byte(origin), noteKeyInfo, ed25519.SeedSize)
	if err != nil {
		return nil, nil, fmt.Errorf("derive checkpoint key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	vkey, err := note.NewEd25519VerifierKey(origin, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, nil, fmt.Errorf("derive checkpoint key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, fmt.Errorf("derive checkpoint key: %w", err)
	}
	return &derivedSigner{name: origin, hash: v.KeyHash(), key: priv}, v, nil
}

// derivedSigner is a note.Signer on an Ed25519 key held in memory.
type derivedSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

func (s *derivedSigner) Name() string                    { return s.name }
func (s *derivedSigner) KeyHash() uint32                 { return s.hash }
func (s *derivedSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }
