package monitor_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/monitor"
)

func FuzzParseCheckpointBody(f *testing.F) {
	f.Add("ts.test\n5\nq6bVbEvVWAmxi8XXKW9Xr2E5zjQpU+dTQ7gNJEwTwdQ=\n")
	f.Add("ts.test\n05\nq6bVbEvVWAmxi8XXKW9Xr2E5zjQpU+dTQ7gNJEwTwdQ=\n")
	f.Add("ts.test\n-1\n\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		cp, err := monitor.ParseCheckpointBody(text)
		if err != nil {
			if !errors.Is(err, monitor.ErrBadCheckpoint) {
				t.Fatalf("error %v does not wrap ErrBadCheckpoint", err)
			}
			return
		}
		if cp.Origin == "" || cp.Size < 0 {
			t.Fatalf("accepted %+v", cp)
		}
	})
}

func FuzzParseEntryBundle(f *testing.F) {
	var b []byte
	for i := range 3 {
		b = binary.BigEndian.AppendUint16(b, 32)
		b = append(b, make([]byte, 31)...)
		b = append(b, byte(i))
	}
	f.Add(b, 3)
	f.Add(b[:50], 2)
	f.Add([]byte{0}, 1)
	f.Fuzz(func(t *testing.T, b []byte, want int) {
		es, err := monitor.ParseEntryBundle(b, want)
		if err != nil {
			if !errors.Is(err, monitor.ErrBadLog) {
				t.Fatalf("error %v does not wrap ErrBadLog", err)
			}
			return
		}
		if len(es) != want {
			t.Fatalf("%d entries, want %d", len(es), want)
		}
		// Re-encoding gives the input back.
		var re []byte
		for _, e := range es {
			re = binary.BigEndian.AppendUint16(re, uint16(len(e)))
			re = append(re, e...)
		}
		if string(re) != string(b) {
			t.Fatal("round trip differs")
		}
	})
}
