package wimse

import "testing"

// FuzzDecodeUnverified: never panics; accepted tokens have three parts.
func FuzzDecodeUnverified(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA")
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, s string) {
		if u, err := DecodeUnverified(s); err == nil && (u.Header == nil || u.Claims == nil) {
			t.Fatal("accepted a token without header or claims")
		}
	})
}
