package transparency

import (
	"context"
	"errors"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage/posix"
)

// Repair rebuilds the statement store of the embedded backend in the data
// directory dir from what survives of it and from the log (posix.Repair): the
// procedure behind `trustfabric serve --repair` when the service refused to
// start with an error wrapping storage.ErrCorrupt. No server may be running
// on dir (the lock is taken). Statements whose bytes are lost are listed in
// the report.
func Repair(ctx context.Context, dir string) (*posix.RepairReport, error) {
	if dir == "" {
		return nil, errors.New("repair: a data directory is required")
	}
	return posix.Repair(ctx, dir)
}
