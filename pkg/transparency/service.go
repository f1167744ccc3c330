// Package transparency is the SCITT Transparency Service of Trustfabric: it
// registers Signed Statements (RFC 9943 §5.1, draft-ietf-scitt-scrapi §2) in
// an append-only Merkle log (Tessera, RFC 9162 tree) and issues COSE Receipts
// (RFC 9942, vds 1) from the log's tiles against published checkpoints.
//
// # Entries
//
// The log entry of a statement is entry = SHA-256(statement with its
// unprotected header replaced by {}) (design.md §2.2); Tessera's leaf hash
// SHA-256(0x00 ‖ entry) is the receipt's leaf. The entry id (lowercase hex of
// entry) is also the operation id of a pending registration, so registering
// the same statement twice gives the same entry.
//
// # Durability
//
// A statement is stored durably before it is appended; an entry is
// acknowledged with a receipt only once it is durably sequenced and covered by
// a published checkpoint. At start-up, stored statements that have no index
// are found in the log (or appended again). A log append that fails after
// the statement was stored is retried until it succeeds. Damaged storage is
// never started on silently: Open returns an error wrapping
// storage.ErrCorrupt (repair with [Repair]) or storage.ErrLocked (another
// process holds the data directory); see docs/design/transparency.md,
// "Durability and corruption".
//
// # Storage
//
// The service runs on any [storage.Log] and [storage.Statements] pair; the
// embedded default is package storage/posix in the data directory.
package transparency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/internal/atomicfile"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/posix"
)

// Defaults of [Options].
const (
	DefaultRegistrationWait   = 2 * time.Second
	DefaultCheckpointInterval = 100 * time.Millisecond
	DefaultBatchMaxAge        = 100 * time.Millisecond
	DefaultPollInterval       = 5 * time.Millisecond
	DefaultIssuer             = "https://localhost"

	// maxPendingAppends bounds registrations stored but not yet in the log.
	maxPendingAppends = 4096
)

// Backend opens the storage of the service as cfg says.
type Backend func(ctx context.Context, cfg BackendConfig) (storage.Log, storage.Statements, error)

// BackendConfig is what the service gives its [Backend].
type BackendConfig struct {
	// Signer signs checkpoints.
	Signer note.Signer
	// Witnesses, when it has components, must cosign every new checkpoint
	// before it is published, as WitnessOptions say (Tessera's
	// WithWitnesses; C2SP tlog-witness). A backend that cannot do that must
	// fail rather than publish uncosigned checkpoints.
	Witnesses      tessera.WitnessGroup
	WitnessOptions tessera.WitnessOptions
}

