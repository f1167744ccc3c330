package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/trustfabric/trustfabric/internal/atomicfile"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

// maxStateSize bounds the state file.
const maxStateSize = 1 << 20

// state is what the monitor remembers between steps (a JSON file).
type state struct {
	Version int `json:"version"`
	// VKey is the log's verifier key; Origin its origin.
	VKey   string `json:"vkey"`
	Origin string `json:"origin"`
	// Size and Root are the last verified checkpoint, Checkpoint its signed
	// text (kept as evidence).
	Size       int64  `json:"size"`
	Root       []byte `json:"root"`
	Checkpoint string `json:"checkpoint"`
	// Next is the number of entries processed (the next index to process).
	Next int64 `json:"next"`
}

// loadState reads the state file; a missing file is an empty state.
func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &state{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrState, path, maxStateSize)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, path, err)
	}
	switch {
	case st.Version != stateVersion:
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrState, path, st.Version, stateVersion)
	case st.VKey == "":
		return nil, fmt.Errorf("%w: %s names no verifier key", ErrState, path)
	case len(st.Root) != tlog.HashSize, st.Size < 0, st.Next < 0, st.Next > st.Size:
		return nil, fmt.Errorf("%w: %s: size %d, next %d, root of %d bytes", ErrState, path, st.Size, st.Next, len(st.Root))
	}
	return &st, nil
}

// save replaces the state file atomically.
func (st *state) save(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrState, path, err)
	}
	return nil
}
