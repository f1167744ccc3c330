package sdcwt

import (
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// FuzzVerify: Verify and Parse never panic on any bytes; the draft's tokens
// seed it.
func FuzzVerify(f *testing.F) {
	f.Add(draft(f, "kbt.cbor"))
	f.Add(draft(f, "issuer_cwt.cbor"))
	ks, err := keys.ParsePublic(draft(f, "issuer.pem"))
	if err != nil {
		f.Fatal(err)
	}
	at := func() time.Time { return time.Unix(1725244240, 0) }
	f.Fuzz(func(t *testing.T, b []byte) {
		if res, err := Verify(b, ks, WithClock(at)); err == nil && res.Claims == nil {
			t.Fatal("verified without claims")
		}
		if s, err := Parse(b); err == nil {
			if _, err := Parse(s.Bytes()); err != nil {
				t.Fatalf("re-encoded SD-CWT does not parse: %v", err)
			}
			_, _, _ = s.Paths()
		}
	})
}

func FuzzParseDisclosure(f *testing.F) {
	f.Add(draft(f, "first-disclosure.cbor"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDisclosure(b)
		if err == nil && len(d.Salt) != 16 {
			t.Fatal("salt of the wrong size accepted")
		}
	})
}
