package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/provenance"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

func init() { register(NewCmdAttach) }

// NewCmdAttach returns `trustfabric attach`.
func NewCmdAttach() *cobra.Command {
	var statementFile, preimageFile string
	var insecure []string
	var recursive bool
	cmd := &cobra.Command{
		Use:   "attach IMAGE@DIGEST --statement TRANSPARENT_STATEMENT --preimage FILE [--recursive]",
		Short: "Attach a transparent statement and its preimage to an image as an OCI 1.1 referrer",
		Long: `attach pushes one OCI image manifest (artifactType application/scitt-statement+cose) whose layers
are the transparent statement and its in-toto preimage, with the image as its subject. Registries with
the referrers API index it; on others the sha256-<hex> tag index is updated safely under concurrency.
With --recursive, an index subject and each of its platform manifests get the referrer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stmt, err := readInput(statementFile)
			if err != nil {
				return err
			}
			pre, err := readInput(preimageFile)
			if err != nil {
				return err
			}
			a, err := attachmentFor(stmt, pre)
			if err != nil {
				return err
			}
			c, err := newOCIClient(insecure)
			if err != nil {
				return err
			}
			var opts []oci.AttachOption
			if recursive {
				opts = append(opts, oci.Recursive())
			}
			done, err := c.Attach(cmd.Context(), args[0], a, opts...)
			for _, d := range done {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t(%s)\n", d.Subject, d.Referrer, d.Mode)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&statementFile, "statement", "", "transparent statement (COSE_Sign1 with receipts)")
	f.StringVar(&preimageFile, "preimage", "", "the in-toto statement (or DSSE envelope) the statement signs")
	f.BoolVar(&recursive, "recursive", false, "also attach to every platform manifest of an index")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host allowed over plain HTTP (repeatable)")
	_ = cmd.MarkFlagRequired("statement")
	_ = cmd.MarkFlagRequired("preimage")
	return cmd
}

// attachmentFor reads the listing annotations out of the transparent statement and its
// preimage, and checks that the preimage is the one the statement's hash envelope signs.
// (This is the only place pkg/oci meets pkg/scitt.)
func attachmentFor(stmt, pre []byte) (oci.Attachment, error) {
	s, err := scitt.ParseStatement(stmt)
	if err != nil {
		return oci.Attachment{}, fmt.Errorf("--statement: %w", err)
	}
	if len(s.Receipts) == 0 {
		return oci.Attachment{}, errors.New("--statement has no receipt: register it with a transparency service first")
	}
	p, err := provenance.ParseStatement(pre)
	if err != nil {
		return oci.Attachment{}, fmt.Errorf("--preimage: %w", err)
	}
	switch {
	case s.PayloadHashAlg == scitt.AlgSHA256:
		sum := sha256.Sum256(pre)
		if !bytes.Equal(sum[:], s.Payload) {
			return oci.Attachment{}, errors.New("--preimage is not the payload the statement signs (SHA-256 differs)")
		}
	case s.PayloadHashAlg == 0 && s.Payload != nil && !bytes.Equal(s.Payload, pre):
		return oci.Attachment{}, errors.New("--preimage differs from the payload embedded in the statement")
	}
	entry, err := scitt.EntryHash(stmt)
	if err != nil {
		return oci.Attachment{}, fmt.Errorf("--statement: %w", err)
	}
	ann := oci.Annotations{Issuer: s.Issuer, Subject: s.Subject, EntryID: hex.EncodeToString(entry[:]),
		PredicateType: p.PredicateType, Created: s.IssuedAt}
	for i, raw := range s.Receipts {
		r, err := scitt.ParseReceipt(raw)
		if err != nil {
			return oci.Attachment{}, fmt.Errorf("--statement: receipt %d: %w", i, err)
		}
		if r.Issuer != "" {
			ann.TS = append(ann.TS, r.Issuer)
		}
		if i == 0 && !r.IssuedAt.IsZero() {
			ann.Created = r.IssuedAt // registration time
		}
	}
	if ann.Created.IsZero() {
		ann.Created = time.Now()
	}
	return oci.Attachment{Statement: stmt, Preimage: pre, PreimageMediaType: p.MediaType, Annotations: ann}, nil
}
