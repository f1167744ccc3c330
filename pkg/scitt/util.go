package scitt

// printable reports whether b is non-empty printable ASCII, safe to use as a
// JWK kid string as it is.
func printable(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
