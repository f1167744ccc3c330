package transparency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// checkpoint is a published, signature-checked checkpoint.
type checkpoint struct {
	Size uint64
	Root []byte
	Raw  []byte
	// At is when this service first saw the checkpoint published: every
	// entry it covers was in the log by then.
	At time.Time
}

// follower polls the log's published checkpoint and wakes the goroutines
// waiting for an index to be covered. Only published checkpoints are ever
// used for receipts (never the integrated size).
type follower struct {
	read     func(context.Context) ([]byte, error)
	origin   string
	verifier note.Verifier
	poll     time.Duration
	logger   *slog.Logger

	mu      sync.Mutex
	cur     *checkpoint
	changed chan struct{} // closed and replaced on every new checkpoint

	// The checkpoint is read every poll while someone waits, and every
	// idlePoll otherwise (reading it is a few syscalls, which add up).
	waiters atomic.Int32
	kick    chan struct{}

	// witnesses, when set, is the witness policy checkpoints are counted
	// against: a published checkpoint below its threshold (fail open) is
	// logged and counted in unwitnessed.
	witnesses   *scitt.Witnesses
	unwitnessed atomic.Uint64
}

// idlePoll is the polling period when nobody waits for a checkpoint.
const idlePoll = 500 * time.Millisecond

func newFollower(read func(context.Context) ([]byte, error), origin string, v note.Verifier, poll time.Duration, logger *slog.Logger) *follower {
	return &follower{read: read, origin: origin, verifier: v, poll: poll, logger: logger,
		changed: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// refresh reads the published checkpoint once and publishes it if it grew.
func (f *follower) refresh(ctx context.Context) error {
	raw, err := f.read(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	f.mu.Lock()
	cur := f.cur
	f.mu.Unlock()
	if cur != nil && string(cur.Raw) == string(raw) {
		return nil
	}
	cp, _, _, err := log.ParseCheckpoint(raw, f.origin, f.verifier)
	if err != nil {
		return fmt.Errorf("parse published checkpoint: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != nil && cp.Size < f.cur.Size {
		return fmt.Errorf("published checkpoint shrank from %d to %d", f.cur.Size, cp.Size)
	}
	if f.witnesses != nil {
		if names, err := scitt.VerifyCosigned(raw, cp.Size, cp.Hash, *f.witnesses); err != nil {
			f.unwitnessed.Add(1)
			f.logger.WarnContext(ctx, "checkpoint published without enough witness cosignatures (fail open)",
				slog.Uint64("size", cp.Size), slog.Int("cosignatures", len(names)), slog.Int("threshold", f.witnesses.Threshold), slog.Any("error", err))
		}
	}
	f.cur = &checkpoint{Size: cp.Size, Root: cp.Hash, Raw: raw, At: time.Now()}
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

// run polls until ctx ends.
func (f *follower) run(ctx context.Context) {
	t := time.NewTimer(f.poll)
	defer t.Stop()
	for {
		if err := f.refresh(ctx); err != nil && ctx.Err() == nil {
			f.logger.WarnContext(ctx, "checkpoint follower", slog.Any("error", err))
		}
		d := idlePoll
		if f.waiters.Load() > 0 {
			d = f.poll
		}
		t.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
	}
}

// latest returns the newest published checkpoint, or nil before the first.
func (f *follower) latest() *checkpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// await blocks until a published checkpoint covers index (Size > index) or
// ctx ends.
func (f *follower) await(ctx context.Context, index uint64) (*checkpoint, error) {
	registered := false
	defer func() {
		if registered {
			f.waiters.Add(-1)
		}
	}()
	for {
		f.mu.Lock()
		cur, ch := f.cur, f.changed
		f.mu.Unlock()
		if cur != nil && cur.Size > index {
			return cur, nil
		}
		if !registered {
			registered = true
			if f.waiters.Add(1) == 1 {
				select { // wake the poller from its idle period
				case f.kick <- struct{}{}:
				default:
				}
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
