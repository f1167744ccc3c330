package policy

import (
	"errors"
	"testing"
)

// FuzzParse: policy parsing never panics, and whatever it accepts trusts
// something (never an allow-all).
func FuzzParse(f *testing.F) {
	f.Add([]byte(basePolicy))
	f.Add([]byte("apiVersion: trustfabric.dev/v1alpha1\nkind: VerificationPolicy\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b, t.TempDir())
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error does not wrap ErrInvalidPolicy: %v", err)
			}
			return
		}
		if len(p.TransparencyServices) == 0 || len(p.Workloads) == 0 || len(p.Identities)+len(p.Issuers) == 0 || p.RequiredReceipts < 1 {
			t.Fatalf("accepted a policy that trusts nothing: %+v", p)
		}
	})
}
