package storage

import (
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"
)

// checkpointRepublish is how often an unchanged checkpoint is signed again,
// so that its timestamp stays fresh for witnesses and monitors.
const checkpointRepublish = 10 * time.Minute

// AppendOptions are the Tessera appender options every backend runs with:
// the checkpoint signer, checkpoint cadence, batching, pushback and, when
// witnesses has components, witnessing before publication.
func AppendOptions(signer note.Signer, checkpointInterval, batchMaxAge time.Duration, batchMaxSize, pushback uint,
	witnesses tessera.WitnessGroup, witnessOptions tessera.WitnessOptions) *tessera.AppendOptions {
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithCheckpointInterval(checkpointInterval).
		WithBatching(batchMaxSize, batchMaxAge).
		WithPushback(pushback).
		WithCheckpointRepublishInterval(checkpointRepublish)
	if len(witnesses.Components) > 0 {
		opts = opts.WithWitnesses(witnesses, &witnessOptions)
	}
	return opts
}
