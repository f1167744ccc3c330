package scitt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// seedFiles adds every file called name from both vector sets to f.
func seedFiles(f *testing.F, names ...string) {
	for _, root := range []string{"../../testdata/scitt-cose-v1", "../../testdata/trustfabric-v1", ccfVectorsDir} {
		dirs, _ := os.ReadDir(root)
		for _, d := range dirs {
			for _, n := range names {
				if b, err := os.ReadFile(filepath.Join(root, d.Name(), n)); err == nil {
					f.Add(b)
				}
			}
		}
	}
}

// FuzzParseStatement: parsing never panics; whatever parses re-splits
// byte-exactly, and a verification with any key never panics either.
func FuzzParseStatement(f *testing.F) {
	seedFiles(f, "statement.cose")
	for _, b := range critSeeds(f) {
		f.Add(b)
	}
	key := mustKey(f, -7).Public()
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatement(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Raw, b) {
			t.Fatal("Raw differs from the input")
		}
		reg := s.Registered()
		again, err := ParseStatement(reg)
		if err != nil {
			t.Fatalf("registered form does not parse: %v", err)
		}
		if !bytes.Equal(again.Registered(), reg) {
			t.Fatal("registered form is not a fixed point")
		}
		_, _ = s.Verify(keys.Set{key}, WithPreimage(b))
	})
}

// FuzzParseReceipt: parsing and verification never panic; proofs that
// parse have 32-byte nodes and bounded paths. Seeds include Microsoft's CCF
// receipt and its tampered copies, verified with the CCF statement and key,
// so the vds 2 parser and verifier are fuzzed as far as the signature.
func FuzzParseReceipt(f *testing.F) {
	seedFiles(f, "receipt.cose")
	key := mustKey(f, -7).Public()
	stmt, _ := os.ReadFile("../../testdata/trustfabric-v1/valid/statement.cose")
	ccfDir := "../../testdata/scitt-cose-v1/valid-ccf-vds2"
	ccfStmt, _ := os.ReadFile(filepath.Join(ccfDir, "statement.cose"))
	ccfKeys, err := keys.LoadPublic(filepath.Join(ccfDir, "log-key.pub"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReceipt(b)
		if err != nil {
			return
		}
		for _, p := range r.Inclusion {
			if len(p.Path) > maxPathLen {
				t.Fatal("path longer than the limit")
			}
			for _, n := range p.Path {
				if len(n) != 32 {
					t.Fatal("node is not 32 bytes")
				}
			}
		}
		for _, p := range r.CCF {
			if len(p.Path) == 0 || len(p.Path) > maxCCFPath || len(p.InternalTxHash) != 32 || len(p.DataHash) != 32 ||
				len(p.InternalEvidence) == 0 || len(p.InternalEvidence) > maxCCFEvidence {
				t.Fatal("CCF proof outside the profile's limits")
			}
			for _, e := range p.Path {
				if len(e.Hash) != 32 {
					t.Fatal("CCF path hash is not 32 bytes")
				}
			}
		}
		if len(r.CCF) > 0 && r.VDS != VDSCCFLedgerSHA256 {
			t.Fatal("CCF proofs decoded for another vds")
		}
		_, _ = r.VerifyInclusion(stmt, keys.Set{key}, LeafAuto)
		_, _ = r.VerifyInclusion(ccfStmt, ccfKeys, LeafAuto)
		_, _ = r.VerifyConsistency(make([]byte, 32), keys.Set{key})
	})
}

// FuzzTransparentStatement: adding a receipt to anything that parses, then
// removing it, gives back the registered bytes.
func FuzzTransparentStatement(f *testing.F) {
	seedFiles(f, "statement.cose")
	receipt, _ := os.ReadFile("../../testdata/trustfabric-v1/valid/receipt.cose")
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatement(b)
		if err != nil {
			return
		}
		with, err := AddReceipt(b, receipt)
		if err != nil {
			return // e.g. the receipt limit is reached
		}
		got, err := Receipts(with)
		if err != nil || len(got) != len(s.Receipts)+1 || !bytes.Equal(got[len(got)-1], receipt) {
			t.Fatalf("receipt not appended: %v", err)
		}
		st, err := ParseStatement(with)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(st.Registered(), s.Registered()) {
			t.Fatal("adding a receipt changed the registered bytes")
		}
		without, err := RemoveReceipts(with)
		if err != nil {
			t.Fatal(err)
		}
		if w, _ := ParseStatement(without); w == nil || len(w.Receipts) != 0 || !bytes.Equal(w.Registered(), s.Registered()) {
			t.Fatal("remove receipts did not restore the statement")
		}
	})
}

// FuzzVerifyCosigned feeds untrusted checkpoint notes to the witness check:
// it never panics, and what it accepts is the tree it was asked about.
func FuzzVerifyCosigned(f *testing.F) {
	root := make([]byte, 32)
	f.Add([]byte("log.test\n4\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— log.test AAAAAQ==\n"), uint64(4))
	f.Add([]byte("log.test\n4\n"), uint64(4))
	f.Add([]byte(""), uint64(0))
	f.Fuzz(func(t *testing.T, cp []byte, size uint64) {
		names, err := VerifyCosigned(cp, size, root, Witnesses{Threshold: 0})
		if err != nil {
			if !errors.Is(err, ErrWitness) {
				t.Fatalf("error %v does not wrap ErrWitness", err)
			}
			return
		}
		if len(names) != 0 {
			t.Fatalf("no trusted keys, yet cosigned by %v", names)
		}
	})
}