// Options configures [Open].
type Options struct {
	// Dir is the data directory (keys; and the log and statements for the
	// embedded backend). Required.
	Dir string
	// Issuer is the service identifier: the CWT iss of receipts and of the
	// policy statement. Default DefaultIssuer.
	Issuer string
	// Origin is the checkpoint origin of a new log (C2SP tlog-checkpoint),
	// fixed when its checkpoint key is created. Default: the log's URL
	// prefix without scheme, derived from Issuer ([DefaultOrigin]). An
	// existing log keeps its origin (the name of its key); an Origin that
	// differs from it is an ErrConfig.
	Origin string
	// KeyFile, when set, is the receipt signing key; otherwise the key in
	// Dir/keys is used, generated on first start.
	KeyFile string
	// RotateKey retires the key in Dir/keys and generates a new one; retired
	// public keys stay in the published key set.
	RotateKey bool
	// Policy is the registration policy. Required.
	Policy *Policy
	// RegistrationWait is how long POST /entries waits for a receipt before
	// answering 303. Default 2 s.
	RegistrationWait time.Duration
	// CheckpointInterval and BatchMaxAge tune the embedded log (defaults
	// 100 ms and 100 ms: a p50 receipt of about 110-130 ms at low load).
	CheckpointInterval, BatchMaxAge time.Duration
	// PollInterval is how often the published checkpoint is read. Default 5 ms.
	PollInterval time.Duration
	// Witnessing, when it names witnesses, sends every new checkpoint to
	// them and publishes it with their cosignatures; receipts then carry the
	// cosigned checkpoint (scitt.LabelCheckpoint). The Backend is given the
	// witnesses (BackendConfig); the embedded POSIX backend and storage/aws
	// pass them to Tessera.
	Witnessing *Witnessing
	// Backend opens the storage; nil means the embedded POSIX backend in Dir.
	Backend Backend
	// SharedLog says that several service processes (replicas) share the
	// log and statement store Backend opens (package storage/aws). Then the
	// checkpoint key is derived from the receipt key in KeyFile (required),
	// so that every replica started with the same key signs the same log,
	// and registrations another replica left pending are adopted every
	// AdoptInterval (default 2 s).
	SharedLog     bool
	AdoptInterval time.Duration
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// Service is a running Transparency Service.
type Service struct {
	opts   Options
	issuer string
	origin string
	vkey   string
	log    storage.Log
	store  storage.Statements
	keys   *serviceKeys
	policy *Policy
	logger *slog.Logger

	follow   *follower
	proofs   *proofCache
	receipts *receiptCache
	treeSig  treeSigner
	checks   *checkers
	// appenders run the appends of registrations (startAppend).
	appenders workers

	mu       sync.Mutex
	inflight map[storage.Entry]*operation

	policyEntry storage.Entry
	witnessed   bool // receipts carry the (cosigned) checkpoint

	appendSlots chan struct{}
	closing     atomic.Bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open starts the service: keys, storage, recovery of pending
// registrations, the checkpoint follower, and the registration of the
// policy statement.
func Open(ctx context.Context, opts Options) (*Service, error) {
	if opts.Dir == "" {
		return nil, errors.New("open transparency service: a data directory is required")
	}
	if opts.Policy == nil {
		return nil, errors.New("open transparency service: a registration policy is required")
	}
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.RegistrationWait <= 0 {
		opts.RegistrationWait = DefaultRegistrationWait
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.BatchMaxAge == 0 {
		opts.BatchMaxAge = DefaultBatchMaxAge
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	keys, err := loadServiceKeys(opts.Dir, opts.KeyFile, opts.RotateKey)
	if err != nil {
		return nil, err
	}
	if opts.SharedLog {
		if opts.KeyFile == "" {
			return nil, errors.New("open transparency service: a shared log needs the receipt key in a file (--key), the same for every replica")
		}
		if opts.AdoptInterval <= 0 {
			opts.AdoptInterval = 2 * time.Second
		}
	}
	signer, verifier, vkey, err := logSigner(opts, keys)
	if err != nil {
		return nil, err
	}
	wit, err := opts.Witnessing.compile()
	if err != nil {
		return nil, err
	}
	backend := opts.Backend
	if backend == nil {
		backend = func(ctx context.Context, bc BackendConfig) (storage.Log, storage.Statements, error) {
			return posix.Open(ctx, posix.Config{Dir: opts.Dir, Signer: bc.Signer,
				CheckpointInterval: opts.CheckpointInterval, BatchMaxAge: opts.BatchMaxAge, Logger: opts.Logger,
				Witnesses: bc.Witnesses, WitnessOptions: bc.WitnessOptions})
		}
	}
	bc := BackendConfig{Signer: signer}
	if wit != nil {
		bc.Witnesses, bc.WitnessOptions = wit.group, wit.opts
	}
	lg, st, err := backend(ctx, bc)
	if err != nil {
		if errors.Is(err, storage.ErrCorrupt) {
			return nil, fmt.Errorf("%w; the service will not start on damaged state: stop every server using %s, then run `trustfabric serve --data %s --repair` (docs/design/transparency.md, \"Durability and corruption\")",
				err, opts.Dir, opts.Dir)
		}
		return nil, err
	}
	s := &Service{
		opts: opts, issuer: opts.Issuer, origin: signer.Name(), vkey: vkey, log: lg, store: st, keys: keys,
		policy: opts.Policy, logger: opts.Logger,
		proofs:      newProofCache(lg.ReadTile),
		receipts:    newReceiptCache(1 << 12),
		inflight:    map[storage.Entry]*operation{},
		appendSlots: make(chan struct{}, maxPendingAppends),
	}
	s.appenders.wg = &s.wg
	s.follow = newFollower(lg.ReadCheckpoint, s.origin, verifier, opts.PollInterval, opts.Logger)
	if wit != nil {
		s.witnessed = true
		s.follow.witnesses = &wit.trusted
	}
	if err := s.recover(ctx); err != nil {
		return nil, errors.Join(err, s.closeStorage(ctx))
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.follow.run(fctx)
	}()
	s.checks = startCheckers(fctx, s.policy, s.logger, s.wg.Go)
	if s.dedup() && opts.SharedLog {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.adoptLoop(fctx)
		}()
	}
	if err := s.registerPolicy(ctx); err != nil {
		s.Close(ctx)
		return nil, err
	}
	s.logger.InfoContext(ctx, "transparency service started", slog.String("issuer", s.issuer),
		slog.String("origin", s.origin), slog.String("kid", hex.EncodeToString(keys.current.KID)))
	return s, nil
}

// registerPolicy registers the policy in force as a Signed Statement signed
// by the service key (RFC 9943 §5.1.1 auditability), unless the same policy
// document was already registered.
func (s *Service) registerPolicy(ctx context.Context) error {
	doc := s.policy.Document()
	sum := sha256.Sum256(doc)
	marker := filepath.Join(s.opts.Dir, "policy.entry")
	if b, err := os.ReadFile(marker); err == nil {
		parts := strings.Fields(string(b))
		if len(parts) == 2 && parts[0] == hex.EncodeToString(sum[:]) {
			if e, err := ParseEntryID(parts[1]); err == nil {
				if rec, err := s.store.Get(ctx, e); err == nil && !rec.Lost {
					s.policyEntry = e
					return nil
				}
			}
		}
	}
	stmt, err := scitt.SignStatement(ctx, s.keys.current, scitt.Claims{Issuer: s.issuer, Subject: "registration-policy", IssuedAt: time.Now()},
		doc, scitt.WithEmbeddedPayload(), scitt.WithContentType("application/vnd.trustfabric.registration-policy+json"))
	if err != nil {
		return fmt.Errorf("sign policy statement: %w", err)
	}
	parsed, err := scitt.ParseStatement(stmt)
	if err != nil {
		return fmt.Errorf("parse policy statement: %w", err)
	}
	reg, err := s.register(ctx, parsed)
	if err != nil {
		return fmt.Errorf("register policy statement: %w", err)
	}
	s.policyEntry = reg.Entry
	if err := atomicfile.WriteFile(marker, fmt.Appendf(nil, "%x %s\n", sum, reg.ID()), 0o644); err != nil {
		return fmt.Errorf("record policy entry: %w", err)
	}
	s.logger.InfoContext(ctx, "registered policy statement", slog.String("entry", reg.ID()))
	return nil
}

// Registration is the outcome of a successful registration: the statement
// is durable; Index is known once Indexed.
type Registration struct {
	Entry   storage.Entry
	Index   uint64
	Indexed bool
}

// ID is the entry id: lowercase hex of the entry.
func (r *Registration) ID() string { return hex.EncodeToString(r.Entry[:]) }

// ParseEntryID parses a lowercase hex entry id.
func ParseEntryID(id string) (storage.Entry, error) {
	var e storage.Entry
	if len(id) != 2*len(e) || strings.ToLower(id) != id {
		return e, fmt.Errorf("%w: %q is not a 64-digit lowercase hex entry id", ErrNotFound, id)
	}
	if _, err := hex.Decode(e[:], []byte(id)); err != nil {
		return e, fmt.Errorf("%w: %q is not a 64-digit lowercase hex entry id", ErrNotFound, id)
	}
	return e, nil
}

// Register parses a Signed Statement, applies the registration policy and
// appends it to the log. It returns once the entry is durably sequenced; the
// receipt is available when a published checkpoint covers it. Registering a
// registered statement again returns the existing entry.
func (s *Service) Register(ctx context.Context, statement []byte) (*Registration, error) {
	if int64(len(statement)) > s.policy.MaxStatementSize() {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(statement), s.policy.MaxStatementSize())
	}
	st, err := scitt.ParseStatement(statement)
	if err != nil {
		return nil, err
	}
	if err := s.checks.check(ctx, s.policy, st, time.Now()); err != nil {
		return nil, err
	}
	return s.register(ctx, st)
}

// register stores a checked statement durably and starts its append to the
// log (once per entry). It returns as soon as the statement is durable: from
// then on the registration survives a restart (recover appends it), and its
// entry id is the operation id of the pending registration.
func (s *Service) register(ctx context.Context, st *scitt.Statement) (*Registration, error) {
	registered := st.Registered()
	entry := sha256.Sum256(registered)
	// No lookup here: the store's Put finds an entry registered before
	// (one index probe per registration, not two).
	s.mu.Lock()
	op, joined := s.inflight[entry]
	if !joined {
		op = &operation{stored: make(chan struct{}), done: make(chan struct{})}
		s.inflight[entry] = op
	}
	s.mu.Unlock()
	if !joined {
		s.startAppend(ctx, op, entry, registered)
	}
	select {
	case <-op.stored:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if op.storeErr != nil {
		return nil, op.storeErr
	}
	select {
	case <-op.done: // registered before: Put found its index
		if op.err == nil {
			return &Registration{Entry: entry, Index: op.index, Indexed: true}, nil
		}
	default:
	}
	return &Registration{Entry: entry}, nil
}

// Lookup returns the stored record of an entry.
func (s *Service) Lookup(ctx context.Context, entry storage.Entry) (storage.Record, error) {
	rec, err := s.store.Get(ctx, entry)
	if errors.Is(err, storage.ErrNotFound) {
		s.mu.Lock()
		op := s.inflight[entry]
		s.mu.Unlock()
		if op != nil {
			return storage.Record{Entry: entry}, nil // being stored: pending
		}
		return rec, fmt.Errorf("%x: %w", entry[:], ErrNotFound)
	}
	if err == nil && rec.Lost {
		return rec, fmt.Errorf("%x: %w: the log holds it at index %d but its statement was lost in a storage repair; registering the same statement again restores it",
			entry[:], ErrNotFound, rec.Index)
	}
	return rec, err
}

// pending returns the error for an entry that has no receipt yet: ErrPending,
// or ErrAppendFailing while appending it to the log keeps failing.
func (s *Service) pending(entry storage.Entry) error {
	s.mu.Lock()
	op := s.inflight[entry]
	s.mu.Unlock()
	if op != nil {
		if err := op.failing(); err != nil {
			return fmt.Errorf("%w: entry %x is stored but appending it to the log failed; the service retries: %w", ErrAppendFailing, entry[:], err)
		}
	}
	return fmt.Errorf("%x: %w", entry[:], ErrPending)
}

// UnwitnessedCheckpoints counts the checkpoints published (fail open) with
// fewer trusted cosignatures than the witnessing threshold.
func (s *Service) UnwitnessedCheckpoints() uint64 { return s.follow.unwitnessed.Load() }

// Statement returns the registered statement (unprotected header {}).
func (s *Service) Statement(ctx context.Context, entry storage.Entry) ([]byte, error) {
	b, err := s.store.Statement(ctx, entry)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("%x: %w", entry[:], ErrNotFound)
	case errors.Is(err, storage.ErrLost):
		return nil, fmt.Errorf("%w: %w; registering the same statement again restores it", ErrNotFound, err)
	}
	return b, err
}

// Keys returns the service's public keys, the current key first; retired
// keys stay so that old receipts keep verifying.
func (s *Service) Keys() keys.Set { return s.keys.all }

// Origin returns the log's checkpoint origin (C2SP tlog-checkpoint).
func (s *Service) Origin() string { return s.origin }

// VerifierKey returns the checkpoint verifier key in signed-note vkey form
// (golang.org/x/mod/sumdb/note): "<origin>+<key hash>+<base64 key>".
func (s *Service) VerifierKey() string { return s.vkey }

// Issuer returns the service identifier (receipt iss).
func (s *Service) Issuer() string { return s.issuer }

// PolicyEntry returns the entry id of the registered policy statement.
func (s *Service) PolicyEntry() string { return hex.EncodeToString(s.policyEntry[:]) }

// Log returns the log, for read-only tile serving.
func (s *Service) Log() storage.Log { return s.log }

// Close stops the service; entries already sequenced are published first.
func (s *Service) Close(ctx context.Context) error {
	s.closing.Store(true)
	if s.cancel != nil {
		s.cancel()
	}
	s.appenders.close()
	s.wg.Wait()
	return s.closeStorage(ctx)
}

func (s *Service) closeStorage(ctx context.Context) error {
	err := s.log.Close(ctx)
	if serr := s.store.Close(); err == nil {
		err = serr
	}
	return err
}
