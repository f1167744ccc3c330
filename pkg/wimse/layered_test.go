package wimse

import (
	"errors"
	"testing"
	"time"
)

// TestLayeredReplay: two replicas, each with its own cache, share one
// record: an id used on one is refused on the other; the per-owner limit is
// applied locally; an id the shared record could not take is not remembered
// locally, so the client can retry it.
func TestLayeredReplay(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(time.Minute)
	shared := NewReplayCache(2)
	a := Layered(shared, NewReplayCache(10, WithOwnerLimit(1)))
	b := Layered(shared, NewReplayCache(10, WithOwnerLimit(1)))

	if err := a.UseFor("w1", "id-1", exp, now); err != nil {
		t.Fatal(err)
	}
	if err := b.UseFor("w2", "id-1", exp, now); !errors.Is(err, ErrReplay) {
		t.Fatalf("id used on replica a, then on b: %v, want ErrReplay", err)
	}
	if err := a.UseFor("w1", "id-2", exp, now); !errors.Is(err, ErrReplayQuota) {
		t.Fatalf("second id of w1 on a: %v, want ErrReplayQuota", err)
	}
	if err := b.UseFor("w3", "id-3", exp, now); err != nil {
		t.Fatal(err)
	}
	// The shared record is full: refused, and not remembered locally.
	if err := a.UseFor("w4", "id-4", exp, now); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("shared record full: %v, want ErrReplayCacheFull", err)
	}
	later := exp.Add(time.Second)
	if err := a.UseFor("w4", "id-4", later.Add(time.Minute), later); err != nil {
		t.Fatalf("retry once the shared record has room: %v", err)
	}
	if err := a.UseFor("", "", exp, now); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty id: %v, want ErrMalformed", err)
	}
}
