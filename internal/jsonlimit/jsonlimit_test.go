package jsonlimit

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckDepth(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`{"a":[1,{"b":2}]}`, true},
		{strings.Repeat("[", 4) + strings.Repeat("]", 4), true},
		{strings.Repeat("[", 5) + strings.Repeat("]", 5), false},
		{`{"a":"[[[[[[[[[[["}`, true},  // brackets inside strings do not count
		{`{"a":"\"[[[[[[[[[["}`, true}, // nor after an escaped quote
	} {
		err := CheckDepth([]byte(c.in), 4)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrTooDeep)) {
			t.Errorf("CheckDepth(%s) = %v, want ok=%v", c.in, err, c.ok)
		}
	}
}
